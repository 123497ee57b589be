"""`evaluate` and `predict` for a finished fine-tuning run, from its directory alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bertforge import tasks
from bertforge.atomic import atomic_path
from bertforge.errors import DataError
from bertforge.models.encoder import set_unpadded
from bertforge.tasks.conll import Sentence
from bertforge.textio import read_text
from bertforge.training.finetune import tasks as T
from bertforge.training.finetune.loop import FinetuneConfig, load_best, load_split, predict_rows

OUTPUT_SUFFIXES = (".jsonl", ".tsv")


def evaluate_run(
    run_dir: Path, data: Path | None, cfg: FinetuneConfig, limit: int | None = None
) -> dict[str, float]:
    """Dev metrics of RUN_DIR/best on the run's dev split, or on `data` (a data directory
    for GLUE/CoNLL/SQuAD runs, a dev file for `finetune classify` runs)."""
    info, model, tokenizer = load_best(run_dir)
    if data is not None:
        info.data["dev" if info.source == "custom" else "dir"] = str(data.resolve())
    set_unpadded(model.to(cfg.device))
    dev = load_split(info, tokenizer, "dev", limit, train=False)
    rows = predict_rows(info, model, dev.features, tokenizer.pad_token_id or 0, cfg)
    return T.score(info, dev, rows)


def _read_inputs(info: T.TaskInfo, path: Path) -> list[Any]:
    if not path.is_file():
        raise DataError(f"input file '{path}' does not exist; check the path")
    if info.kind == "squad":
        return tasks.read_squad(path, answers_required=False)
    if info.kind == "ner":
        lines = [line.split() for line in read_text(path).splitlines() if line.strip()]
        if not lines:
            raise DataError(f"'{path}' is empty; expected one whitespace-tokenized sentence a line")
        return [Sentence(w, ["O"] * len(w), f"{path.name}:{i}") for i, w in enumerate(lines, 1)]
    if info.source == "custom":
        text, pair = info.data["text_column"], info.data.get("pair_column")
    else:
        spec = tasks.get_task(info.source)
        text, pair = spec.text_a.name, spec.text_b.name if spec.text_b else None
    return tasks.read_examples(path, text, pair, label_column=None).examples


def _records(info: T.TaskInfo, split: T.Split, rows: list[Any]) -> list[dict[str, Any]]:
    if info.kind == "squad":
        answers = T.squad_answers(split, rows)
        return [{"id": e.id, "answer": answers[e.id]} for e in split.examples]
    if info.kind == "ner":
        tags = T.ner_tags(info, split, rows)
        return [{"words": s.words, "tags": t} for s, t in zip(split.examples, tags, strict=True)]
    if info.kind == "regression":
        return [
            {"guid": e.guid, "score": float(r.reshape(-1)[0])}
            for e, r in zip(split.examples, rows, strict=True)
        ]
    labels = list(info.labels or [])
    out = []
    for example, logits in zip(split.examples, rows, strict=True):
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        out.append(
            {
                "guid": example.guid,
                "label": labels[int(np.argmax(logits))],
                "score": round(float(probs.max()), 6),
            }
        )
    return out


def _write(records: list[dict[str, Any]], path: Path) -> None:
    with atomic_path(path) as tmp:
        if path.suffix == ".jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        else:
            keys = list(records[0])
            cells = [
                [" ".join(v) if isinstance(v, list) else str(v) for v in r.values()]
                for r in records
            ]
            text = "\t".join(keys) + "\n" + "".join("\t".join(c) + "\n" for c in cells)
        tmp.write_text(text, encoding="utf-8")


def predict_run(run_dir: Path, input_path: Path, output: Path, cfg: FinetuneConfig) -> int:
    """Predict every input with RUN_DIR/best and write one record each; returns the count.

    Inputs: classification runs read .csv/.tsv/.jsonl with the training text column(s);
    NER runs one whitespace-tokenized sentence per line; SQuAD runs SQuAD-format JSON.
    """
    if output.suffix not in OUTPUT_SUFFIXES:
        raise DataError(f"output '{output}' must end in {' or '.join(OUTPUT_SUFFIXES)}")
    info, model, tokenizer = load_best(run_dir)
    set_unpadded(model.to(cfg.device))
    examples = _read_inputs(info, input_path)
    split = T.Split(examples, T.encode(info, tokenizer, examples, train=False))
    rows = predict_rows(info, model, split.features, tokenizer.pad_token_id or 0, cfg)
    records = _records(info, split, rows)
    _write(records, output)
    return len(records)
