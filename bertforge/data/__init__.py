"""Pretraining data: readers, instances, shards, and the loader that feeds the model."""

from bertforge.data.builder import BuildConfig, BuildResult, build_data
from bertforge.data.embedded import write_embedded_corpus
from bertforge.data.instances import Instance
from bertforge.data.shards import ShardedDataset

__all__ = [
    "BuildConfig",
    "BuildResult",
    "Instance",
    "ShardedDataset",
    "build_data",
    "write_embedded_corpus",
]
