"""End-to-end fine-tuning with the real MiniLM checkpoint: CLI errors, a tiny run whose
checkpoint round-trips through `evaluate`, `predict` and `transformers`, every strategy, and
the quality floors on SST-2, CoNLL-2003 and SQuAD (marked `acceptance`: `make acceptance`
runs them, a few minutes on 2 cores; `make test` leaves them out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bertforge.cli.main import app

runner = CliRunner()


def _invoke(*args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args])


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_transformers_agrees(
    run: Path, auto_class: str, texts: list[str], pairs: list[str] | None = None
) -> object:
    """RUN/best loads in `transformers` AUTO_CLASS and gives our logits (padding included);
    returns theirs."""
    import transformers

    from bertforge.training.finetune import load_best

    _, ours, tokenizer = load_best(run)
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

    from bertforge.training.finetune.data import batch_order, collate

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


@pytest.mark.parametrize(
    ("dev_text", "extra", "expected"),
    [
        ("text,label\nfine film,meh\n", [], "not in the label set"),
        ("text,label\nfine film,pos\n", ["--pair-column", "other"], "column 'other'"),
        ("", [], "empty"),
    ],
    ids=["unknown-label", "missing-column", "empty-file"],
)
def test_classify_bad_inputs_exit_2_one_line(
    tmp_path: Path, minilm_path: Path, csv_train: Path, dev_text: str, extra: list, expected: str
) -> None:
    dev = _write(tmp_path / "dev.csv", dev_text)
    result = _invoke(
        "finetune", "classify", "--model", minilm_path, "--train", csv_train, "--dev", dev,
        "--text-column", "text", "--label-column", "label", "--output", tmp_path / "run", *extra,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_max_length_beyond_the_positions_is_capped(
    tmp_path: Path, minilm_path: Path, csv_train: Path
) -> None:
    long_row = "good " * 700 + ",pos\n"  # ~700 tokens: more than MiniLM's 512 positions
    dev = _write(tmp_path / "dev.csv", "text,label\n" + long_row + "dull mess,neg\n")
    run = tmp_path / "run"
    result = _invoke(
        "finetune", "classify", "--model", minilm_path, "--train", csv_train, "--dev", dev,
        "--text-column", "text", "--output", run, "--epochs", "1", "--max-length", "1024",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((run / "task.json").read_text())["max_length"] == 512


def test_unknown_glue_task_and_strategy_exit_2(tmp_path: Path, minilm_path: Path) -> None:
    for extra, expected in (
        (["--task", "sst3"], "unknown GLUE task"),
        (["--task", "sst2", "--strategy", "magic"], "strategy 'magic'"),
    ):
        result = _invoke("finetune", "glue", "--model", minilm_path, "--data", tmp_path,
                         "--output", tmp_path / "run", *extra)  # fmt: skip
        assert result.exit_code == 2 and expected in result.stderr, result.output


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, minilm_path: Path, shared_data: Path
) -> Path:
    """Full fine-tuning on 128 SST-2 sentences, scored on 64: exercises the whole pipeline."""
    run = tmp_path_factory.mktemp("sst2") / "run"
    result = _invoke(
        "finetune", "glue", "--task", "SST-2", "--model", minilm_path,
        "--data", shared_data / "glue" / "SST-2", "--output", run, "--epochs", "1",
        "--batch-size", "16", "--lr", "1e-4", "--max-train-examples", "128",
        "--max-eval-examples", "64", "--group-by-length", "--eval-every", "4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return run


def test_run_directory_contents(tiny_run: Path) -> None:
    for name in ("task.json", "metrics.jsonl", "dev_metric.png", "eval_results.json"):
        assert (tiny_run / name).is_file(), name
    assert (tiny_run / "best" / "config.json").is_file()
    assert (tiny_run / "best" / "tokenizer.json").is_file()
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in records if r["split"] == "dev"]
    assert [r["step"] for r in dev] == [4, 8]  # every 4 steps, then the epoch end (8 steps)
    results = json.loads((tiny_run / "eval_results.json").read_text())
    assert results["accuracy"] == max(r["accuracy"] for r in dev)


def test_evaluate_and_predict_round_trip(tiny_run: Path, tmp_path: Path) -> None:
    result = _invoke("evaluate", tiny_run, "--max-eval-examples", "64")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    saved = json.loads((tiny_run / "eval_results.json").read_text())
    assert metrics["accuracy"] == pytest.approx(saved["accuracy"])

    inputs = _write(tmp_path / "in.tsv", "sentence\na gorgeous , witty film\nboring and awful\n")
    for suffix in (".jsonl", ".tsv"):
        out = tmp_path / f"out{suffix}"
        result = _invoke("predict", tiny_run, "--input", inputs, "--output", out)
        assert result.exit_code == 0, result.output
        lines = out.read_text().splitlines()
        assert len(lines) == (2 if suffix == ".jsonl" else 3)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all(r["label"] in ("0", "1") and 0.5 <= r["score"] <= 1 for r in records)


def test_checkpoint_matches_transformers(tiny_run: Path) -> None:
    assert_transformers_agrees(
        tiny_run, "AutoModelForSequenceClassification", ["a gorgeous film", "dull"]
    )


def test_frozen_strategy_trains_head_only(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    run = tmp_path / "run"
    result = _invoke(
        "finetune", "glue", "--task", "sst-2", "--model", minilm_path,
        "--data", shared_data / "glue" / "SST-2", "--output", run, "--epochs", "3",
        "--strategy", "frozen", "--max-train-examples", "512", "--max-eval-examples", "100",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    setup = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    # The classifier and the pooler under it; the encoder is a cached feature extractor.
    assert setup["trainable_params"] == (384 * 384 + 384) + (384 * 2 + 2)
    # Dev was scored from the feature cache during training, `evaluate` runs the encoder.
    result = _invoke("evaluate", run, "--max-eval-examples", "100")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval_results.json").read_text())
    assert saved["accuracy"] >= 0.7, saved
    assert json.loads(result.stdout.strip().splitlines()[-1]) == pytest.approx(saved)


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
    result = _invoke(
        "finetune", "classify", "--model", minilm_path, "--train", train, "--dev", dev,
        "--text-column", "text", "--label-column", "score", "--regression", "--output", run,
        "--epochs", "8", "--batch-size", "8", "--lr", "2e-4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval_results.json").read_text())
    # Measured Pearson 0.985 on the 16 dev rows (nouns unseen in training).
    assert set(saved) == {"pearson", "spearman"} and saved["pearson"] >= 0.8, saved

    texts = ["the song was superb", "the song was awful"]
    expected = assert_transformers_agrees(run, "AutoModelForSequenceClassification", texts)
    theirs = AutoConfig.from_pretrained(run / "best")
    assert theirs.problem_type == "regression" and theirs.num_labels == 1
    assert expected[0, 0] > expected[1, 0]  # superb scores above awful

    inputs = _write(tmp_path / "in.csv", "text\nthe song was superb\n")
    out = tmp_path / "out.jsonl"
    assert _invoke("predict", run, "--input", inputs, "--output", out).exit_code == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["score"] == pytest.approx(float(expected[0, 0]), abs=1e-4)


def test_frozen_ner_trains_the_tagger_only(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    run = tmp_path / "run"
    result = _invoke(
        "finetune", "ner", "--model", minilm_path, "--data", shared_data / "conll2003",
        "--output", run, "--epochs", "3", "--batch-size", "16", "--strategy", "frozen",
        "--lr", "1e-2", "--max-train-examples", "512", "--max-eval-examples", "128",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    labels = json.loads((run / "task.json").read_text())["labels"]
    setup = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert setup["trainable_params"] == 384 * len(labels) + len(labels)
    saved = json.loads((run / "eval_results.json").read_text())
    # A linear tagger on frozen features still learns: measured 0.477 (0.32 after 1 epoch).
    assert saved["entity_f1"] > 0.35, saved
    # Dev was scored from the feature cache during training, `evaluate` runs the encoder.
    result = _invoke("evaluate", run, "--max-eval-examples", "128")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == pytest.approx(saved)


def test_ner_stride_windows_long_sentences(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    from bertforge import Tokenizer
    from bertforge.tasks import read_conll
    from bertforge.training.finetune.tasks import TaskInfo

    run = tmp_path / "run"
    args = ("finetune", "ner", "--model", minilm_path, "--data", shared_data / "conll2003",
            "--output", run, "--epochs", "1", "--batch-size", "16", "--strategy", "frozen",
            "--lr", "1e-2", "--max-train-examples", "256", "--max-eval-examples", "64",
            "--max-length", "24")  # fmt: skip
    result = _invoke(*args, "--stride", "22")
    assert result.exit_code == 2 and "stride 22" in result.stderr, result.output
    result = _invoke(*args, "--stride", "8")
    assert result.exit_code == 0, result.output
    info = TaskInfo.load(run)
    assert info.stride == 8
    dev = read_conll(shared_data / "conll2003" / "eng.testa")[:64]
    features = info.task.encode(info, Tokenizer.from_pretrained(minilm_path), dev, train=False)
    assert len(features["input_ids"]) > len(dev)  # long sentences are windows, not cut
    saved = json.loads((run / "eval_results.json").read_text())
    # `evaluate` rebuilds the same windows from task.json.
    result = _invoke("evaluate", run, "--max-eval-examples", "64")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == pytest.approx(saved)


@pytest.mark.parametrize("strategy", ["lora", "adapter"])
def test_peft_runs_reload_to_the_same_scores(
    tmp_path: Path, minilm_path: Path, shared_data: Path, strategy: str
) -> None:
    run = tmp_path / "run"
    result = _invoke(
        "finetune", "glue", "--task", "rte", "--model", minilm_path,
        "--data", shared_data / "glue" / "RTE", "--output", run, "--epochs", "1",
        "--batch-size", "16", "--strategy", strategy, "--max-train-examples", "32",
        "--max-eval-examples", "32",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    extra = {"lora": "lora/adapter_model.safetensors", "adapter": "adapters.safetensors"}
    assert (run / "best" / extra[strategy]).is_file()
    setup = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert 0 < setup["trainable_params"] < setup["total_params"] / 10
    result = _invoke("evaluate", run, "--max-eval-examples", "32")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval_results.json").read_text())
    assert json.loads(result.stdout.strip().splitlines()[-1]) == pytest.approx(saved)


def test_prompt_needs_an_mlm_head(tmp_path: Path, minilm_path: Path, shared_data: Path) -> None:
    result = _invoke(
        "finetune", "glue", "--task", "sst2", "--model", minilm_path,
        "--data", shared_data / "glue" / "SST-2", "--output", tmp_path / "run",
        "--strategy", "prompt", "--max-train-examples", "8",
    )  # fmt: skip
    assert result.exit_code == 2 and "no MLM head" in result.stderr, result.output


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
    result = _invoke(
        "finetune", "glue", "--task", "sst2", "--model", tmp_path / "mlm",
        "--data", shared_data / "glue" / "SST-2", "--output", run, "--epochs", "1",
        "--strategy", "prompt", "--max-train-examples", "16", "--max-eval-examples", "16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = _invoke("evaluate", run, "--max-eval-examples", "16")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval_results.json").read_text())
    assert json.loads(result.stdout.strip().splitlines()[-1]) == pytest.approx(saved)


@pytest.mark.acceptance
def test_sst2_accuracy(tmp_path: Path, minilm_path: Path, shared_data: Path) -> None:
    result = _invoke(
        "finetune", "glue", "--task", "sst2", "--model", minilm_path,
        "--data", shared_data / "glue" / "SST-2", "--output", tmp_path / "run",
        "--epochs", "3", "--batch-size", "16", "--lr", "5e-5",
        "--max-train-examples", "2000", "--group-by-length",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # Measured 0.818 on the 872 dev sentences (51 s on 2 cores; seeds 1 and 2: 0.811, 0.814).
    # The issue asks for >= 0.80; batch 8, lr 3e-5, 2 epochs scored 0.804-0.811, too close.
    assert json.loads((tmp_path / "run" / "eval_results.json").read_text())["accuracy"] >= 0.80


@pytest.mark.acceptance
def test_conll_entity_f1(tmp_path: Path, minilm_path: Path, shared_data: Path) -> None:
    result = _invoke(
        "finetune", "ner", "--model", minilm_path, "--data", shared_data / "conll2003",
        "--output", tmp_path / "run", "--epochs", "2", "--batch-size", "16", "--lr", "1e-4",
        "--max-train-examples", "2000", "--max-eval-examples", "1000", "--group-by-length",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "eval_results.json").read_text())["entity_f1"] >= 0.70
    assert_transformers_agrees(
        tmp_path / "run", "AutoModelForTokenClassification", ["EU rejects German call", "Peter"]
    )
    sentences = _write(tmp_path / "sentences.txt", "EU rejects German call\n\nPeter Blackburn\n")
    out = tmp_path / "tags.tsv"
    result = _invoke("predict", tmp_path / "run", "--input", sentences, "--output", out)
    assert result.exit_code == 0, result.output
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
    args = ("finetune", "squad", "--model", minilm_path, "--data", tmp_path, "--output", run,
            "--epochs", "1", "--batch-size", "4")  # fmt: skip
    result = _invoke(*args)
    assert result.exit_code == 2 and "--squad-version" in result.stderr, result.output
    result = _invoke(*args, "--squad-version", "2.0")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval_results.json").read_text())
    assert saved["HasAns_total"] == 2 and saved["NoAns_total"] == 2, saved
    result = _invoke("evaluate", run)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == pytest.approx(saved)
    # Questions to answer need no gold answers; one record per question, in file order.
    questions = json.loads((tmp_path / "dev-v2.0.json").read_text())
    for paragraph in questions["data"][0]["paragraphs"]:
        for qa in paragraph["qas"]:
            for key in ("answers", "is_impossible", "plausible_answers"):
                qa.pop(key, None)
    inputs = _write(tmp_path / "questions.json", json.dumps(questions))
    result = _invoke("predict", run, "--input", inputs, "--output", tmp_path / "answers.jsonl")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "answers.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [f"{n}-{q}" for n in names[6:] for q in ("born", "ate")]
    assert all(isinstance(r["answer"], str) for r in records)


def overlap_baseline(examples: list) -> dict[str, str]:
    """A trivial SQuAD answerer: the context sentence sharing the most words with the question
    (the better of the lexical baselines we tried on dev; 18.7 F1 on all of it)."""
    import re

    from bertforge.tasks.squad_eval import normalize_answer

    def best(e: object) -> str:
        question = set(normalize_answer(e.question).split())
        sentences = re.split(r"(?<=[.!?])\s+", e.context)
        return max(sentences, key=lambda s: len(question & set(normalize_answer(s).split())))

    return {e.id: best(e) for e in examples}


@pytest.mark.acceptance
def test_squad_learns_well_above_a_trivial_baseline(
    tmp_path: Path, minilm_path: Path, shared_data: Path
) -> None:
    from bertforge.tasks import read_squad, squad_evaluate

    result = _invoke(
        "finetune", "squad", "--model", minilm_path, "--data", shared_data / "squad",
        "--output", tmp_path / "run", "--epochs", "1", "--batch-size", "16", "--lr", "1e-4",
        "--max-length", "192", "--doc-stride", "64", "--max-train-examples", "2500",
        "--max-eval-examples", "200", "--group-by-length", "--precision", "bf16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    dev = read_squad(shared_data / "squad" / "dev-v1.1.json")[:200]
    baseline = squad_evaluate(dev, overlap_baseline(dev))["f1"]
    trained = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    # Measured F1 51.6 / EM 42.0 (194 s on 2 cores); the baseline scores 12.5 on these 200.
    assert trained["f1"] >= 3 * baseline, (trained, baseline)
    assert_transformers_agrees(
        tmp_path / "run", "AutoModelForQuestionAnswering", [dev[0].question, dev[1].question],
        [dev[0].context, dev[1].context],
    )  # fmt: skip
