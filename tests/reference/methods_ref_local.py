#!/usr/bin/python3
"""PyTorch mirrors of maelre-bench's sparse exact-softmax kinds `local` and `bigbird` (SPEC §9.4,
§9.5), for the parity fixtures:

  local_attention(q, k, v, w, log_s=None)                     core/attn_local.c
  bigbird_attention(q, k, v, table, b=64, r=3, log_s=None)    core/attn_bigbird.c
  local_mask(N, w), bigbird_mask(N, table_h, b, r)            the (N, N) boolean patterns
  bigbird_row_blocks(trow, r, i, nblk)                        attn_bigbird_row_blocks

q, k, v are (N, H, d) tensors of ONE sample (after the Q/K/V projections), log_s (N,) the
per-token log size or None; the output is (N, H, d). Both kinds are masked softmax attention:
out_i = sum_{j in pattern(i)} softmax_j(q_i . k_j / sqrt(d) + log s_j) v_j, so autograd gives
their backward. The random block table (H, M, r) of bigbird is drawn on the C side
(attn_bigbird_draw_table) and handed over through the fixture: only its use is mirrored here,
including the C code's mapping of picks that do not exist in a sample shorter than M blocks.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tests/reference/methods_ref_local.py
runs self-checks (full window = softmax, short bigbird = softmax, the mapping by hand).
"""
import math

import torch


def _masked_softmax_attention(q, k, v, mask, log_s=None):
    """mask: (N, N) bool shared by the heads, or (H, N, N) bool per head."""
    N, H, d = q.shape
    s = torch.einsum("ihc,jhc->hij", q, k) / math.sqrt(d)          # (H, N, N)
    if log_s is not None:
        s = s + log_s[None, None, :]
    m = mask if mask.dim() == 3 else mask[None].expand(H, N, N)
    s = s.masked_fill(~m, float("-inf"))
    p = torch.softmax(s, dim=-1)
    return torch.einsum("hij,jhc->ihc", p, v)


def local_mask(N, w):
    """i - w/2 < j <= i + w/2 (w/2 rounded down), as core/attn_local.h."""
    i = torch.arange(N)[:, None]
    j = torch.arange(N)[None, :]
    hw = w // 2
    return (j > i - hw) & (j <= i + hw)


def local_attention(q, k, v, w, log_s=None):
    """Sliding-window softmax attention (SPEC §9.4)."""
    if w < 2:
        raise ValueError("local attention needs w >= 2")
    return _masked_softmax_attention(q, k, v, local_mask(q.shape[0], w), log_s)


def bigbird_row_blocks(trow, r, i, nblk):
    """Key blocks of query block i in a sample of nblk blocks (ascending list), from the head's
    table row i (r ints, -1 = none); the C function attn_bigbird_row_blocks step for step."""
    if nblk <= 5 + r or i == 0 or i == nblk - 1:
        return list(range(nblk))
    fixed = {0, nblk - 1, i - 1, i, i + 1}
    cand = [j for j in range(nblk) if j not in fixed]
    c = len(cand)
    taken = set()
    kept = []
    for p in trow[:r]:                      # 1. picks valid in this sample, as drawn
        ok = 0 <= p < nblk and p not in fixed and p not in taken
        kept.append(ok)
        if ok:
            taken.add(p)
    for p, ok in zip(trow[:r], kept):       # 2. the others: candidate p mod c, then the next free
        if ok:
            continue
        at = 0 if p < 0 else p % c
        while cand[at] in taken:
            at = (at + 1) % c
        taken.add(cand[at])
    return sorted(fixed | taken)


def bigbird_mask(N, table_h, b, r):
    """(N, N) bool pattern of one head; table_h (M, r) ints (list, numpy or tensor)."""
    nblk = (N + b - 1) // b
    rows = [[int(x) for x in table_h[i]] for i in range(nblk)]
    m = torch.zeros(N, N, dtype=torch.bool)
    for i in range(nblk):
        for blk in bigbird_row_blocks(rows[i], r, i, nblk):
            m[i * b:(i + 1) * b, blk * b:(blk + 1) * b] = True
    return m


def bigbird_attention(q, k, v, table, b=64, r=3, log_s=None):
    """BigBird ITC block-sparse softmax attention (SPEC §9.5); table (H, M, r) ints, the random
    block table of this layer, M >= ceil(N / b)."""
    N, H, _ = q.shape
    if (N + b - 1) // b > len(table[0]):
        raise ValueError("random block table shorter than the sample")
    mask = torch.stack([bigbird_mask(N, table[h], b, r) for h in range(H)])
    return _masked_softmax_attention(q, k, v, mask, log_s)


def _softmax_attention(q, k, v, log_s=None):
    N = q.shape[0]
    return _masked_softmax_attention(q, k, v, torch.ones(N, N, dtype=torch.bool), log_s)


def _self_check():
    torch.manual_seed(0)
    N, H, d = 37, 2, 5
    q, k, v = (torch.randn(N, H, d, dtype=torch.float64) for _ in range(3))
    ls = torch.log(torch.arange(1, N + 1, dtype=torch.float64) % 4 + 1)
    full = _softmax_attention(q, k, v, ls)
    assert torch.allclose(local_attention(q, k, v, 2 * N, ls), full)
    assert not torch.allclose(local_attention(q, k, v, 2 * N - 2, ls)[-1], full[-1])
    assert int(local_mask(9, 4).sum()) == 32
    # N = 37, b = 5: 8 blocks <= 5 + r: dense whatever the table says
    assert torch.allclose(bigbird_attention(q, k, v, [[[1, 2, 3]] * 8] * H, 5, 3, ls), full)
    # the mapping worked by hand in tests/test_attn_bigbird.c
    assert bigbird_row_blocks([5, 9, 20], 3, 3, 12) == [0, 2, 3, 4, 5, 9, 10, 11]
    assert bigbird_row_blocks([2, 11, 13], 3, 5, 12) == [0, 2, 4, 5, 6, 8, 10, 11]
    assert bigbird_row_blocks([14, 3, 21], 3, 5, 12) == [0, 1, 2, 3, 4, 5, 6, 11]
    assert bigbird_row_blocks([4, 6, 8], 3, 1, 12) == [0, 1, 2, 4, 6, 8, 11]
    m = bigbird_mask(45, [[-1, -1, -1]] + [[j % 9, (j + 3) % 9, (j + 5) % 9] for j in range(1, 9)], 5, 3)
    assert not bool(m.all()) and bool(m[:5].all()) and bool(m[40:].all())
    print("methods_ref_local self-checks passed")


if __name__ == "__main__":
    _self_check()
