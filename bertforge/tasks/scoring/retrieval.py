"""Retrieval metrics over query and corpus embeddings, as sentence-transformers'
InformationRetrievalEvaluator and BEIR define them (fractions in [0, 1]):

- recall@k: the share of a query's relevant documents among its k best, averaged over queries;
- MRR@k: 1 / the rank of the first relevant document among the k best (0 when none is).

Queries are scored against the corpus in blocks, so memory is one block x the corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def top_documents(
    queries: torch.Tensor,  # (Q, H)
    corpus: torch.Tensor,  # (D, H)
    k: int,
    block: int = 1024,
) -> torch.Tensor:  # (Q, min(k, D)) int64: corpus rows, best first
    """The k corpus rows of highest cosine similarity for each query."""
    docs = F.normalize(corpus.float(), dim=-1)
    k = min(k, docs.shape[0])
    best = []
    for start in range(0, queries.shape[0], block):
        q = F.normalize(queries[start : start + block].float(), dim=-1)
        best.append((q @ docs.T).topk(k, dim=-1).indices)
    return torch.cat(best) if best else torch.empty(0, k, dtype=torch.long)


def retrieval_metrics(
    ranked: torch.Tensor,  # (Q, K) corpus rows, best first
    relevant: Sequence[set[int]],  # per query: its relevant corpus rows
    recall_at: Sequence[int] = (1, 10),
    mrr_at: int = 10,
) -> dict[str, float]:
    """{"recall@1": ..., "recall@10": ..., "mrr@10": ...} averaged over the queries."""
    if len(relevant) != ranked.shape[0] or not relevant:
        raise ValueError(f"{ranked.shape[0]} ranked queries but {len(relevant)} relevance sets")
    recall = {k: 0.0 for k in recall_at}
    mrr = 0.0
    for row, wanted in zip(ranked.tolist(), relevant, strict=True):
        if not wanted:
            raise ValueError("a query without relevant documents cannot be scored")
        hits = [doc in wanted for doc in row]
        for k in recall_at:
            recall[k] += sum(hits[:k]) / len(wanted)
        first = next((rank for rank, hit in enumerate(hits[:mrr_at], 1) if hit), None)
        mrr += 0.0 if first is None else 1.0 / first
    n = len(relevant)
    return {**{f"recall@{k}": v / n for k, v in recall.items()}, f"mrr@{mrr_at}": mrr / n}
