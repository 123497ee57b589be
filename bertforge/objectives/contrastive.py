"""Losses over sentence embeddings of a whole (global) batch, as sentence-transformers defines
them: in-batch negatives for (anchor, positive[, hard negatives]) pairs, CoSENT and cosine
regression for scored pairs.

Unlike the token losses of this package these do not split into per-micro-batch sums: every
anchor is scored against every candidate of the batch, so the step embeds the whole batch
first (in chunks without a graph, `training/grad_cache.py`) and calls these once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, H), (M, H) -> (N, M) cosine similarities, in fp32."""
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


def same_text(ids: torch.Tensor) -> torch.Tensor:
    """(N,) text ids -> (N, N) bool: row i's text recurs at column j != i."""
    same = ids[:, None] == ids[None, :]
    return same & ~torch.eye(len(ids), dtype=torch.bool, device=ids.device)


def in_batch_negatives(
    anchors: torch.Tensor,  # (N, H)
    candidates: torch.Tensor,  # (M, H): the N positives, then any hard negatives
    scale: torch.Tensor | float = 20.0,
    symmetric: bool = False,
    candidate_ids: torch.Tensor | None = None,  # (M,): equal ids = the same text
    anchor_ids: torch.Tensor | None = None,  # (N,): equal ids = the same anchor text
) -> torch.Tensor:  # () the mean loss
    """Multiple-negatives ranking loss (InfoNCE): anchor i's positive is candidate i, every
    other candidate is a negative; cross-entropy over scale x cosine. With ids, a candidate
    whose text is anchor i's positive text is not a negative of anchor i (two questions with
    one answer paragraph in a batch). `symmetric` adds the positives -> anchors direction
    (sentence-transformers' MultipleNegativesSymmetricRankingLoss): the mean of the two;
    there neither a repeated anchor text nor the anchor of a repeated positive text is a
    negative."""
    n = anchors.shape[0]
    scores = cosine_matrix(anchors, candidates) * scale  # (N, M)
    labels = torch.arange(n, device=scores.device)
    floor = torch.finfo(scores.dtype).min
    if candidate_ids is not None:
        duplicate = candidate_ids[None, :] == candidate_ids[:n, None]  # (N, M)
        duplicate[labels, labels] = False
        scores = scores.masked_fill(duplicate, floor)
    loss = F.cross_entropy(scores, labels)
    if not symmetric:
        return loss
    back = scores[:, :n].T  # (N, N): positive i against every anchor (repeats masked above)
    if anchor_ids is not None:
        back = back.masked_fill(same_text(anchor_ids), floor)
    return (loss + F.cross_entropy(back, labels)) / 2


def cosent(
    a: torch.Tensor,  # (N, H)
    b: torch.Tensor,  # (N, H)
    scores: torch.Tensor,  # (N,) gold similarity of each pair
    scale: float = 20.0,
) -> torch.Tensor:  # ()
    """CoSENT (Su, 2022): log(1 + sum over pairs (i, j) with gold_i < gold_j of
    exp(scale (cos_i - cos_j))): every pair ranked below another must score below it."""
    cos = F.cosine_similarity(a.float(), b.float(), dim=-1) * scale  # (N,)
    diff = cos[:, None] - cos[None, :]  # (N, N): cos_i - cos_j
    ranked_below = scores[:, None] < scores[None, :]
    terms = torch.cat((diff.new_zeros(1), diff[ranked_below]))
    return torch.logsumexp(terms, dim=0)


def cosine_regression(a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:  # ()
    """Squared error between cos(a_i, b_i) and the gold score (sentence-transformers'
    CosineSimilarityLoss; scores in [-1, 1], e.g. STS-B's 0-5 divided by 5)."""
    cos = F.cosine_similarity(a.float(), b.float(), dim=-1)
    return F.mse_loss(cos, scores.float())


@dataclass(frozen=True)
class EmbeddingLoss:
    """The objective of an embedding run: `loss_of` takes the vectors of a whole (global)
    batch of rows (anchor, positive, negatives...), (B, C, H); the step computes it once
    over the batch (`training/embedding_step.py`). mnrl: in-batch negatives (+ "acc", how
    many anchors rank their own positive first); cosent / cosine: scored pairs."""

    loss: str = "mnrl"
    scale: float = 20.0
    symmetric: bool = False
    weight: float = 1.0
    name: str = "embedding"
    fields: tuple[str, ...] = ("text_ids",)
    heads: tuple[str, ...] = ()

    def count(self, batch: Mapping[str, torch.Tensor]) -> int:
        return int(batch["input_ids"].shape[0])

    def inputs(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {}

    def loss_of(
        self,
        vectors: torch.Tensor,
        batch: Mapping[str, torch.Tensor],
        scale: torch.Tensor | None = None,  # a learned scale, else `self.scale`
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # () mean loss, metric sums
        if self.loss == "cosent":
            return cosent(vectors[:, 0], vectors[:, 1], batch["labels"], self.scale), {}
        if self.loss == "cosine":
            return cosine_regression(vectors[:, 0], vectors[:, 1], batch["labels"]), {}
        anchors = vectors[:, 0]  # (B, H)
        candidates = vectors[:, 1:].transpose(0, 1).reshape(-1, vectors.shape[-1])  # (B(C-1), H)
        ids = batch["text_ids"]  # (B, C)
        candidate_ids = ids[:, 1:].T.reshape(-1)  # positives first, then each negative column
        loss = in_batch_negatives(
            anchors,
            candidates,
            self.scale if scale is None else scale,
            self.symmetric,
            candidate_ids,
            ids[:, 0],
        )
        with torch.no_grad():
            best = cosine_matrix(anchors, candidates).argmax(-1)
            right = (best == torch.arange(len(best), device=best.device)).sum()
        return loss, {"acc": right}
