"""The embedding losses against their formulas written out (in-batch negatives with scale,
symmetry, duplicate masking and hard negatives; CoSENT; cosine regression), gradient caching
against the plain big-batch gradient, and the retrieval metrics on hand-worked rankings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertforge import FAMILIES, Encoder
from bertforge.inference import pool
from bertforge.objectives.contrastive import cosent, cosine_regression, in_batch_negatives
from bertforge.tasks.scoring.retrieval import retrieval_metrics, top_documents
from bertforge.training.grad_cache import cached_backward


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def ranking_loss(a, c, scale, excluded=()) -> float:
    """-log softmax of candidate i among anchor i's allowed candidates, averaged."""
    total = 0.0
    for i in range(len(a)):
        allowed = [j for j in range(len(c)) if (i, j) not in excluded]
        logits = [scale * cos(a[i], c[j]) for j in allowed]
        top = max(logits)
        log_z = top + math.log(sum(math.exp(x - top) for x in logits))
        total += log_z - scale * cos(a[i], c[i])
    return total / len(a)


@pytest.fixture
def vectors() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 8, generator=g), torch.randn(7, 8, generator=g)  # 4 pos + 3 hard


def test_in_batch_negatives_is_the_ranking_formula(vectors) -> None:
    a, c = vectors
    for scale in (1.0, 20.0):
        want = ranking_loss(a, c, scale)
        assert float(in_batch_negatives(a, c, scale)) == pytest.approx(want, rel=1e-5)
    # Pairs alone: only the positives are candidates.
    got = in_batch_negatives(a, c[:4], torch.tensor(5.0))
    assert float(got) == pytest.approx(ranking_loss(a, c[:4], 5.0), rel=1e-5)


def test_symmetric_and_duplicate_positives(vectors) -> None:
    a, c = vectors
    p = c[:4]
    forward, backward = ranking_loss(a, p, 20.0), ranking_loss(p, a, 20.0)
    got = in_batch_negatives(a, p, 20.0, symmetric=True)
    assert float(got) == pytest.approx((forward + backward) / 2, rel=1e-5)
    # Anchors 0 and 2 share one positive text: neither is the other's negative (the hard
    # negatives stay negatives of everyone); anchors 1 and 3 share the anchor text.
    same_positive = torch.tensor([5, 6, 5, 7, 8, 9, 10])
    want = ranking_loss(a, c, 20.0, excluded={(0, 2), (2, 0)})
    got = in_batch_negatives(a, c, 20.0, candidate_ids=same_positive)
    assert float(got) == pytest.approx(want, rel=1e-5)
    # A hard negative with anchor 1's positive text is no negative of anchor 1.
    negative_repeats = torch.tensor([5, 6, 5, 7, 8, 6, 10])
    want = ranking_loss(a, c, 20.0, excluded={(0, 2), (2, 0), (1, 5)})
    got = in_batch_negatives(a, c, 20.0, candidate_ids=negative_repeats)
    assert float(got) == pytest.approx(want, rel=1e-5)
    # Backwards, positive i meets every anchor: a repeated anchor text is no negative, nor is
    # the anchor of a positive with positive i's text (both are positive i's own pairs).
    same_anchor = torch.tensor([1, 2, 3, 2])
    back = ranking_loss(p, a, 20.0, excluded={(1, 3), (3, 1), (0, 2), (2, 0)})
    got = in_batch_negatives(a, p, 20.0, True, same_positive[:4], same_anchor)
    forward = ranking_loss(a, p, 20.0, excluded={(0, 2), (2, 0)})
    assert float(got) == pytest.approx((forward + back) / 2, rel=1e-5)


def test_cosent_and_cosine_regression_are_their_formulas(vectors) -> None:
    a, c = vectors
    b = c[:4]
    gold = torch.tensor([0.9, 0.1, 0.5, 0.5])
    s = [20 * cos(a[i], b[i]) for i in range(4)]
    terms = [s[i] - s[j] for i in range(4) for j in range(4) if gold[i] < gold[j]]
    want = math.log(1 + sum(math.exp(t) for t in terms))
    assert float(cosent(a, b, gold)) == pytest.approx(want, rel=1e-5)
    mse = sum((cos(a[i], b[i]) - float(gold[i])) ** 2 for i in range(4)) / 4
    assert float(cosine_regression(a, b, gold)) == pytest.approx(mse, rel=1e-5)


def tiny_encoder(dropout: float) -> Encoder:
    config = FAMILIES["bert"].config(
        "tiny", vocab_size=50, max_position_embeddings=16, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )  # fmt: skip
    torch.manual_seed(0)
    return Encoder(config, add_pooler=False).train()


def embed_with(model: Encoder):
    def embed(chunk: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, mask = chunk
        return pool(model(ids, mask).last_hidden_state, mask, "mean")

    return embed


@pytest.mark.parametrize(("dropout", "live"), [(0.0, 1), (0.1, 1), (0.1, 2), (0.1, 6)])
def test_gradient_caching_equals_the_big_batch_gradient(dropout: float, live: int) -> None:
    """12 pairs in chunks of 4, the last `live` chunks kept with their graph (6: all, a plain
    backward): the same loss and weight gradients as embedding all 24 texts with a graph at
    once (with dropout: the same masks, replayed from each chunk's state)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (24, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[::3, 7:] = 0
    chunks = [(ids[i : i + 4], mask[i : i + 4]) for i in range(0, 24, 4)]

    def loss_of(embeddings: list[torch.Tensor]) -> torch.Tensor:
        e = torch.cat(embeddings)
        return in_batch_negatives(e[:12], e[12:], 20.0, symmetric=True)

    model = tiny_encoder(dropout)
    torch.manual_seed(7)
    plain = loss_of([embed_with(model)(c) for c in chunks])  # one graph over every chunk
    plain.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model = tiny_encoder(dropout)
    torch.manual_seed(7)
    loss, embeddings = cached_backward(
        embed_with(model), chunks, loss_of, torch.device("cpu"), live=live
    )
    after = torch.rand(1)  # the generators are left where the plain pass left them
    reference = tiny_encoder(dropout)
    torch.manual_seed(7)
    loss_of([embed_with(reference)(c) for c in chunks])
    assert torch.equal(after, torch.rand(1))
    assert float(loss) == pytest.approx(float(plain.detach()), rel=1e-6)
    assert len(embeddings) == 6 and not embeddings[0].requires_grad
    got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys()
    for name in want:
        assert_close(got[name], want[name], atol=1e-6, rtol=1e-5, msg=name)


def test_retrieval_metrics_on_hand_worked_rankings() -> None:
    ranked = torch.tensor([[2, 0, 1], [1, 2, 0], [0, 1, 2]])
    relevant = [{0}, {2, 0}, {2}]
    # q0: first hit at rank 2; q1: hits at ranks 2 and 3; q2: hit at rank 3.
    got = retrieval_metrics(ranked, relevant, recall_at=(1, 2), mrr_at=2)
    assert got == pytest.approx({"recall@1": 0.0, "recall@2": (1 + 0.5 + 0) / 3,
                                 "mrr@2": (0.5 + 0.5 + 0) / 3})  # fmt: skip
    queries = F.one_hot(torch.tensor([1, 0]), 3).float()
    corpus = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    assert top_documents(queries, corpus, 2, block=1).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="without relevant documents"):
        retrieval_metrics(ranked[:1], [set()])


class Capture(torch.optim.SGD):
    """An optimizer that only records the gradients it is stepped with."""

    def __init__(self, params) -> None:
        super().__init__(params, lr=0.0)
        self.seen: dict[int, torch.Tensor] = {}

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.seen[id(p)] = p.grad.clone()


@pytest.mark.parametrize("chunk_size", [2, 5, 6])
def test_the_embedding_step_gives_the_plain_gradient_and_learns_its_scale(
    chunk_size: int,
) -> None:
    """EmbeddingStep over (B=6, C=3) rows (anchor, positive, hard negative) of mixed lengths,
    embedded in length-sorted pieces of `chunk_size` texts (6: no caching), with a learned
    scale: every weight's gradient, the scale's included, equals one plain backward of the
    whole padded batch; the exported state leaves the scale out."""
    from bertforge.architectures.embedding import EmbeddingModel
    from bertforge.interop.sentence_transformers import Pooling
    from bertforge.objectives.contrastive import EmbeddingLoss
    from bertforge.training.embedding_step import EmbeddingStep

    config = tiny_encoder(0.0).config
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 50, (6, 3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[:, 0, 5:] = 0  # short anchors
    mask[::2, 1, 7:] = 0  # and other lengths
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
             "text_ids": torch.arange(18).view(6, 3)}  # fmt: skip
    objective = EmbeddingLoss(symmetric=True)

    def model() -> EmbeddingModel:
        torch.manual_seed(0)
        return EmbeddingModel(config, Pooling("mean"), learned_scale=20.0).train()

    plain = model()
    vectors = plain(ids.view(-1, 9), mask.view(-1, 9)).view(6, 3, -1)
    objective.loss_of(vectors, batch, plain.scale())[0].backward()
    chunked = model()
    optimizer = Capture(chunked.parameters())
    stats, norm = EmbeddingStep(chunk_size=chunk_size)(
        chunked, [batch], optimizer, [objective], precision="fp32", grad_clip=0.0
    )
    assert stats.sums["embedding"]["count"] == 6 and math.isfinite(norm)
    for (name, p), q in zip(plain.named_parameters(), chunked.parameters(), strict=True):
        assert_close(optimizer.seen[id(q)], p.grad, atol=1e-6, rtol=1e-5, msg=name)
    assert float(plain.log_scale.grad) != 0.0
    assert "log_scale" not in chunked.saved_state() and "log_scale" in chunked.state_dict()
