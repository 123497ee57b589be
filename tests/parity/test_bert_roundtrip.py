"""Checkpoints round-trip between transformers and bertforge with equal outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from tiny import SMALL, batch, hf_model
from torch.testing import assert_close

from bertforge import Encoder, EncoderConfig, PreTrainingModel


def assert_same_hidden(ours: torch.Tensor, theirs: torch.Tensor, mask: torch.Tensor) -> None:
    keep = mask.bool()
    assert_close(ours[keep], theirs[keep], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("safetensors", [True, False], ids=["safetensors", "bin"])
def test_hf_pretraining_loads_in_bertforge(tmp_path: Path, safetensors: bool) -> None:
    hf = hf_model("bert", "ForPreTraining")
    if safetensors:
        hf.save_pretrained(tmp_path)
    else:
        torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
        hf.config.to_json_file(tmp_path / "config.json")
    ours = PreTrainingModel.from_pretrained(tmp_path)
    assert ours.nsp is not None
    b = batch()
    with torch.no_grad():
        theirs = hf(**b, output_hidden_states=True)
        mine = ours(**b)
    assert_same_hidden(mine.last_hidden_state, theirs.hidden_states[-1], b["attention_mask"])
    keep = b["attention_mask"].bool()
    assert_close(mine.mlm_logits[keep], theirs.prediction_logits[keep], atol=1e-5, rtol=1e-5)
    assert_close(mine.nsp_logits, theirs.seq_relationship_logits, atol=1e-5, rtol=1e-5)

    enc = Encoder.from_pretrained(tmp_path)  # heads reported and ignored
    with torch.no_grad():
        assert_same_hidden(enc(**b).last_hidden_state, mine.last_hidden_state, b["attention_mask"])


def test_masked_positions_select_rows_of_full_logits(tmp_path: Path) -> None:
    hf_model("bert", "ForPreTraining").save_pretrained(tmp_path)
    model = PreTrainingModel.from_pretrained(tmp_path)
    b = batch()
    picked = torch.zeros_like(b["input_ids"], dtype=torch.bool)
    picked[0, [1, 5]] = True
    picked[2, 3] = True
    with torch.no_grad():
        full = model(**b).mlm_logits  # (B, T, V)
        sparse = model(**b, masked_positions=picked).mlm_logits  # (M, V)
    assert sparse.shape == (3, SMALL["vocab_size"])
    assert_close(sparse, full[picked])


@pytest.mark.parametrize(
    ("ours_cls", "heads", "hf_cls"),
    [
        (PreTrainingModel, ("mlm", "nsp"), transformers.BertForPreTraining),
        (PreTrainingModel, ("mlm",), transformers.BertForMaskedLM),
        (Encoder, None, transformers.BertModel),
    ],
    ids=["pretraining", "masked-lm", "bare"],
)
def test_bertforge_saves_what_transformers_loads(
    tmp_path: Path, ours_cls: type, heads: tuple[str, ...] | None, hf_cls: type
) -> None:
    config = EncoderConfig(**SMALL)
    torch.manual_seed(0)
    ours = ours_cls(config) if heads is None else ours_cls(config, heads)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    ours.eval().save_pretrained(tmp_path)

    auto = transformers.AutoModel if hf_cls is transformers.BertModel else hf_cls
    hf, info = auto.from_pretrained(tmp_path, output_loading_info=True)
    assert type(hf) is hf_cls
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    b = batch()
    with torch.no_grad():
        mine = ours(**b)
        theirs = hf.eval()(**b, output_hidden_states=True)
    if isinstance(ours, Encoder):
        assert_same_hidden(mine.last_hidden_state, theirs.last_hidden_state, b["attention_mask"])
        assert_close(mine.pooler_output, theirs.pooler_output, atol=1e-5, rtol=1e-5)
        return
    keep = b["attention_mask"].bool()
    nsp = "nsp" in heads
    hf_logits = theirs.prediction_logits if nsp else theirs.logits
    assert_close(mine.mlm_logits[keep], hf_logits[keep], atol=1e-5, rtol=1e-5)
    if nsp:
        assert_close(mine.nsp_logits, theirs.seq_relationship_logits, atol=1e-5, rtol=1e-5)

    # And back: the directory transformers re-saves loads in bertforge with the same outputs.
    hf.save_pretrained(tmp_path / "again")
    again = ours_cls.from_pretrained(tmp_path / "again")
    with torch.no_grad():
        assert_close(again(**b).mlm_logits[keep], mine.mlm_logits[keep])


def test_hidden_states_and_attentions_match(tmp_path: Path) -> None:
    hf = hf_model("bert", attn_implementation="eager")
    hf.save_pretrained(tmp_path)
    ours = Encoder.from_pretrained(tmp_path)
    b = batch()
    with torch.no_grad():
        theirs = hf(**b, output_hidden_states=True, output_attentions=True)
        mine = ours(**b, output_hidden_states=True, output_attentions=True)
    assert len(mine.hidden_states) == len(theirs.hidden_states) == SMALL["num_hidden_layers"] + 1
    for a, t in zip(mine.hidden_states, theirs.hidden_states, strict=True):
        assert_same_hidden(a, t, b["attention_mask"])
    keep = b["attention_mask"].bool()
    for a, t in zip(mine.attentions, theirs.attentions, strict=True):
        # Rows of real query tokens; padded keys get zero probability in both.
        assert_close(a.transpose(1, 2)[keep], t.transpose(1, 2)[keep], atol=1e-6, rtol=1e-5)
