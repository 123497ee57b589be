"""Losses over sentence embeddings of a whole (global) batch, as sentence-transformers defines
them: in-batch negatives for (anchor, positive[, hard negatives]) pairs, CoSENT and cosine
regression for scored pairs.

Unlike the token losses of this package these do not split into per-micro-batch sums: every
anchor is scored against every candidate of the batch, so the step embeds the whole batch
first (in chunks without a graph, `training/grad_cache.py`) and calls these once.
"""

from __future__ import annotations

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
    positive_ids: torch.Tensor | None = None,  # (N,): equal ids = the same positive text
    anchor_ids: torch.Tensor | None = None,  # (N,): equal ids = the same anchor text
) -> torch.Tensor:  # () the mean loss
    """Multiple-negatives ranking loss (InfoNCE): anchor i's positive is candidate i, every
    other candidate is a negative; cross-entropy over scale x cosine. With ids, a positive
    whose text is also anchor i's positive is not a negative of anchor i (two questions with
    one answer paragraph in a batch). `symmetric` adds the positives -> anchors direction
    (sentence-transformers' MultipleNegativesSymmetricRankingLoss): the mean of the two;
    there neither a repeated anchor text nor the anchor of a repeated positive text is a
    negative."""
    n = anchors.shape[0]
    scores = cosine_matrix(anchors, candidates) * scale  # (N, M)
    labels = torch.arange(n, device=scores.device)
    floor = torch.finfo(scores.dtype).min
    if positive_ids is not None:
        duplicate = F.pad(same_text(positive_ids), (0, candidates.shape[0] - n))  # (N, M)
        scores = scores.masked_fill(duplicate, floor)
    loss = F.cross_entropy(scores, labels)
    if not symmetric:
        return loss
    back = scores[:, :n].T  # (N, N): positive i against every anchor
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
