"""`evaluate` and `predict` for a finished fine-tuning run, from its directory alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bertforge.atomic import atomic_path
from bertforge.errors import DataError
from bertforge.models.encoder import set_unpadded
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
    return info.task.score(info, dev, rows)


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
    if not input_path.is_file():
        raise DataError(f"input file '{input_path}' does not exist; check the path")
    examples = info.task.read_inputs(info, input_path)
    split = T.Split(examples, info.task.encode(info, tokenizer, examples, train=False))
    rows = predict_rows(info, model, split.features, tokenizer.pad_token_id or 0, cfg)
    records = info.task.records(info, split, rows)
    _write(records, output)
    return len(records)
