"""Every pretraining objective through the one loop: ELECTRA (generator MLM + replaced-token
detection), SpanBERT (MLM + span boundary), ALBERT (n-gram masking + SOP) and DistilBERT
distillation. Each runs a few dozen steps on a tiny config with a falling loss, and its export
opens in transformers with the logits bertforge computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from bertforge import PreTrainingModel, SequenceClassifier, pretrain
from bertforge.data.builder import BuildConfig, build_data
from bertforge.errors import ConfigError, DataError
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer, train_tokenizer

STEPS = 40
TINY = [
    "preset=tiny",
    "model.max_position_embeddings=64",
    "model.hidden_dropout_prob=0",
    "model.attention_probs_dropout_prob=0",
    f"train.max_steps={STEPS}",
    "train.batch_size=16",
    "train.micro_batch_size=8",
    "train.lr=2e-3",
    "train.warmup_steps=4",
    f"train.eval_every={STEPS}",
    "train.eval_batches=1",
    "train.log_every=1",
    "train.precision=fp32",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pydoc_data.topics import topics

    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(list(topics.values())[:80]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def wordpiece(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return train_tokenizer([corpus], "wordpiece", 800)


@pytest.fixture(scope="module")
def packed(corpus: Path, wordpiece: Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shards(tmp_path_factory.mktemp("packed"), corpus, wordpiece, "full-sentences")


@pytest.fixture(scope="module")
def teacher(packed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer BERT MLM pretrained for a few dozen steps on the same data."""
    run = tmp_path_factory.mktemp("teacher") / "run"
    return pretrain(packed, run, load_recipe(None, [*TINY, "model.num_hidden_layers=4"])).model


def shards(root: Path, corpus: Path, tok: Tokenizer, objective: str) -> Path:
    out = root / f"data-{objective}"
    build_data(tok, [corpus], out, BuildConfig(objective=objective, max_seq_len=48,
                                               eval_fraction=0.1), workers=0)  # fmt: skip
    return out


def train_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [r for r in records if r["split"] == "train"]


def assert_falls(train: list[dict], key: str = "loss", by: float = 0.1) -> None:
    """The mean of the last five steps is at least `by` (a fraction) below the first five's."""
    first = sum(r[key] for r in train[:5]) / 5
    last = sum(r[key] for r in train[-5:]) / 5
    assert last < (1 - by) * first, f"{key}: first steps {first:.3f}, last steps {last:.3f}"


def logits_agree(ours: PreTrainingModel, theirs: torch.nn.Module, path: Path, field: str) -> None:
    ids = Tokenizer.from_pretrained(path)(["a short test", "of the export here"], padding=True,
                                          return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        mine = getattr(ours.eval()(ids["input_ids"], ids["attention_mask"]), field)
        out = theirs.eval()(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"])
    keep = ids["attention_mask"].bool()
    torch.testing.assert_close(mine[keep], out.logits[keep], atol=1e-4, rtol=1e-4)


def test_electra(tmp_path: Path, packed: Path) -> None:
    data = packed
    recipe = load_recipe("electra-small", ["preset=tiny", *TINY[1:], "generator.size=0.5"])
    out = pretrain(data, tmp_path / "run", recipe).model
    train = train_records(tmp_path / "run")
    assert len(train) == STEPS
    assert_falls(train, "mlm_loss")
    assert_falls(train, "rtd_loss")
    last = train[-1]
    for key in ("rtd_acc", "rtd_precision", "rtd_recall", "rtd_replaced_share", "mlm_acc"):
        assert 0.0 <= last[key] <= 1.0
    # The discriminator beats always answering "original" once it has learnt something.
    assert last["rtd_acc"] > 1 - last["rtd_replaced_share"] - 0.02
    disc = transformers.AutoModelForPreTraining.from_pretrained(out / "discriminator")
    gen = transformers.AutoModelForMaskedLM.from_pretrained(out / "generator")
    assert type(disc).__name__ == "ElectraForPreTraining"
    assert type(gen).__name__ == "ElectraForMaskedLM"
    assert gen.config.hidden_size == disc.config.hidden_size // 2
    logits_agree(PreTrainingModel.from_pretrained(out / "discriminator"), disc,
                 out / "discriminator", "rtd_logits")  # fmt: skip
    logits_agree(PreTrainingModel.from_pretrained(out / "generator"), gen, out / "generator",
                 "mlm_logits")  # fmt: skip
    # The discriminator starts a task model like any encoder checkpoint.
    classifier = SequenceClassifier.from_pretrained(out / "discriminator", num_labels=3)
    ids = Tokenizer.from_pretrained(out / "discriminator")(["a test"], return_tensors="pt")
    assert classifier(ids["input_ids"], ids["attention_mask"]).shape == (1, 3)
    # Shared embeddings: both exports hold the same token table.
    torch.testing.assert_close(
        gen.electra.embeddings.word_embeddings.weight,
        disc.electra.embeddings.word_embeddings.weight,
    )


def test_rtd_on_a_family_without_an_rtd_class(tmp_path: Path, packed: Path) -> None:
    """BERT has no HF class with a replaced-token head: its discriminator is exported as a
    `BertModel` with the head beside it, and the generator as `BertForMaskedLM`."""
    sets = [*TINY, "objectives.mlm=1", "objectives.rtd=50"]
    with pytest.raises(ConfigError, match=r"cannot express embedding_size.*Set size = 1\.0"):
        pretrain(packed, tmp_path / "narrow", load_recipe(None, sets))
    recipe = load_recipe(None, [*sets, "generator.size=1.0"])
    out = pretrain(packed, tmp_path / "run", recipe).model
    disc, info = transformers.AutoModel.from_pretrained(
        out / "discriminator", output_loading_info=True
    )
    assert type(disc).__name__ == "BertModel" and not info["unexpected_keys"]
    # BertModel's pooler serves NSP, which this run never trained: transformers draws it.
    assert set(info["missing_keys"]) == {"pooler.dense.weight", "pooler.dense.bias"}
    head = load_file(out / "discriminator" / "rtd_head.safetensors")
    assert sorted(head) == ["dense.bias", "dense.weight", "out.bias", "out.weight"]
    gen = transformers.AutoModelForMaskedLM.from_pretrained(out / "generator")
    assert type(gen).__name__ == "BertForMaskedLM"


def test_distillation(tmp_path: Path, packed: Path, teacher: Path) -> None:
    data = packed
    recipe = load_recipe(
        "distilbert-base",
        [*TINY, f"distill.teacher={teacher}", "train.grad_clip=1"],
    )
    out = pretrain(data, tmp_path / "run", recipe).model
    train = train_records(tmp_path / "run")
    assert len(train) == STEPS
    for key in ("distill_ce_loss", "mlm_loss", "distill_cos_loss"):
        assert key in train[-1]
    assert_falls(train, "distill_ce_loss")
    hf = transformers.AutoModelForMaskedLM.from_pretrained(out)
    assert type(hf).__name__ == "DistilBertForMaskedLM"
    assert hf.config.n_layers == 2
    logits_agree(PreTrainingModel.from_pretrained(out), hf, out, "mlm_logits")


def test_teacher_with_another_vocabulary(tmp_path: Path, corpus: Path, packed: Path) -> None:
    data = packed
    other = train_tokenizer([corpus], "wordpiece", 500)
    teacher = PreTrainingModel(
        load_recipe(None, TINY).encoder_config(other.vocab_size, 0), heads=("mlm",)
    )
    teacher.save_pretrained(tmp_path / "teacher")
    other.save_pretrained(tmp_path / "teacher")
    recipe = load_recipe(None, [*TINY, f"distill.teacher={tmp_path / 'teacher'}",
                                "objectives.distill_ce=5", "objectives.mlm=2"])  # fmt: skip
    with pytest.raises(DataError, match="differs from the data"):
        pretrain(data, tmp_path / "run", recipe)


def test_spanbert(tmp_path: Path, corpus: Path, wordpiece: Tokenizer) -> None:
    data = shards(tmp_path, corpus, wordpiece, "single")
    recipe = load_recipe("spanbert-base", TINY)
    out = pretrain(data, tmp_path / "run", recipe).model
    train = train_records(tmp_path / "run")
    assert "sbo_loss" in train[-1] and "nsp_loss" not in train[-1]
    assert_falls(train, "sbo_loss")
    assert_falls(train, "mlm_loss")
    hf = transformers.AutoModelForMaskedLM.from_pretrained(out)
    assert type(hf).__name__ == "BertForMaskedLM"
    logits_agree(PreTrainingModel.from_pretrained(out), hf, out, "mlm_logits")
    sbo = load_file(out / "sbo_head.safetensors")
    assert sbo["positions.weight"].shape == (64, 128)  # an offset for every position


def test_sbo_needs_span_masking(tmp_path: Path, corpus: Path, wordpiece: Tokenizer) -> None:
    data = shards(tmp_path, corpus, wordpiece, "single")
    recipe = load_recipe(None, [*TINY, "objectives.mlm=1", "objectives.sbo=1"])
    with pytest.raises(ConfigError, match="span"):
        pretrain(data, tmp_path / "run", recipe)


def test_albert_ngrams_and_sop(tmp_path: Path, corpus: Path) -> None:
    tok = train_tokenizer([corpus], "unigram", 800)
    data = shards(tmp_path, corpus, tok, "sop")
    recipe = load_recipe("albert-base",
                         [*TINY, "model.embedding_size=32", "train.lr=3e-2"])  # fmt: skip
    assert recipe.masking.mode == "ngram"
    out = pretrain(data, tmp_path / "run", recipe).model
    train = train_records(tmp_path / "run")
    assert "nsp_loss" in train[-1]
    assert_falls(train, "mlm_loss", by=0.05)  # LAMB's steps are a share of each weight's norm
    hf = transformers.AutoModelForPreTraining.from_pretrained(out)
    assert type(hf).__name__ == "AlbertForPreTraining"


@pytest.mark.parametrize("name", ["electra", "spanbert", "distilbert"])
def test_resume_is_exact(
    tmp_path: Path, corpus: Path, wordpiece: Tokenizer, packed: Path, teacher: Path, name: str
) -> None:
    """Stopped at step 5 and resumed, a run logs the same losses, float for float, as one that
    never stopped: the generator's samples, the SBO head and the student all come back."""
    data = shards(tmp_path, corpus, wordpiece, "single") if name == "spanbert" else packed
    extra = {"electra": ["preset=tiny", "generator.size=0.5"],
             "distilbert": [f"distill.teacher={teacher}"]}.get(name, [])  # fmt: skip
    config = {"electra": "electra-small", "spanbert": "spanbert-base"}.get(name, "distilbert-base")
    recipe = load_recipe(config, [*TINY, "train.max_steps=10", *extra])
    pretrain(data, tmp_path / "straight", recipe)
    assert pretrain(data, tmp_path / "split", recipe, stop_at=5).model is None
    pretrain(data, tmp_path / "split", recipe, resume=True)
    straight, split = train_records(tmp_path / "straight"), train_records(tmp_path / "split")
    drop = ("tokens_per_s", "steps_per_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in split] == [
        {k: v for k, v in r.items() if k not in drop} for r in straight
    ]
