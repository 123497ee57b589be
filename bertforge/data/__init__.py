"""Pretraining data: readers, instances, shards, and the loader that feeds the model."""
