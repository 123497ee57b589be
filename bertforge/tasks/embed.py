"""`embed`: sentence embeddings trained from text pairs by in-batch negatives (or from scored
pairs by CoSENT / cosine regression), scored by retrieval and STS.

A training row is the texts of one pair, (anchor, positive, hard negatives...), encoded one
text each and batched as (B, C, T) like multiple-choice rows; `text_ids` numbers each distinct
text so that a batch can tell repeated positives apart from negatives. A dev row is one text:
a query or a corpus entry of the retrieval set, or one side of an STS pair, and the metrics
are computed from the vectors of all of them:

    recall@1, recall@10, mrr@10   the dev file is a retrieval set (SQuAD .json, or BEIR
                                  qrels.jsonl beside corpus.jsonl and queries.jsonl)
    sts_spearman                  the dev file (or --sts-dev) holds scored pairs: Spearman of
                                  the cosine similarities against the gold scores
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertforge.errors import ConfigError, DataError
from bertforge.objectives.contrastive import EmbeddingLoss
from bertforge.tasks.base import Features, Option, Split, Task, TaskSetup
from bertforge.tasks.formats.pairs import Pair, read_pairs, read_retrieval
from bertforge.tasks.registry import register_task
from bertforge.tasks.scoring import compute
from bertforge.tasks.scoring.retrieval import retrieval_metrics, top_documents
from bertforge.textio import read_lines
from bertforge.tokenization import Tokenizer

RETRIEVAL = ("recall@1", "recall@10", "mrr@10")
STS = "sts_spearman"
LOSSES = ("mnrl", "cosent", "cosine")


@dataclass(frozen=True)
class DevText:
    """One dev row: `role` query / doc (retrieval) or sts_a / sts_b (the pair `key`)."""

    role: str
    key: str
    text: str
    score: float | None = None  # an STS pair's gold similarity (on its sts_a row)
    relevant: frozenset[str] = frozenset()  # a query's relevant corpus ids


def is_retrieval(path: Path) -> bool:
    return path.name.endswith((".json", ".json.gz")) or path.name == "qrels.jsonl"


class EmbedTask(Task):
    name = "embed"
    command = "embed"
    help = "Sentence embeddings from text pairs; scored by retrieval recall/MRR and STS Spearman"
    head = "embedding"
    epochs = 1
    options = (
        Option("anchor_field", "anchor", "Pairs: the anchor's field (SQuAD: the question)."),
        Option("positive_field", "positive", "Pairs: the positive's field (SQuAD: paragraph)."),
        Option("negative_fields", "", "Pairs: hard negatives' fields, comma-separated."),
        Option("score_field", None, "Scored pairs: the gold similarity's field (CoSENT)."),
        Option(
            "loss",
            None,
            "mnrl (pairs; default), cosent (scored; default) or cosine.",
            choices=LOSSES,
        ),
        Option("symmetric", False, "mnrl: also rank anchors for each positive.", bool),
        Option("scale", 20.0, "Inverse temperature of the similarities.", float),
        Option("learn_scale", False, "mnrl: learn the scale (from --scale, capped at 100).", bool),
        Option(
            "pooling",
            None,
            "cls or mean; default: the checkpoint's, else mean.",
            choices=("cls", "mean"),
        ),
        Option("normalize", True, "Save L2-normalised vectors.", bool),
        Option(
            "chunk_size",
            64,
            "Texts embedded at once; a batch of more pairs trains by gradient caching (memory).",
            int,
        ),
        Option("sts_fields", "sentence1,sentence2,score", "Scored dev pairs' three fields."),
        Option("sts_dev", None, "Also score STS Spearman on this scored-pairs file.", Path),
        Option(
            "metric", None, f"The dev metric best/ is chosen by: {', '.join((*RETRIEVAL, STS))}."
        ),
    )
    predict_input = "a text file, one text per line, or a .jsonl with a 'text' field"

    def default_files(self, options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        return {
            "train": ("train.jsonl", "train.tsv", "train.csv", "train-v1.1*.json*"),
            "dev": ("qrels.jsonl", "dev-v1.1.json", "dev.tsv", "dev.jsonl", "dev.csv"),
        }

    def setup(
        self, files: dict[str, Path], options: dict[str, Any], max_length: int | None
    ) -> TaskSetup:
        scored = options["score_field"] is not None
        loss = options["loss"] or ("cosent" if scored else "mnrl")
        if (loss == "mnrl") == scored:
            raise ConfigError(
                f"--loss {loss} takes {'text pairs' if loss == 'mnrl' else 'scored pairs'}: "
                + ("drop --score-field" if scored else "name the score with --score-field")
            )
        metrics = [*RETRIEVAL] if is_retrieval(files["dev"]) else [STS]
        if options["sts_dev"] is not None and STS not in metrics:
            metrics.append(STS)
        chosen = options["metric"] or metrics[0]
        if chosen not in metrics:
            raise ConfigError(f"--metric {chosen!r}: this run's dev metrics are {metrics}")
        metrics = [chosen, *(m for m in metrics if m != chosen)]
        sts_dev = options["sts_dev"]  # kept as text: the setup is saved as JSON
        sts_dev = None if sts_dev is None else str(Path(sts_dev).resolve())
        options = {**options, "loss": loss, "sts_dev": sts_dev}
        for split in ("train", "dev"):  # a bad file fails now, not after an epoch
            self.read(self.new_setup(files, options, max_length, metrics), split)
        return self.new_setup(files, options, max_length, metrics)

    def check_settings(self, setup: TaskSetup, settings: Mapping[str, Any]) -> None:
        if setup.options["loss"] == "mnrl" and settings["batch_size"] < 2:
            raise ConfigError(
                f"--batch-size {settings['batch_size']}: in-batch negatives are the other pairs "
                "of the batch, so one pair has none; use 2 or more (hundreds train best)"
            )
        if setup.options["chunk_size"] < 1:
            raise ConfigError(f"--chunk-size {setup.options['chunk_size']}: use 1 or more")

    # -- data ---------------------------------------------------------------------------

    def read(self, setup: TaskSetup, split: str) -> list[Any]:
        path, o = Path(setup.files[split]), setup.options
        if split == "train":
            negatives = [f.strip() for f in o["negative_fields"].split(",") if f.strip()]
            return read_pairs(path, o["anchor_field"], o["positive_field"], negatives,
                              o["score_field"])  # fmt: skip
        rows = self._retrieval_rows(path) if is_retrieval(path) else self._sts_rows(path, o)
        if o["sts_dev"] is not None and is_retrieval(path):
            rows += self._sts_rows(Path(o["sts_dev"]), o)
        return rows

    def _retrieval_rows(self, path: Path) -> list[DevText]:
        found = read_retrieval(path.parent if path.name == "qrels.jsonl" else path)
        queries = [DevText("query", k, text, relevant=frozenset(found.relevant[k]))
                   for k, text in found.queries.items()]  # fmt: skip
        return queries + [DevText("doc", k, text) for k, text in found.corpus.items()]

    def _sts_rows(self, path: Path, options: Mapping[str, Any]) -> list[DevText]:
        fields = [f.strip() for f in options["sts_fields"].split(",")]
        if len(fields) != 3:
            raise ConfigError(f"--sts-fields {options['sts_fields']!r}: give three fields")
        rows = []
        for i, pair in enumerate(read_pairs(path, *fields[:2], score=fields[2])):
            rows += [DevText("sts_a", str(i), pair.anchor, pair.score),
                     DevText("sts_b", str(i), pair.positive)]  # fmt: skip
        return rows

    def first(self, examples: list[Any], limit: int) -> list[Any]:
        """Dev: the first `limit` queries and STS pairs against the whole corpus."""
        if not examples or isinstance(examples[0], Pair):
            return examples[:limit]
        seen: dict[str, int] = {}
        kept = []
        for e in examples:
            if e.role != "doc":
                seen[e.role] = seen.get(e.role, 0) + 1
            if e.role == "doc" or seen[e.role] <= limit:
                kept.append(e)
        return kept

    def read_inputs(self, setup: TaskSetup, path: Path) -> list[Any]:
        if path.suffix == ".jsonl":
            texts = [pair.anchor for pair in read_pairs(path, "text", "text")]
        else:
            texts = read_lines(path)
        return self.examples_from(setup, texts)

    def examples_from(self, setup: TaskSetup, values: Sequence[Any]) -> list[Any]:
        return [DevText("text", str(i), str(v)) for i, v in enumerate(values)]

    def texts(self, examples: Iterable[Any]) -> Iterator[str]:
        for e in examples:
            if isinstance(e, Pair):
                yield from (e.anchor, e.positive, *e.negatives)
            else:
                yield e.text

    def encode(
        self, setup: TaskSetup, tokenizer: Tokenizer, examples: list[Any], train: bool
    ) -> Features:
        if not examples or not isinstance(examples[0], Pair):
            return _encode_texts(tokenizer, [e.text for e in examples], setup.max_length)
        widths = {1 + 1 + len(p.negatives) for p in examples}
        if len(widths) != 1:
            raise DataError("every pair needs the same number of hard negatives")
        texts = [t for p in examples for t in (p.anchor, p.positive, *p.negatives)]
        flat = _encode_texts(tokenizer, texts, setup.max_length)
        ids: dict[str, int] = {}
        numbers = [ids.setdefault(t, len(ids)) for t in texts]
        c = widths.pop()
        features = {k: [v[i : i + c] for i in range(0, len(texts), c)] for k, v in flat.items()}
        features["text_ids"] = [numbers[i : i + c] for i in range(0, len(texts), c)]
        if setup.options["score_field"] is not None:
            features["labels"] = [p.score for p in examples]
        return features

    def batch_keys(self, setup: TaskSetup) -> tuple[str, ...]:
        return ("text_ids", "labels") if setup.options["score_field"] else ("text_ids",)

    def label_dtype(self, setup: TaskSetup) -> torch.dtype:
        return torch.float

    # -- model, loss, outputs -------------------------------------------------------------

    def model_options(self, setup: TaskSetup) -> dict[str, Any]:
        o = setup.options
        scale = o["scale"] if o["learn_scale"] else None
        return {"mode": o["pooling"], "normalize": o["normalize"], "max_length": setup.max_length,
                "learned_scale": scale}  # fmt: skip

    def objectives(self, setup: TaskSetup) -> list[Any]:
        o = setup.options
        return [EmbeddingLoss(o["loss"], o["scale"], o["symmetric"])]

    def score(self, setup: TaskSetup, split: Split, rows: list[Any]) -> dict[str, float]:
        by_role: dict[str, list[tuple[DevText, np.ndarray]]] = {}
        for example, row in zip(split.examples, rows, strict=True):
            by_role.setdefault(example.role, []).append((example, row))
        metrics: dict[str, float] = {}
        if "query" in by_role:
            docs = [e.key for e, _ in by_role["doc"]]
            row_of = {key: i for i, key in enumerate(docs)}
            queries = torch.from_numpy(np.stack([r for _, r in by_role["query"]]))
            corpus = torch.from_numpy(np.stack([r for _, r in by_role["doc"]]))
            relevant = [{row_of[d] for d in e.relevant} for e, _ in by_role["query"]]
            metrics |= retrieval_metrics(top_documents(queries, corpus, 10), relevant)
        if "sts_a" in by_role:
            a, b = by_role["sts_a"], by_role["sts_b"]
            cos = [float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12))
                   for (_, x), (_, y) in zip(a, b, strict=True)]  # fmt: skip
            metrics[STS] = compute(["spearman"], cos, [e.score for e, _ in a])["spearman"]
        return metrics

    def records(self, setup: TaskSetup, split: Split, rows: list[Any]) -> list[dict[str, Any]]:
        return [{"text": e.text, "embedding": [round(float(x), 7) for x in row]}
                for e, row in zip(split.examples, rows, strict=True)]  # fmt: skip


def _encode_texts(tokenizer: Tokenizer, texts: list[str], max_length: int) -> Features:
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return {key: enc[key] for key in ("input_ids", "token_type_ids", "attention_mask")}


register_task(EmbedTask())
