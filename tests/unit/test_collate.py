"""PretrainingCollator: shapes, padding, token types, labels, static vs dynamic masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bertforge.data.collate import PretrainingCollator, Sample
from bertforge.data.instances import Instance
from bertforge.errors import ConfigError, DataError
from bertforge.objectives import MaskingConfig, MaskingVocab
from bertforge.tokenization import Tokenizer

PAD, CLS, SEP, MASK = 0, 1, 2, 3


def vocab() -> MaskingVocab:
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(96)]
    return MaskingVocab.from_tokens(
        tokens, special_ids=[CLS, SEP], pad_id=PAD, mask_id=MASK, scheme="wordpiece"
    )


def inst(n_a: int, n_b: int, label: int = 0) -> Instance:
    """[CLS] A [SEP] B [SEP] with words 4..; len_a counts [CLS] A [SEP]."""
    a, b = np.arange(4, 4 + n_a), np.arange(50, 50 + n_b)
    tail = [*b, SEP] if n_b else []
    return Instance(np.array([CLS, *a, SEP, *tail]), n_a + 2, n_b + 1 if n_b else 0, label)


def test_shapes_padding_and_types() -> None:
    collate = PretrainingCollator(vocab(), MaskingConfig(rate=0.5), seed=0)
    samples = [
        Sample(0, 0, inst(3, 2, 1)),
        Sample(1, 0, inst(7, 4, 0)),
        Sample(2, 0, inst(5, 0, -1)),
    ]
    batch = collate(samples)
    assert set(batch) == {
        "input_ids",
        "token_type_ids",
        "attention_mask",
        "mlm_labels",
        "nsp_labels",
    }
    assert all(v.dtype == torch.int64 for v in batch.values())
    assert batch["input_ids"].shape == (3, 14) and batch["nsp_labels"].tolist() == [1, 0, -1]
    assert batch["attention_mask"].sum(1).tolist() == [8, 14, 7]
    assert batch["token_type_ids"][0].tolist() == [0] * 5 + [1] * 3 + [0] * 6
    assert batch["token_type_ids"][2].sum() == 0
    pad = batch["attention_mask"] == 0
    assert (batch["input_ids"][pad] == PAD).all() and (batch["mlm_labels"][pad] == -100).all()
    # Inputs equal the instance where nothing is predicted; labels hold the originals.
    for row, s in enumerate(samples):
        n = len(s.instance.tokens)
        ids, labels = batch["input_ids"][row, :n], batch["mlm_labels"][row, :n]
        original = torch.from_numpy(s.instance.tokens)
        keep = labels == -100
        assert (ids[keep] == original[keep]).all() and (labels[~keep] == original[~keep]).all()
        assert (labels[[0, n - 1]] == -100).all()  # [CLS] and the last [SEP]


def test_pad_to_multiple_and_no_type_ids() -> None:
    collate = PretrainingCollator(
        vocab(), MaskingConfig(), seed=0, pad_to_multiple_of=8, type_ids=False
    )
    batch = collate([Sample(0, 0, inst(6, 4)), Sample(1, 0, inst(2, 1))])
    assert batch["input_ids"].shape == (2, 16)
    assert (batch["token_type_ids"] == 0).all()


def test_dynamic_and_static_masks() -> None:
    samples = [Sample(i, 0, inst(40, 40)) for i in range(4)]
    later = [s._replace(epoch=5) for s in samples]
    dynamic = PretrainingCollator(vocab(), MaskingConfig(), seed=3)
    static = PretrainingCollator(vocab(), MaskingConfig(static=True), seed=3)
    assert torch.equal(dynamic(samples)["mlm_labels"], dynamic(samples)["mlm_labels"])
    assert not torch.equal(dynamic(samples)["mlm_labels"], dynamic(later)["mlm_labels"])
    assert torch.equal(static(samples)["input_ids"], static(later)["input_ids"])
    # An example's masks do not depend on its batch mates or its row.
    alone = dynamic([samples[2]])
    assert torch.equal(alone["input_ids"][0], dynamic(samples)["input_ids"][2])


def test_out_of_vocabulary_ids_are_a_data_error() -> None:
    bad = Instance(np.array([CLS, 4, 100, SEP]), 4, 0, -1)
    with pytest.raises(DataError, match="outside the vocabulary"):
        PretrainingCollator(vocab(), MaskingConfig(), seed=0)([Sample(0, 0, bad)])


def test_from_tokenizer(minilm_path: Path) -> None:
    tok = Tokenizer.from_pretrained(minilm_path)
    collate = PretrainingCollator.from_tokenizer(tok, MaskingConfig(mode="whole_word"), seed=0)
    enc = tok("a first segment of text", "and the second one")
    tokens = np.array(enc["input_ids"])
    len_a = enc["token_type_ids"].count(0)
    batch = collate([Sample(0, 0, Instance(tokens, len_a, len(tokens) - len_a, 0))])
    assert batch["token_type_ids"][0].tolist() == enc["token_type_ids"]


def test_sampling_draws_belong_to_the_example() -> None:
    """ELECTRA's draws: one uniform per real token, a function of (seed, epoch, example)
    alone, drawn after the masks so that asking for them changes no mask."""
    fields = ["mlm_labels", "sample_uniforms"]
    with_draws = PretrainingCollator(vocab(), MaskingConfig(), seed=3, fields=fields)
    plain = PretrainingCollator(vocab(), MaskingConfig(), seed=3, fields=["mlm_labels"])
    samples = [Sample(i, 1, inst(10 + 5 * i, 8)) for i in range(3)]
    batch = with_draws(samples)
    draws = batch["sample_uniforms"]  # (B, T)
    assert draws.dtype == torch.float32 and draws.shape == batch["input_ids"].shape
    real = batch["attention_mask"].bool()
    assert ((draws[real] >= 0) & (draws[real] < 1)).all() and (draws[~real] == 0).all()
    assert draws[real].std() > 0.2  # spread over [0, 1), not a constant
    assert torch.equal(batch["mlm_labels"], plain(samples)["mlm_labels"])
    alone = with_draws([samples[1]])["sample_uniforms"][0]
    assert torch.equal(alone, draws[1, : alone.numel()])
    later = with_draws([s._replace(epoch=2) for s in samples])["sample_uniforms"]
    assert not torch.equal(later, draws)
    with pytest.raises(ConfigError, match="sample_uniforms serves the masked tokens"):
        PretrainingCollator(vocab(), MaskingConfig(), seed=0, fields=["sample_uniforms"])


def test_document_ids_from_the_separators_of_a_pack() -> None:
    """[CLS] d1 [SEP] d2 [SEP] d3 [SEP]: a separator closes its document; padding is 0. The
    separators are read from the tokens as built, not the masked ones."""
    pack = Instance(np.array([CLS, 4, 5, SEP, 6, SEP, 7, 8, 9, SEP]), 10, 0, -1)
    single = Instance(np.array([CLS, 4, 5, SEP]), 4, 0, -1)
    collate = PretrainingCollator(vocab(), MaskingConfig(rate=0.9), seed=0, separator=SEP)
    batch = collate([Sample(0, 0, pack), Sample(1, 0, single)])
    assert batch["document_ids"].tolist() == [
        [1, 1, 1, 1, 2, 2, 3, 3, 3, 3],
        [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
    ]
    plain = PretrainingCollator(vocab(), MaskingConfig(rate=0.9), seed=0)
    assert "document_ids" not in plain([Sample(0, 0, pack)])
