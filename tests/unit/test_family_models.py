"""Family-level model pieces: parameter counts against transformers, DistilBERT students built
from a teacher's layers, and ELECTRA's shared generator/discriminator embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from torch.testing import assert_close

from bertforge import FAMILIES, ConfigError, Encoder, PreTrainingModel
from bertforge.architectures import student_from_teacher, tie_embeddings
from bertforge.interop.hf.config import config_to_hf

POOLER = {"bert": True, "roberta": True, "albert": True}  # the HF bare model has one
HF_CONFIG = {"bert": "BertConfig", "roberta": "RobertaConfig", "albert": "AlbertConfig",
             "distilbert": "DistilBertConfig", "electra": "ElectraConfig"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HF_CONFIG))
@pytest.mark.parametrize("preset", ["tiny", "base"])
def test_parameter_count_equals_transformers(name: str, preset: str) -> None:
    config = FAMILIES[name].config(preset, vocab_size=30000, pad_token_id=1)
    hf_fields = config_to_hf(FAMILIES[name], config, "x")
    hf_config = getattr(transformers, HF_CONFIG[name])(**hf_fields)
    with torch.device("meta"):
        ours = Encoder(config, add_pooler=POOLER.get(name, False)).num_parameters()
        theirs = transformers.AutoModel.from_config(hf_config).num_parameters()
    assert ours == theirs
    if preset == "base" and name == "albert":
        assert 11_000_000 < ours < 12_500_000  # the paper's "12M" (BERT-base: 110M)


def teacher(name: str, layers: int = 4) -> PreTrainingModel:
    torch.manual_seed(0)
    config = FAMILIES[name].config("tiny", vocab_size=100, num_hidden_layers=layers)
    return PreTrainingModel(config, heads=("mlm",)).eval()


def test_a_bert_teacher_gives_a_distilbert_of_every_other_layer(tmp_path: Path) -> None:
    big = teacher("bert")
    small = student_from_teacher(big).eval()
    assert small.config.model_type == "distilbert" and small.config.num_hidden_layers == 2
    assert small.encoder.embeddings.segments is None and small.encoder.pooler is None
    for i, j in enumerate((0, 2)):
        for (key, got), want in zip(
            small.encoder.layers[i].state_dict().items(),
            big.encoder.layers[j].state_dict().values(),
            strict=True,
        ):
            assert torch.equal(got, want), key
    assert_close(small.encoder.embeddings.tokens.weight, big.encoder.embeddings.tokens.weight)
    assert small.encoder.embeddings.tokens.weight is not big.encoder.embeddings.tokens.weight
    small.save_pretrained(tmp_path)
    hf = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == "DistilBertForMaskedLM"
    ids = torch.randint(5, 100, (2, 7))
    with torch.no_grad():
        assert_close(small(ids).mlm_logits, hf(ids).logits, atol=1e-5, rtol=1e-5)


def test_other_teachers_keep_their_family_or_refuse() -> None:
    roberta = student_from_teacher(teacher("roberta", layers=3))
    assert (roberta.config.model_type, roberta.config.num_hidden_layers) == ("roberta", 2)
    with pytest.raises(ConfigError, match="shared layers"):
        student_from_teacher(teacher("albert"))


def test_electra_generator_uses_the_discriminator_embeddings(tmp_path: Path) -> None:
    fam = FAMILIES["electra"]
    disc = PreTrainingModel(fam.config("tiny", vocab_size=100, embedding_size=32), heads=("rtd",))
    gen = PreTrainingModel(
        fam.config("tiny", vocab_size=100, embedding_size=32, hidden_size=64,
                   num_attention_heads=1, intermediate_size=128),
        heads=("mlm",),
    )  # fmt: skip
    tie_embeddings(gen, disc)
    shared = gen.encoder.embeddings.tokens.weight
    assert shared is disc.encoder.embeddings.tokens.weight
    assert gen.encoder.embeddings.project is not disc.encoder.embeddings.project  # E -> own H
    ids = torch.randint(5, 100, (2, 6))
    (gen(ids).mlm_logits.sum() + disc(ids).rtd_logits.sum()).backward()
    assert shared.grad is not None
    gen.save_pretrained(tmp_path / "generator")
    disc.save_pretrained(tmp_path / "discriminator")
    loaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "generator")
    assert_close(loaded.electra.embeddings.word_embeddings.weight, shared.detach())
    small = PreTrainingModel(fam.config("tiny", vocab_size=100, embedding_size=16), heads=("mlm",))
    with pytest.raises(ConfigError, match="same vocabulary and embedding size"):
        tie_embeddings(small, disc)
