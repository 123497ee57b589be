"""DeBERTa-v2/v3 beyond the shared round trip (test_families.py): other attention settings both
ways, the log buckets against transformers' own function, the tokenizer as microsoft ships it
(spm.model and a two-key tokenizer_config.json), and the configs it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from tiny import batch, hf_model
from torch.testing import assert_close
from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

from bertforge import CheckpointError, Encoder, PreTrainingModel, TokenizerError
from bertforge.models.disentangled import log_buckets
from bertforge.tokenization import Tokenizer, train_tokenizer

VARIANTS = {
    # Each layer its own distance projections, exact distances clipped at 6, no table norm.
    "own-projections": {"share_att_key": False, "position_buckets": -1,
                        "max_relative_positions": 6, "norm_rel_ebd": "none"},
    "c2p-only": {"pos_att_type": ["c2p"], "share_att_key": False},
    "p2c-only": {"pos_att_type": "p2c"},
    # DeBERTa-v2's absolute positions and token types, without relative attention.
    "absolute": {"relative_attention": False, "position_biased_input": True,
                 "type_vocab_size": 2, "pos_att_type": None},
}  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("suffix", ["Model", "ForMaskedLM"])
def test_attention_variants_both_ways(tmp_path: Path, variant: str, suffix: str) -> None:
    hf = hf_model("deberta-v2", suffix, **VARIANTS[variant])
    hf.save_pretrained(tmp_path / "hf")
    ours = (Encoder if suffix == "Model" else PreTrainingModel).from_pretrained(tmp_path / "hf")
    b = batch("deberta-v2")
    mask = b["attention_mask"].bool()

    def out(model: torch.nn.Module) -> torch.Tensor:
        o = model(**b)
        if suffix == "Model":
            return o.last_hidden_state
        return o.mlm_logits if hasattr(o, "mlm_logits") else o.logits

    with torch.no_grad():
        want = out(hf)[mask]
        assert_close(out(ours)[mask], want, atol=1e-5, rtol=1e-5)
    ours.save_pretrained(tmp_path / "ours")
    auto = transformers.AutoModel if suffix == "Model" else transformers.AutoModelForMaskedLM
    again, info = auto.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    with torch.no_grad():
        assert_close(out(again.eval())[mask], want, atol=1e-5, rtol=1e-5)


def test_log_buckets_equal_transformers() -> None:
    distance = torch.arange(-700, 701)[None, :] - torch.zeros(1, 1, dtype=torch.long)
    for buckets, reach in ((256, 512), (8, 16), (32, 100)):
        want = make_log_bucket_position(distance, buckets, reach).long()
        assert torch.equal(log_buckets(distance, buckets, reach), want)


def test_a_tokenizer_as_microsoft_ships_it(tmp_path: Path, corpus: Path, doc_lines) -> None:
    """spm.model with `{"do_lower_case": false, "vocab_type": "spm"}`: both build
    DebertaV2Tokenizer's pipeline from the SentencePiece model alone."""
    trained = train_tokenizer([corpus], "unigram", 800, style="deberta")
    trained.save_pretrained(tmp_path / "saved", "DebertaV2Tokenizer")
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(tmp_path / "saved" / "spm.model", shipped / "spm.model")
    config = {"do_lower_case": False, "vocab_type": "spm", "tokenizer_class": "DebertaV2Tokenizer"}
    (shipped / "tokenizer_config.json").write_text(json.dumps(config))
    ours = Tokenizer.from_pretrained(shipped)
    theirs = transformers.AutoTokenizer.from_pretrained(shipped)
    assert ours.vocab_size == trained.vocab_size
    lines = [*doc_lines[::20], "  Leading  spaces\tand\ttabs  ", "Ünïcödé naïve café", "a\nb"]
    options = {"return_offsets_mapping": True, "truncation": True, "max_length": 48}
    a, b = ours(lines, **options), theirs(lines, **options)
    for key in ("input_ids", "token_type_ids", "attention_mask", "offset_mapping"):
        assert a[key] == b[key], key
    a, b = ours(lines[:40], lines[40:80], **options), theirs(lines[:40], lines[40:80], **options)
    for key in ("input_ids", "token_type_ids", "offset_mapping"):
        assert a[key] == b[key], (key, "pairs")
    # microsoft's v3 keeps [MASK] past the pieces in added_tokens.json: tokens there land at
    # their ids, as in transformers.
    new = {"<extra_0>": trained.vocab_size, "<extra_1>": trained.vocab_size + 1}
    (shipped / "added_tokens.json").write_text(json.dumps(new))
    ours = Tokenizer.from_pretrained(shipped)
    theirs = transformers.AutoTokenizer.from_pretrained(shipped)
    text = ["a <extra_1> b <extra_0>"]
    assert ours(text)["input_ids"] == theirs(text)["input_ids"]
    assert trained.vocab_size + 1 in ours(text)["input_ids"][0]
    # A special role's token there (as [MASK] is) becomes that special token.
    (shipped / "added_tokens.json").write_text(json.dumps({"<mask2>": trained.vocab_size}))
    (shipped / "tokenizer_config.json").write_text(json.dumps({**config, "mask_token": "<mask2>"}))
    ours = Tokenizer.from_pretrained(shipped)
    theirs = transformers.AutoTokenizer.from_pretrained(shipped)
    assert ours.mask_token_id == theirs.mask_token_id == trained.vocab_size
    text = ["a <mask2> b"]
    assert ours(text)["input_ids"] == theirs(text)["input_ids"]
    (shipped / "added_tokens.json").write_text(json.dumps({"<extra_0>": 5}))
    with pytest.raises(TokenizerError, match=r"added_tokens\.json puts '<extra_0>' at id 5"):
        Tokenizer.from_pretrained(shipped)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "deberta"}, "unknown model_type 'deberta'.*supported: .*deberta-v2"),
        ({"position_biased_input": True}, "relative and absolute positions together"),
        ({"conv_kernel_size": 3}, "conv_kernel_size=3 is not supported"),
        ({"pos_att_type": "p2c|p2p"}, "pos_att_type p2p is not supported"),
        ({"relative_attention": False, "position_biased_input": True}, "without relative_att"),
    ],
    ids=["v1", "both-positions", "conv", "p2p", "terms-without-relative"],
)
def test_configs_it_refuses_are_named(tmp_path: Path, change: dict, message: str) -> None:
    hf_model("deberta-v2", "Model").save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(CheckpointError, match=message):
        Encoder.from_pretrained(tmp_path)
