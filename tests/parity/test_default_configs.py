"""A checkpoint that `transformers` builds must load here: each family's *default*
`transformers` config (RoBERTa's type_vocab_size=2 included) and the shapes of its best-known
published checkpoint, at one layer (depth only repeats a layer; every other field is as
given). bertforge's outputs equal transformers' with padding in the batch, and what bertforge
saves loads back into the same class with no missing or unexpected keys. NEZHA, which
transformers 5 no longer ships, is checked against its fixture in test_nezha.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from torch.testing import assert_close

from bertforge import PreTrainingModel

# The config.json fields of bert-base-uncased, roberta-base, albert-base-v2,
# distilbert-base-uncased and google/electra-small-discriminator that shape the model.
PUBLISHED: dict[str, dict[str, Any]] = {
    "Bert": {"vocab_size": 30522, "type_vocab_size": 2},
    "Roberta": {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
                "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2},
    "Albert": {"vocab_size": 30000, "embedding_size": 128, "hidden_size": 768,
               "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu_new",
               "classifier_dropout_prob": 0.1, "hidden_dropout_prob": 0, "pad_token_id": 0},
    "DistilBert": {"vocab_size": 30522, "dim": 768, "n_heads": 12, "hidden_dim": 3072,
                   "activation": "gelu"},
    "Electra": {"vocab_size": 30522, "embedding_size": 128, "hidden_size": 256,
                "num_attention_heads": 4, "intermediate_size": 1024},
}  # fmt: skip
HEADS = {
    "Bert": ("ForMaskedLM", "ForPreTraining"),
    "Roberta": ("ForMaskedLM",),
    "Albert": ("ForMaskedLM", "ForPreTraining"),
    "DistilBert": ("ForMaskedLM",),
    "Electra": ("ForMaskedLM", "ForPreTraining"),
}
CASES = [
    (prefix, suffix, shape)
    for prefix, suffixes in HEADS.items()
    for suffix in suffixes
    for shape in ("default", "published")
    if (prefix, suffix, shape) != ("Albert", "ForPreTraining", "default")  # 10 s for no new key
]


def one_layer(prefix: str, shape: str) -> Any:
    fields = PUBLISHED[prefix] if shape == "published" else {}
    depth = {"n_layers": 1} if prefix == "DistilBert" else {"num_hidden_layers": 1}
    return getattr(transformers, prefix + "Config")(**fields, **depth)


def padded_batch(config: Any, segments: bool) -> dict[str, torch.Tensor]:
    """(2, 10) ids with the second row padded (with the config's pad id) after 6 tokens, and a
    second segment from position 5 where the family has token types."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, config.vocab_size, (2, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    batch = {"input_ids": ids.masked_fill(mask == 0, config.pad_token_id), "attention_mask": mask}
    if segments:
        types = torch.zeros_like(ids)
        types[:, 5:] = 1
        batch["token_type_ids"] = types
    return batch


def outputs(out: Any, mask: torch.Tensor) -> list[torch.Tensor]:
    real = mask.bool()
    if isinstance(out, dict) or hasattr(out, "to_tuple"):  # transformers
        logits = [getattr(out, k, None) for k in ("logits", "prediction_logits")]
        pair = getattr(out, "seq_relationship_logits", getattr(out, "sop_logits", None))
        return [t[real] for t in logits if t is not None] + ([pair] if pair is not None else [])
    main = out.mlm_logits if out.mlm_logits is not None else out.rtd_logits
    return [main[real]] + ([out.nsp_logits] if out.nsp_logits is not None else [])


@pytest.mark.parametrize(("prefix", "suffix", "shape"), CASES, ids=["-".join(c) for c in CASES])
def test_transformers_configs_load_with_equal_outputs(
    tmp_path: Path, prefix: str, suffix: str, shape: str
) -> None:
    torch.manual_seed(0)
    hf = getattr(transformers, prefix + suffix)(one_layer(prefix, shape)).eval()
    hf.save_pretrained(tmp_path / "hf")
    ours = PreTrainingModel.from_pretrained(tmp_path / "hf")
    # RoBERTa's tokenizer types every token 0, whatever type_vocab_size is.
    segments = prefix not in ("DistilBert", "Roberta")
    batch = padded_batch(hf.config, segments)
    with torch.no_grad():
        want = outputs(hf(**batch), batch["attention_mask"])
        got = outputs(ours(**batch), batch["attention_mask"])
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert_close(a, b, atol=1e-5, rtol=1e-5)

    ours.save_pretrained(tmp_path / "ours")
    cls = getattr(transformers, prefix + suffix)
    again, info = cls.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert again.config.to_dict().get("type_vocab_size") == hf.config.to_dict().get(
        "type_vocab_size"
    )
    with torch.no_grad():
        for a, b in zip(outputs(again.eval()(**batch), batch["attention_mask"]), want, strict=True):
            assert_close(a, b, atol=1e-5, rtol=1e-5)
