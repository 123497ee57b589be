"""The DeBERTa-v3 recipe end to end on a tiny model: replaced-token detection with
gradient-disentangled embedding sharing (a generator as wide and half as deep, its token
table read by the discriminator through a stop-gradient plus a delta); the loss falls, a run
killed by SIGKILL resumes to the same weights, and the export is a `DebertaV2Model` (delta
folded in, the RTD head beside it) and a `DebertaV2ForMaskedLM` that transformers loads; the
discriminator fine-tunes on (tiny) CoNLL NER and SQuAD."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from test_modernbert_pretrain import (
    RUN,
    fine_tunes_on_ner_and_squad,
    straight_and_resumed,
    train_losses,
)

from bertforge import PretrainResult, pretrain
from bertforge.data.builder import BuildConfig, build_data
from bertforge.tokenization import train_tokenizer

TINY = ["preset=tiny", *RUN]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    root = tmp_path_factory.mktemp("deberta")
    tok = train_tokenizer([corpus], "unigram", 800, style="deberta")
    build_data(tok, [corpus], root / "data", BuildConfig(max_seq_len=64), workers=0)
    return root / "data"


@pytest.fixture(scope="module")
def trained(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> PretrainResult:
    run = tmp_path_factory.mktemp("gdes") / "run"
    return pretrain(shards, run, "deberta-v3-xsmall", overrides=TINY)


def test_gdes_recipe_trains_and_exports_both_models(
    trained: PretrainResult, tmp_path: Path
) -> None:
    result = trained
    losses = train_losses(result.run_dir)
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5]), losses
    disc, info = transformers.AutoModel.from_pretrained(
        result.model / "discriminator", output_loading_info=True
    )
    assert type(disc).__name__ == "DebertaV2Model"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    head = load_file(result.model / "discriminator" / "rtd_head.safetensors")
    assert sorted(head) == ["dense.bias", "dense.weight", "out.bias", "out.weight"]
    gen, info = transformers.AutoModelForMaskedLM.from_pretrained(
        result.model / "generator", output_loading_info=True
    )
    assert type(gen).__name__ == "DebertaV2ForMaskedLM"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert gen.config.num_hidden_layers == disc.config.num_hidden_layers // 2
    # The delta trained: the discriminator's table is the generator's plus something.
    checkpoint = load_file(result.run_dir / "checkpoints" / "step-00000030" / "model.safetensors")
    delta = checkpoint["discriminator.encoder.embeddings.tokens.delta"]
    assert float(delta.abs().max()) > 0
    folded = gen.deberta.embeddings.word_embeddings.weight.detach() + delta
    torch.testing.assert_close(disc.embeddings.word_embeddings.weight.detach(), folded)
    fine_tunes_on_ner_and_squad(result.model / "discriminator", tmp_path / "finetune")


def test_a_gdes_export_continues_from_both_parts(
    trained: PretrainResult, shards: Path, tmp_path: Path
) -> None:
    """`--init hf/discriminator --init-generator hf/generator`: the RTD head beside the model
    loads, the generator's table is shared again and the delta unfolded from the folded one;
    0 steps export the same models, and training goes on."""
    hf = trained.model
    init = {"init": hf / "discriminator", "init_generator": hf / "generator"}
    sets = [item for item in RUN if not item.startswith("train.max_steps")]
    start = pretrain(shards, tmp_path / "run0", "deberta-v3-xsmall", max_steps=0,
                     overrides=sets, **init)  # fmt: skip
    parts = start.started["parts"]
    assert parts["discriminator"]["loaded"] == ["encoder", "rtd"], parts
    assert parts["generator"]["loaded"] == ["encoder", "mlm"] and not parts["generator"]["new"]
    for name in ("discriminator/model.safetensors", "discriminator/rtd_head.safetensors",
                 "generator/model.safetensors"):  # fmt: skip
        want, got = load_file(hf / name), load_file(start.model / name)
        assert want.keys() == got.keys(), name
        for key in want:  # E_G + (E_D - E_G): E_D up to rounding
            torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=0)
    run = pretrain(shards, tmp_path / "run", "deberta-v3-xsmall", max_steps=10,
                   overrides=sets, **init)  # fmt: skip
    assert all(math.isfinite(x) for x in train_losses(run.run_dir))
    _, info = transformers.AutoModel.from_pretrained(
        run.model / "discriminator", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_a_killed_gdes_run_resumes_to_the_same_weights(shards: Path, tmp_path: Path) -> None:
    straight, resumed = straight_and_resumed(shards, tmp_path, "deberta-v3-xsmall", TINY)
    for part in ("discriminator", "generator"):
        a = load_file(straight.model / part / "model.safetensors")
        b = load_file(resumed.model / part / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
