"""Serving primitives on a loaded model: sentence embeddings, similarity, fill-mask and
text classification."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bertforge.architectures import PreTrainingModel, SequenceClassifier
from bertforge.architectures.embedding import pool
from bertforge.config import POOLINGS
from bertforge.errors import DataError
from bertforge.models import Encoder
from bertforge.tokenization import BatchEncoding, Tokenizer


def _max_length(tokenizer: Tokenizer, model: Encoder, max_length: int | None) -> int:
    """The caller's length, else the tokenizer's, never more than the model embeds."""
    limit = model.config.max_length
    return min(max_length or tokenizer.model_max_length or limit, limit)


def _sorted_batches(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    texts: list[str],
    pairs: list[str] | None,
    batch_size: int,
    length: int,
) -> Iterator[tuple[list[int], BatchEncoding]]:
    """(input indices, padded batch on the model's device) over length-sorted texts: similar
    lengths share a batch, so little padding is computed. Callers put results back at the
    indices."""
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        second = [pairs[i] for i in idx] if pairs is not None else None
        batch = tokenizer(
            [texts[i] for i in idx],
            second,
            max_length=length,
            truncation=True,
            padding=True,
            return_tensors="pt",
        )
        yield idx, batch.to(device)


def embed(
    model: Encoder,
    tokenizer: Tokenizer,
    texts: list[str],
    *,
    pooling: str = "mean",
    batch_size: int = 32,
    max_length: int | None = None,
    normalize: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embed `texts` -> (N, H) float32. Batches are formed over length-sorted texts (less
    padding), results come back in input order. `on_batch(rows, tokens)` reports progress."""
    if pooling not in POOLINGS:
        raise DataError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    length = _max_length(tokenizer, model, max_length)
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for idx, batch in _sorted_batches(model, tokenizer, texts, None, batch_size, length):
            vectors = pool(model(**batch).last_hidden_state, batch["attention_mask"], pooling)
            if normalize:
                vectors = F.normalize(vectors, dim=-1)
            out[idx] = vectors.float().cpu().numpy()
            if on_batch is not None:
                on_batch(len(idx), int(batch["attention_mask"].sum()))
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


@dataclass
class Prediction:
    token: str
    token_id: int
    score: float
    sequence: str  # the decoded input with this token in place of its mask


def fill_mask(
    model: PreTrainingModel, tokenizer: Tokenizer, text: str, *, top_k: int = 5
) -> list[list[Prediction]]:
    """Top-k predictions for every mask token in `text`, one list per mask, left to right."""
    mask_token = tokenizer.mask_token
    batch = tokenizer(
        [text],
        max_length=_max_length(tokenizer, model.encoder, None),
        truncation=True,
        return_tensors="pt",
    ).to(next(model.parameters()).device)
    ids = batch["input_ids"]  # (1, T)
    masked = ids == tokenizer.mask_token_id  # (1, T)
    if not bool(masked.any()):
        raise DataError(f"the text has no {mask_token} token to fill: {text!r}")
    with torch.inference_mode():
        logits = model(**batch, masked_positions=masked).mlm_logits  # (M, V)
    probs = logits.float().softmax(-1)
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    positions = masked[0].nonzero().flatten().tolist()
    results = []
    for row, pos in enumerate(positions):
        preds = []
        scores, token_ids = top.values[row].tolist(), top.indices[row].tolist()
        for score, token_id in zip(scores, token_ids, strict=True):
            filled = ids[0].clone()
            filled[pos] = token_id
            preds.append(
                Prediction(
                    token=tokenizer.decode([token_id], skip_special_tokens=False).strip(),
                    token_id=token_id,
                    score=score,
                    sequence=tokenizer.decode(filled.tolist(), skip_special_tokens=True),
                )
            )
        results.append(preds)
    return results


@dataclass
class Label:
    label: str  # the checkpoint's label name (its index when it has none); "score" for regression
    score: float  # the label's probability; the predicted value for regression


def classify(
    model: SequenceClassifier,
    tokenizer: Tokenizer,
    texts: list[str],
    pairs: list[str] | None = None,
    *,
    batch_size: int = 32,
    max_length: int | None = None,
) -> list[Label]:
    """The most likely label of each text (or text pair), in input order. As in `embed`,
    batches are formed over length-sorted inputs, so they carry little padding."""
    if pairs is not None and len(pairs) != len(texts):
        raise DataError(f"{len(texts)} texts but {len(pairs)} pairs: give one pair per text")
    length = _max_length(tokenizer, model.encoder, max_length)
    names = model.labels or [str(i) for i in range(model.num_labels)]
    out: list[Label | None] = [None] * len(texts)
    with torch.inference_mode():
        for idx, batch in _sorted_batches(model, tokenizer, texts, pairs, batch_size, length):
            logits = model(**batch).float()  # (B, C)
            if model.problem == "regression":
                rows = [Label("score", v) for v in logits[:, 0].tolist()]
            else:
                probs, best = logits.softmax(-1).max(-1)  # (B,), (B,)
                scored = zip(probs.tolist(), best.tolist(), strict=True)
                rows = [Label(names[b], p) for p, b in scored]
            for i, row in zip(idx, rows, strict=True):
                out[i] = row
    return out  # type: ignore[return-value]
