"""The frozen-encoder feature cache: what it stores and what it replays."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from bertforge import EncoderConfig, SequenceClassifier, TokenClassifier
from bertforge.training.finetune import frozen

SMALL = EncoderConfig(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
)
ROWS = [[2, 7, 9, 3], [2, 5, 3], [2, 11, 12, 13, 14, 3]]  # different lengths, one batch


def features() -> dict[str, list[list[int]]]:
    return {
        "input_ids": ROWS,
        "token_type_ids": [[0] * len(r) for r in ROWS],
        "attention_mask": [[1] * len(r) for r in ROWS],
    }


@pytest.mark.parametrize("head", [SequenceClassifier, TokenClassifier])
def test_cache_stores_each_row_alone_and_replays_the_encoder(head: type) -> None:
    torch.manual_seed(0)
    model = head(SMALL, 3).eval()
    encoder = model.encoder
    cache = frozen.install(model, "classification" if head is SequenceClassifier else "ner")
    cache.fill("train", features(), pad_id=0, batch_size=8, device=torch.device("cpu"))
    for row, ids in zip(cache.store["train"], ROWS, strict=True):
        # Its own storage: a view would pin the whole padded (B, T, H) batch in memory.
        assert row.untyped_storage().nbytes() == row.numel() * row.element_size()
        with torch.no_grad():
            alone = encoder(torch.tensor([ids])).last_hidden_state[0]  # (T, H)
        assert_close(row, alone[0] if cache.pooled else alone, atol=1e-5, rtol=1e-5)
    ids = torch.tensor([ROWS[2], ROWS[0] + [0, 0]])  # (2, 6), the second row padded
    mask = (ids != 0).long()
    cache.select("train", [2, 0])
    with torch.no_grad():
        replayed = model(ids)
        model.encoder = encoder
        live = model(ids, mask)
    if cache.pooled:
        assert_close(replayed, live, atol=1e-5, rtol=1e-5)
    else:  # the cache pads with zero states; compare the real tokens
        assert_close(replayed[0], live[0], atol=1e-5, rtol=1e-5)
        assert_close(replayed[1, :4], live[1, :4], atol=1e-5, rtol=1e-5)
