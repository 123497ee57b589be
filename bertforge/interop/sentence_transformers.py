"""The sentence-transformers layout beside an HF checkpoint: how a model turns token states
into one vector. Read, so that `embed` pools an ST checkpoint (all-MiniLM-L6-v2) as ST does;
written, so that `SentenceTransformer(path)` loads what bertforge trained.

    modules.json                       0: Transformer at "", 1: Pooling, [2: Normalize]
    1_Pooling/config.json              pooling_mode_cls_token / pooling_mode_mean_tokens ...
                                       (sentence-transformers >= 6: pooling_mode "cls" | ...)
    2_Normalize/                       present when vectors are L2-normalised
    sentence_bert_config.json          max_seq_length (the Transformer module's truncation;
                                       >= 6: absent, the tokenizer's model_max_length)
    config_sentence_transformers.json  similarity_fn_name: cosine

bertforge writes the module names of sentence-transformers 2 to 5
(`sentence_transformers.models.Pooling`), which 6 still loads, and reads both those and 6's
(`sentence_transformers.sentence_transformer.modules.pooling.Pooling`, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertforge.atomic import write_text
from bertforge.config import POOLINGS
from bertforge.errors import CheckpointError

MODULES = "modules.json"
# sentence-transformers' Pooling flags; bertforge pools by the first two.
POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
MODULE_TYPES = {
    "transformer": "sentence_transformers.models.Transformer",
    "pooling": "sentence_transformers.models.Pooling",
    "normalize": "sentence_transformers.models.Normalize",
}
# sentence-transformers >= 6 names the same modules by where they now live.
MODULE_TYPES_6 = {
    "transformer": "sentence_transformers.base.modules.transformer.Transformer",
    "pooling": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    "normalize": "sentence_transformers.base.modules.normalize.Normalize",
}


@dataclass(frozen=True)
class Pooling:
    """One vector per text: the first token's state or the mean of the real tokens', L2
    normalised or not, from at most `max_length` tokens (None: the tokenizer's limit)."""

    mode: str = "mean"
    normalize: bool = False
    max_length: int | None = None

    def override(self, mode: str | None, normalize: bool | None, max_length: int | None) -> Pooling:
        """This pooling with the caller's choices (None: keep the saved one)."""
        return Pooling(
            mode or self.mode,
            self.normalize if normalize is None else normalize,
            max_length or self.max_length,
        )


def read_pooling(path: str | Path) -> Pooling | None:
    """The pooling a sentence-transformers checkpoint declares, or None when `path` has no
    modules.json. A module or pooling mode bertforge cannot reproduce is an error, not a
    silently different vector."""
    path = Path(path)
    modules = _json(path / MODULES)
    if modules is None:
        return None
    kinds = {_kind(m, path): m for m in modules}
    if "transformer" not in kinds or kinds["transformer"].get("path", "") != "":
        raise CheckpointError(
            f"'{path / MODULES}' must start with a Transformer module at the checkpoint's root"
        )
    pooling = kinds.get("pooling")
    if pooling is None:
        raise CheckpointError(f"'{path / MODULES}' has no Pooling module: no sentence vector")
    where = path / pooling["path"] / "config.json"
    flags = _json(where) or {}
    if "pooling_mode" in flags:  # sentence-transformers >= 6: a mode name, or a list of them
        mode = flags["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        modes = [POOLING_FLAGS[k] for k in POOLING_FLAGS if flags.get(k)]
    if len(modes) != 1 or modes[0] not in POOLINGS:
        raise CheckpointError(
            f"'{where}' pools by {' + '.join(modes) or 'nothing'}; bertforge pools by exactly "
            "one of cls or mean"
        )
    settings = _json(path / "sentence_bert_config.json") or {}
    return Pooling(modes[0], "normalize" in kinds, settings.get("max_seq_length"))


def write_sentence_transformers(path: str | Path, pooling: Pooling, hidden_size: int) -> None:
    """The sentence-transformers files beside the HF checkpoint already in `path`."""
    path = Path(path)
    modules = [("transformer", ""), ("pooling", "1_Pooling")]
    if pooling.normalize:
        modules.append(("normalize", "2_Normalize"))
        (path / "2_Normalize").mkdir(parents=True, exist_ok=True)
    entries = [
        {"idx": i, "name": str(i), "path": where, "type": MODULE_TYPES[kind]}
        for i, (kind, where) in enumerate(modules)
    ]
    flags = {flag: mode == pooling.mode for flag, mode in POOLING_FLAGS.items()}
    files: dict[str, Any] = {
        "1_Pooling/config.json": {"word_embedding_dimension": hidden_size, **flags},
        "sentence_bert_config.json": {"max_seq_length": pooling.max_length, "do_lower_case": False},
        "config_sentence_transformers.json": {"similarity_fn_name": "cosine"},
        MODULES: entries,
    }
    for name, value in files.items():  # modules.json last: it marks the layout complete
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        write_text(path / name, json.dumps(value, indent=2) + "\n")


def _kind(module: dict[str, Any], path: Path) -> str:
    for kind in MODULE_TYPES:
        if module.get("type") in (MODULE_TYPES[kind], MODULE_TYPES_6[kind]):
            return kind
    raise CheckpointError(
        f"'{path / MODULES}' has module {module.get('type')!r}; bertforge reproduces "
        "Transformer, Pooling and Normalize only"
    )


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"'{path}' is not valid JSON ({e})") from None
