"""config.json <-> EncoderConfig, driven by a family's `HFConfig` table (families/spec.py)."""

from __future__ import annotations

from typing import Any

from bertforge.config import EncoderConfig
from bertforge.errors import BertforgeError, CheckpointError
from bertforge.families import Family


def config_from_hf(fam: Family, hf: dict[str, Any], source: str) -> EncoderConfig:
    """HF config.json -> our config (missing optional fields take our defaults)."""
    spec = fam.hf.config
    missing = [spec.renames.get(k, k) for k in spec.required if spec.renames.get(k, k) not in hf]
    if missing:
        raise CheckpointError(f"{source}: missing required key(s) {', '.join(missing)}")
    for key, allowed in spec.expect.items():
        if hf.get(key) is not None and hf[key] not in allowed:  # None: the class default
            raise CheckpointError(
                f"{source}: {key}={hf[key]!r} is not supported for {fam.name} checkpoints "
                f"(expected {' or '.join(map(repr, allowed))})"
            )
    named = {k: spec.renames.get(k, k) for k in spec.fields}  # ours -> HF name
    fields = {k: hf[name] for k, name in named.items() if hf.get(name) is not None}
    for key in spec.none_when_hidden:
        if fields.get(key) == fields.get("hidden_size"):
            fields.pop(key, None)
    if spec.read is not None:
        fields |= spec.read(hf)
    fields |= dict(spec.fixed)
    if spec.derived is not None:
        fields |= spec.derived(fields)
    try:
        return EncoderConfig(model_type=fam.name, **fields)
    except BertforgeError as e:
        raise CheckpointError(f"{source}: {e}") from None


def config_to_hf(fam: Family, config: EncoderConfig, architecture: str) -> dict[str, Any]:
    """Our config -> config.json for `architecture`; refuses settings the family's format
    cannot express (they would silently change the model on reload)."""
    spec = fam.hf.config
    ours = config.to_dict()
    hf = {spec.renames.get(k, k): ours[k] for k in spec.fields}
    for key in spec.none_when_hidden:
        if hf.get(spec.renames.get(key, key)) is None:
            hf[spec.renames.get(key, key)] = config.hidden_size
    if spec.written is not None:
        hf |= spec.written(ours)
    back = config_from_hf(fam, hf, "config").to_dict()
    lost = sorted(k for k in ours if ours[k] != back[k])
    if lost:
        shown = ", ".join(f"{k}={ours[k]!r}" for k in lost)
        raise CheckpointError(
            f"the {fam.name} format cannot express {shown}; save this model in its own "
            "family's format (set model_type)"
        )
    return {
        "architectures": [architecture],
        "model_type": fam.hf.model_type,
        "tie_word_embeddings": True,
        "dtype": "float32",
        **spec.write,
        **hf,
    }
