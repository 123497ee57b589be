"""NEZHA's relative-position attention: bertforge's (one matmul against the 2K + 1 distinct
table rows, a gather and a scatter-add) vs transformers 4.x's (the full (T, T, d) table and
T batched matmuls per term), forward + backward, with plain SDPA attention (absolute
positions) as the floor. Same inputs, same threads; both relative versions are checked to
agree before timing.

    .venv/bin/python bench/relative_attention.py [--batch 32] [--heads 12] [--dim 64]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from bertforge.models.relative import RelativePositions, relative_attention


def hf4_attention(q, k, v, table, index, mask):
    """transformers 4.x NezhaSelfAttention's arithmetic: r_ij materialised as (T, T, d)."""
    B, nh, T, d = q.shape
    rel = table[index]  # (T, T, d)
    scores = q @ k.transpose(-1, -2)
    q_t = q.permute(2, 0, 1, 3).reshape(T, B * nh, d)  # (T, B nh, d)
    scores = scores + (q_t @ rel.transpose(1, 2)).view(T, B, nh, T).permute(1, 2, 0, 3)
    scores = scores / math.sqrt(d)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = scores.softmax(-1)
    p_t = probs.permute(2, 0, 1, 3).reshape(T, B * nh, T)
    values = (p_t @ rel).view(T, B, nh, d).permute(1, 2, 0, 3)
    return probs @ v + values


def timed(fn, q, k, v, reps: int = 5) -> float:
    def once() -> None:
        out = fn(q, k, v)
        out.sum().backward()

    once()
    start = time.perf_counter()
    for _ in range(reps):
        once()
    return (time.perf_counter() - start) / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--max-relative-position", type=int, default=64)
    args = ap.parse_args()
    positions = RelativePositions(args.max_relative_position, args.dim)
    print(f"threads={torch.get_num_threads()} B={args.batch} nh={args.heads} d={args.dim} "
          f"K={args.max_relative_position}; forward + backward, ms")  # fmt: skip
    for T in (128, 512):
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(args.batch, args.heads, T, args.dim, generator=g).requires_grad_()
                   for _ in range(3))  # fmt: skip
        mask = torch.ones(args.batch, 1, 1, T, dtype=torch.bool)
        mask[1, ..., T // 2 :] = False
        table, index = positions(T)
        K, pos = positions.max_distance, torch.arange(T)
        full_index = (pos[None, :] - pos[:, None]).clamp(-K, K) + K  # (T, T) into all 2K + 1 rows
        full_table = positions.table

        def ours(q, k, v, table=table, index=index, mask=mask):
            return relative_attention(q, k, v, table, index, mask, 0.0)[0]

        def ref(q, k, v, table=full_table, index=full_index, mask=mask):
            return hf4_attention(q, k, v, table, index, mask)

        def sdpa(q, k, v, mask=mask):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

        with torch.no_grad():
            torch.testing.assert_close(ours(q, k, v), ref(q, k, v), atol=1e-4, rtol=1e-4)
        t_ours, t_ref, t_sdpa = (timed(f, q, k, v) for f in (ours, ref, sdpa))
        print(f"  T={T:<4} bertforge {t_ours * 1e3:7.1f}  transformers-4.x {t_ref * 1e3:7.1f} "
              f"({t_ref / t_ours:.2f}x)  SDPA without positions {t_sdpa * 1e3:7.1f} "
              f"(relative costs {t_ours / t_sdpa:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
