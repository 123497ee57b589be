"""End-to-end fine-tuning with the real MiniLM checkpoint through the Python API: bad inputs,
a tiny run whose checkpoint round-trips through `evaluate`, `predict` and `transformers`,
every strategy, and the quality floors on SST-2, CoNLL-2003 and SQuAD (marked `acceptance`:
`make acceptance` runs them, a few minutes on 2 cores; `make test` leaves them out). The
command line over the same calls is tested in test_cli.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertforge import ConfigError, DataError, evaluate, finetune, predict
from bertforge.finetuning import load_run


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_transformers_agrees(
    run: Path, auto_class: str, texts: list[str], pairs: list[str] | None = None
) -> object:
    """RUN/best loads in `transformers` AUTO_CLASS and gives our logits (padding included);
    returns theirs."""
    import transformers

    best = load_run(run)
    ours, tokenizer = best.model, best.tokenizer
    theirs = getattr(transformers, auto_class).from_pretrained(run / "best").eval()
    batch = tokenizer(texts, pairs, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = theirs(**batch)
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    expected = (out.start_logits, out.end_logits) if isinstance(got, tuple) else out.logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    return expected


def test_length_grouped_batches_cover_every_row_once() -> None:
    import random

    from bertforge.finetuning.batches import batch_order, collate

    lengths = [(i * 37) % 97 + 3 for i in range(1000)]
    batches = batch_order(lengths, 8, random.Random(0), group_by_length=True)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    # Sorted within mega-batches: far less padding than random batches.
    pad = sum(max(lengths[i] for i in b) * len(b) for b in batches) - sum(lengths)
    plain = batch_order(lengths, 8, random.Random(0), group_by_length=False)
    assert pad < 0.2 * (sum(max(lengths[i] for i in b) * len(b) for b in plain) - sum(lengths))
    features = {
        "input_ids": [[5, 6, 7], [8]],
        "token_type_ids": [[0, 0, 0], [0]],
        "attention_mask": [[1, 1, 1], [1]],
        "labels": [[-100, 2, -100], [1]],
    }
    batch = collate(features, [0, 1], pad_id=0, extra_keys=["labels"])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 2, -100], [1, -100, -100]]


@pytest.fixture()
def csv_train(tmp_path: Path) -> Path:
    rows = "".join(
        f"{'good fun' if i % 2 else 'dull mess'} {i},{'pos' if i % 2 else 'neg'}\n"
        for i in range(8)
    )
    return _write(tmp_path / "train.csv", "text,label\n" + rows)


def metrics_of(run: Path) -> dict:
    return json.loads((run / "eval_results.json").read_text())


@pytest.mark.parametrize(
    ("dev_text", "extra", "expected"),
    [
        ("text,label\nfine film,meh\n", {}, "not in the label set"),
        ("text,label\nfine film,pos\n", {"pair_column": "other"}, "column 'other'"),
        ("", {}, "empty"),
    ],
    ids=["unknown-label", "missing-column", "empty-file"],
)
def test_classify_bad_inputs_fail_before_training(
    tmp_path: Path, minilm_path: Path, csv_train: Path, dev_text: str, extra: dict, expected: str
) -> None:
    dev = _write(tmp_path / "dev.csv", dev_text)
    with pytest.raises(DataError, match=expected):
        finetune("classify", minilm_path, None, tmp_path / "run", train_file=csv_train,
                 dev_file=dev, text_column="text", **extra)  # fmt: skip
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_max_length_beyond_the_positions_is_capped(
    tmp_path: Path, minilm_path: Path, csv_train: Path
) -> None:
    long_row = "good " * 700 + ",pos\n"  # ~700 tokens: more than MiniLM's 512 positions
    _write(tmp_path / "dev.csv", "text,label\n" + long_row + "dull mess,neg\n")
    run = tmp_path / "run"
    # The data folder holds train.csv and dev.csv: found without file options.
    finetune("classify", minilm_path, tmp_path, run, text_column="text", epochs=1,
             max_length=1024)  # fmt: skip
    assert json.loads((run / "task.json").read_text())["max_length"] == 512


def test_unknown_task_option_and_strategy(tmp_path: Path, minilm_path: Path) -> None:
    for task, options, expected in (
        ("sst3", {}, "unknown task 'sst3'"),
        ("sst2", {"strategy": "magic"}, "--strategy 'magic' is not one of"),
        ("sst2", {"epoch": 2}, "sst2 has no option 'epoch'"),
        ("classify", {}, "classify needs --text-column"),
    ):
        with pytest.raises(ConfigError, match=expected):
            finetune(task, minilm_path, tmp_path, tmp_path / "run", **options)


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, minilm_path: Path, shared_data: Path
) -> Path:
    """Full fine-tuning on 128 SST-2 sentences, scored on 64: exercises the whole pipeline."""
    run = tmp_path_factory.mktemp("sst2") / "run"
    result = finetune(
        "SST-2", minilm_path, shared_data / "glue" / "SST-2", run, epochs=1, batch_size=16,
        lr=1e-4, max_train_examples=128, max_eval_examples=64, group_by_length=True,
        eval_every=4,
    )  # fmt: skip
    assert result.best == run / "best" and result.step == 8
    assert result.metrics == metrics_of(run) and result.metrics["precision"] == "fp32"
    return run


def test_run_directory_contents(tiny_run: Path) -> None:
    for name in ("task.json", "metrics.jsonl", "dev_metric.png", "eval_results.json"):
        assert (tiny_run / name).is_file(), name
    assert (tiny_run / "best" / "config.json").is_file()
    assert (tiny_run / "best" / "tokenizer.json").is_file()
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in records if r["split"] == "dev"]
    assert [r["step"] for r in dev] == [4, 8]  # every 4 steps, then the epoch end (8 steps)
    assert all(r["precision"] == "fp32" for r in dev)
    results = metrics_of(tiny_run)
    assert results["accuracy"] == max(r["accuracy"] for r in dev)


def test_evaluate_and_predict_round_trip(tiny_run: Path, tmp_path: Path) -> None:
    metrics = evaluate(tiny_run, max_eval_examples=64).metrics
    assert metrics == pytest.approx(metrics_of(tiny_run))
    inputs = _write(tmp_path / "in.tsv", "sentence\na gorgeous , witty film\nboring and awful\n")
    for suffix in (".jsonl", ".tsv"):
        out = tmp_path / f"out{suffix}"
        result = predict(tiny_run, inputs, out)
        assert result.output == out and len(result.records) == 2
        lines = out.read_text().splitlines()
        assert len(lines) == (2 if suffix == ".jsonl" else 3)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all(r["label"] in ("0", "1") and 0.5 <= r["score"] <= 1 for r in records)
    # Python values give the same records as the file.
    texts = ["a gorgeous , witty film", "boring and awful"]
    from_list = predict(tiny_run, texts).records
    assert [(r["label"], r["score"]) for r in from_list] == [
        (r["label"], r["score"]) for r in records
    ]
    with pytest.raises(DataError, match="takes texts"):
        predict(tiny_run, [("a", "b")])


def test_checkpoint_matches_transformers(tiny_run: Path) -> None:
    assert_transformers_agrees(
        tiny_run, "AutoModelForSequenceClassification", ["a gorgeous film", "dull"]
    )


def test_frozen_strategy_trains_head_only(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    run = tmp_path / "run"
    finetune("sst-2", minilm_path, shared_data / "glue" / "SST-2", run, epochs=3,
             strategy="frozen", max_train_examples=512, max_eval_examples=100)  # fmt: skip
    setup = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    # The classifier and the pooler under it; the encoder is a cached feature extractor.
    assert setup["trainable_params"] == (384 * 384 + 384) + (384 * 2 + 2)
    # Dev was scored from the feature cache during training, `evaluate` runs the encoder.
    saved = metrics_of(run)
    assert saved["accuracy"] >= 0.7, saved
    assert evaluate(run, max_eval_examples=100).metrics == pytest.approx(saved)


def _scored_rows(adjectives: dict[str, float], nouns: list[str]) -> str:
    return "".join(f"the {n} was {a},{score + 0.1 * (i % 3)}\n" for i, n in enumerate(nouns)
                   for a, score in adjectives.items())  # fmt: skip


def test_classify_regression_learns_and_matches_transformers(
    tmp_path: Path, minilm_path: Path
) -> None:
    from transformers import AutoConfig

    adjectives = {"superb": 4.5, "good": 3.5, "mediocre": 2.0, "awful": 0.5}
    train = _write(
        tmp_path / "train.csv",
        "text,score\n"
        + _scored_rows(
            adjectives, ["film", "meal", "show", "hotel", "concert", "book", "game", "trip"]
        ),
    )
    dev = _write(tmp_path / "dev.csv", "text,score\n" + _scored_rows(
        adjectives, ["album", "play", "class", "party"]))  # fmt: skip
    run = tmp_path / "run"
    finetune("classify", minilm_path, None, run, train_file=train, dev_file=dev,
             text_column="text", label_column="score", regression=True, epochs=8,
             batch_size=8, lr=2e-4)  # fmt: skip
    saved = metrics_of(run)
    # Measured Pearson 0.985 on the 16 dev rows (nouns unseen in training).
    assert set(saved) == {"pearson", "spearman", "precision"} and saved["pearson"] >= 0.8, saved

    texts = ["the song was superb", "the song was awful"]
    expected = assert_transformers_agrees(run, "AutoModelForSequenceClassification", texts)
    theirs = AutoConfig.from_pretrained(run / "best")
    assert theirs.problem_type == "regression" and theirs.num_labels == 1
    assert expected[0, 0] > expected[1, 0]  # superb scores above awful

    inputs = _write(tmp_path / "in.csv", "text\nthe song was superb\n")
    (record,) = predict(run, inputs).records
    assert record["score"] == pytest.approx(float(expected[0, 0]), abs=1e-4)


def test_frozen_ner_trains_the_tagger_only(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    run = tmp_path / "run"
    finetune("ner", minilm_path, shared_data / "conll2003", run, epochs=3, batch_size=16,
             strategy="frozen", lr=1e-2, max_train_examples=512, max_eval_examples=128)  # fmt: skip
    labels = json.loads((run / "task.json").read_text())["labels"]
    setup = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert setup["trainable_params"] == 384 * len(labels) + len(labels)
    saved = metrics_of(run)
    # A linear tagger on frozen features still learns: measured 0.477 (0.32 after 1 epoch).
    assert saved["entity_f1"] > 0.35, saved
    # Dev was scored from the feature cache during training, `evaluate` runs the encoder.
    assert evaluate(run, max_eval_examples=128).metrics == pytest.approx(saved)


def test_ner_stride_windows_long_sentences(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    from bertforge import Tokenizer
    from bertforge.tasks import TaskSetup, get_task
    from bertforge.tasks.formats import read_conll

    run = tmp_path / "run"
    options = dict(epochs=1, batch_size=16, strategy="frozen", lr=1e-2, max_train_examples=256,
                   max_eval_examples=64, max_length=24)  # fmt: skip
    with pytest.raises(ConfigError, match="stride 22"):
        finetune("ner", minilm_path, shared_data / "conll2003", run, stride=22, **options)
    finetune("ner", minilm_path, shared_data / "conll2003", run, stride=8, **options)
    setup = TaskSetup.load(run)
    assert setup.options["stride"] == 8
    dev = read_conll(shared_data / "conll2003" / "eng.testa")[:64]
    features = get_task("ner").encode(setup, Tokenizer.from_pretrained(minilm_path), dev, False)
    assert len(features["input_ids"]) > len(dev)  # long sentences are windows, not cut
    # `evaluate` rebuilds the same windows from task.json.
    assert evaluate(run, max_eval_examples=64).metrics == pytest.approx(metrics_of(run))


@pytest.mark.parametrize("strategy", ["lora", "adapter"])
def test_peft_runs_reload_to_the_same_scores(
    tmp_path: Path, minilm_path: Path, shared_data: Path, strategy: str
) -> None:
    run = tmp_path / "run"
    finetune("rte", minilm_path, shared_data / "glue" / "RTE", run, epochs=1, batch_size=16,
             strategy=strategy, max_train_examples=32, max_eval_examples=32)  # fmt: skip
    extra = {"lora": "lora/adapter_model.safetensors", "adapter": "adapters.safetensors"}
    assert (run / "best" / extra[strategy]).is_file()
    setup = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert 0 < setup["trainable_params"] < setup["total_params"] / 10
    assert evaluate(run, max_eval_examples=32).metrics == pytest.approx(metrics_of(run))


def test_prompt_needs_an_mlm_head(tmp_path: Path, minilm_path: Path, shared_data: Path) -> None:
    from bertforge import CheckpointError

    with pytest.raises(CheckpointError, match="no MLM head"):
        finetune("sst2", minilm_path, shared_data / "glue" / "SST-2", tmp_path / "run",
                 strategy="prompt", max_train_examples=8)  # fmt: skip


def test_prompt_strategy_round_trip(tmp_path: Path, minilm_path: Path, shared_data: Path) -> None:
    from bertforge.architectures import PreTrainingModel
    from bertforge.models import Encoder
    from bertforge.tokenization import Tokenizer

    # MiniLM ships without its MLM head: give it a fresh one to have a BertForMaskedLM.
    encoder = Encoder.from_pretrained(minilm_path)
    mlm = PreTrainingModel(encoder.config, heads=("mlm",))
    mlm.encoder.load_state_dict(encoder.state_dict(), strict=False)
    mlm.save_pretrained(tmp_path / "mlm")
    Tokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path / "mlm")
    run = tmp_path / "run"
    finetune("sst2", tmp_path / "mlm", shared_data / "glue" / "SST-2", run, epochs=1,
             strategy="prompt", max_train_examples=16, max_eval_examples=16)  # fmt: skip
    assert evaluate(run, max_eval_examples=16).metrics == pytest.approx(metrics_of(run))
    with pytest.raises(ConfigError, match="classification only"):
        finetune("ner", tmp_path / "mlm", shared_data / "conll2003", tmp_path / "ner",
                 strategy="prompt")  # fmt: skip


@pytest.mark.acceptance
def test_sst2_accuracy(tmp_path: Path, minilm_path: Path, shared_data: Path) -> None:
    result = finetune("sst2", minilm_path, shared_data / "glue" / "SST-2", tmp_path / "run",
                      epochs=3, batch_size=16, lr=5e-5, max_train_examples=2000,
                      group_by_length=True)  # fmt: skip
    # Measured 0.821 on the 872 dev sentences (64 s on 2 cores, 2026-12-07; the code before the
    # trainer refactor gives the same 0.8211; seeds 1 and 2 once gave 0.811, 0.814).
    # The issue asks for >= 0.80; batch 8, lr 3e-5, 2 epochs scored 0.804-0.811, too close.
    assert result.metrics["accuracy"] >= 0.80


@pytest.mark.acceptance
def test_conll_entity_f1(tmp_path: Path, minilm_path: Path, shared_data: Path) -> None:
    run = tmp_path / "run"
    finetune("ner", minilm_path, shared_data / "conll2003", run, epochs=2, batch_size=16,
             lr=1e-4, max_train_examples=2000, max_eval_examples=1000,
             group_by_length=True)  # fmt: skip
    assert metrics_of(run)["entity_f1"] >= 0.70  # measured 0.799 (54 s, 2026-12-07)
    assert_transformers_agrees(
        run, "AutoModelForTokenClassification", ["EU rejects German call", "Peter"]
    )
    sentences = _write(tmp_path / "sentences.txt", "EU rejects German call\n\nPeter Blackburn\n")
    out = tmp_path / "tags.tsv"
    predict(run, sentences, out)
    header, *rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert header == ["words", "tags"]
    assert [r[0] for r in rows] == ["EU rejects German call", "Peter Blackburn"]
    assert [len(r[1].split()) for r in rows] == [4, 2]  # a tag per word
    assert rows[1][1].split()[0].endswith("-PER"), rows  # measured: B-PER I-PER


def _squad_v2(path: Path, people: list[str]) -> Path:
    """Two questions per paragraph: where a person was born (answerable), and what they ate
    (unanswerable)."""
    paragraphs = []
    for i, name in enumerate(people):
        city = ("Paris", "Oslo", "Lima", "Cairo")[i % 4]
        context = f"{name} was born in {city} in {1900 + i}. {name} later moved to the coast."
        answer = {"text": city, "answer_start": context.index(city)}
        qas = [
            {"id": f"{name}-born", "question": f"Where was {name} born?", "answers": [answer],
             "is_impossible": False},
            {"id": f"{name}-ate", "question": f"What did {name} eat?", "answers": [],
             "plausible_answers": [answer], "is_impossible": True},
        ]  # fmt: skip
        paragraphs.append({"context": context, "qas": qas})
    data = {"version": "v2.0", "data": [{"title": "people", "paragraphs": paragraphs}]}
    return _write(path, json.dumps(data))


def test_squad_v2_scores_unanswerable_questions(tmp_path: Path, minilm_path: Path) -> None:
    names = [f"{first} {last}" for first in ("Ann", "Bo", "Cy", "Di") for last in ("Ek", "Fo")]
    _squad_v2(tmp_path / "train-v2.0.json", names[:6])
    _squad_v2(tmp_path / "dev-v2.0.json", names[6:])
    run = tmp_path / "run"
    with pytest.raises(DataError, match="--squad-version"):
        finetune("squad", minilm_path, tmp_path, run, epochs=1, batch_size=4)
    finetune("squad", minilm_path, tmp_path, run, epochs=1, batch_size=4, squad_version="2.0")
    saved = metrics_of(run)
    assert saved["HasAns_total"] == 2 and saved["NoAns_total"] == 2, saved
    assert evaluate(run).metrics == pytest.approx(saved)
    # Questions to answer need no gold answers; one record per question, in file order.
    questions = json.loads((tmp_path / "dev-v2.0.json").read_text())
    for paragraph in questions["data"][0]["paragraphs"]:
        for qa in paragraph["qas"]:
            for key in ("answers", "is_impossible", "plausible_answers"):
                qa.pop(key, None)
    inputs = _write(tmp_path / "questions.json", json.dumps(questions))
    predict(run, inputs, tmp_path / "answers.jsonl")
    lines = (tmp_path / "answers.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [f"{n}-{q}" for n in names[6:] for q in ("born", "ate")]
    assert all(isinstance(r["answer"], str) for r in records)


def overlap_baseline(examples: list) -> dict[str, str]:
    """A trivial SQuAD answerer: the context sentence sharing the most words with the question
    (the better of the lexical baselines we tried on dev; 18.7 F1 on all of it)."""
    import re

    from bertforge.tasks.scoring.squad_eval import normalize_answer

    def best(e: object) -> str:
        question = set(normalize_answer(e.question).split())
        sentences = re.split(r"(?<=[.!?])\s+", e.context)
        return max(sentences, key=lambda s: len(question & set(normalize_answer(s).split())))

    return {e.id: best(e) for e in examples}


@pytest.mark.acceptance
def test_squad_learns_well_above_a_trivial_baseline(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    from bertforge.tasks.formats import read_squad
    from bertforge.tasks.scoring import squad_evaluate

    finetune("squad", minilm_path, shared_data / "squad", tmp_path / "run", epochs=1,
             batch_size=16, lr=1e-4, max_length=192, doc_stride=64, max_train_examples=2500,
             max_eval_examples=200, group_by_length=True, precision="bf16")  # fmt: skip
    dev = read_squad(shared_data / "squad" / "dev-v1.1.json")[:200]
    baseline = squad_evaluate(dev, overlap_baseline(dev))["f1"]
    trained = metrics_of(tmp_path / "run")
    # bf16, as trained, is what `evaluate` reads by default: the same figures.
    assert trained["precision"] == "bf16"
    assert evaluate(tmp_path / "run", max_eval_examples=200).metrics == pytest.approx(trained)
    # Measured F1 58.1 / EM 49.5 (177 s on 2 cores, 2026-12-07); the baseline scores 12.5 on
    # these 200.
    assert trained["f1"] >= 3 * baseline, (trained, baseline)
    assert_transformers_agrees(
        tmp_path / "run", "AutoModelForQuestionAnswering", [dev[0].question, dev[1].question],
        [dev[0].context, dev[1].context],
    )  # fmt: skip


def _cola(path: Path, sentences: list[tuple[str, int]]) -> Path:
    """CoLA's headerless layout: source, label, original label, sentence."""
    rows = "".join(f"src\t{label}\t\t{text}\n" for text, label in sentences)
    return _write(path, rows)


def test_what_a_new_user_is_told(
    tmp_path: Path, minilm_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A headerless CoLA file predicts as it trains; bf16 evaluation is what `evaluate`
    repeats by default; a model that predicts one class for all of dev and inputs its
    tokenizer cannot read are both said."""
    data = tmp_path / "CoLA"
    data.mkdir()
    train = [("the cat sat on the mat .", 1), ("cat the mat on sat .", 0)] * 6
    _cola(data / "train.tsv", train)
    _cola(data / "dev.tsv", [("the same sentence again .", i % 2) for i in range(8)])
    run = tmp_path / "run"
    result = finetune("cola", minilm_path, data, run, epochs=1, batch_size=4, precision="bf16")
    assert result.metrics["precision"] == "bf16"
    assert evaluate(run).metrics == metrics_of(run)  # bf16 again, the same figures
    assert evaluate(run, precision="fp32").metrics["precision"] == "fp32"
    # Eight identical dev sentences get one prediction: the run says so, with the fix.
    assert "for every one of the 8 dev examples" in caplog.text and "--epochs" in caplog.text
    records = predict(run, data / "train.tsv").records  # headerless, as training read it
    assert len(records) == len(train) and all(r["label"] in ("0", "1") for r in records)
    caplog.clear()
    predict(run, ["ᚠᛇᚻ᛫ᛒᛦᚦ ᚠᚱᚩᚠᚢᚱ ᚷᛁᚠ ᚹᛖᛗ", "the cat sat ."])
    assert "of the characters of the inputs map to the unknown token [UNK]" in caplog.text
    caplog.clear()
    predict(run, ["the cat sat on the mat ."])
    assert "unknown token" not in caplog.text


def test_ner_predict_reads_the_training_format(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    run = tmp_path / "run"
    finetune("ner", minilm_path, shared_data / "conll2003", run, epochs=1, batch_size=16,
             strategy="frozen", lr=1e-2, max_train_examples=64, max_eval_examples=16)  # fmt: skip
    from bertforge.tasks.formats import read_conll

    text = (shared_data / "conll2003" / "eng.testa").read_text().split("\n\n")
    sample = _write(tmp_path / "sample.conll", "\n\n".join(text[:6]) + "\n")  # DOCSTART + 5
    gold = read_conll(sample)
    records = predict(run, sample).records
    assert [r["words"] for r in records] == [s.words for s in gold]
    assert all(len(r["tags"]) == len(r["words"]) for r in records)
    plain = _write(tmp_path / "plain.txt", "\n".join(" ".join(s.words) for s in gold) + "\n")
    assert predict(run, plain).records == records


def test_a_stopped_fine_tuning_run_resumes_exactly(
    tmp_path: Path, minilm_path: Path, csv_train: Path
) -> None:
    """Stopped mid-epoch with a checkpoint and resumed: the same losses, dev scores and best
    weights as a run that never stopped (dropout on: its RNG state comes back too)."""
    from safetensors.torch import load_file

    options = dict(train_file=csv_train, dev_file=csv_train, text_column="text", epochs=2,
                   batch_size=3, lr=1e-4, eval_every=2)  # fmt: skip
    straight = finetune("classify", minilm_path, None, tmp_path / "straight", **options)
    stopped = finetune("classify", minilm_path, None, tmp_path / "split", stop_at=4, **options)
    assert stopped.stopped and stopped.step == 4
    assert (tmp_path / "split" / "checkpoints" / "step-00000004").is_dir()
    with pytest.raises(ConfigError, match="already holds a run"):
        finetune("classify", minilm_path, None, tmp_path / "split", **options)
    resumed = finetune("classify", minilm_path, None, tmp_path / "split", resume=True, **options)
    assert resumed.step == straight.step == 6 and resumed.metrics == straight.metrics
    # What differs: timings, and the summary's tokens, which count this call's steps only.
    timing = ("tokens_per_s", "steps_per_s", "train_seconds", "train_tokens", "resumed_from")

    def records(run: Path) -> list[dict]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in timing} for x in lines]

    assert records(tmp_path / "split") == records(tmp_path / "straight")
    a = load_file(tmp_path / "straight" / "best" / "model.safetensors")
    b = load_file(tmp_path / "split" / "best" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_every_task_takes_the_same_file_options(
    tmp_path: Path, minilm_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQuAD finds its files in --data like the other tasks, says which it took when a subset
    sits beside the full file, and takes --dev-file to choose."""
    from bertforge.finetuning import plan_finetuning

    names = ["Ann Ek", "Bo Fo", "Cy Ek"]
    for name in ("train-v2.0.json", "dev-v2.0.json", "dev-v2.0-subset.json"):
        _squad_v2(tmp_path / name, names)
    plan = plan_finetuning("squad", minilm_path, tmp_path, {"squad_version": "2.0"})
    assert Path(plan.setup.files["dev"]).name == "dev-v2.0.json"
    assert "using dev-v2.0.json; dev-v2.0-subset.json also look like one" in caplog.text
    assert "--dev-file NAME" in caplog.text
    chosen = {"squad_version": "2.0", "dev_file": "dev-v2.0-subset.json"}
    plan = plan_finetuning("squad", minilm_path, tmp_path, chosen)
    assert Path(plan.setup.files["dev"]).name == "dev-v2.0-subset.json"
    outside = {"squad_version": "2.0", "train_file": tmp_path / "train-v2.0.json"}
    plan = plan_finetuning("squad", minilm_path, tmp_path, outside)  # a path works too
    assert plan.setup.files["train"] == str(tmp_path / "train-v2.0.json")
