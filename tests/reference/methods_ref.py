#!/usr/bin/python3
"""PyTorch mirrors of maelre-bench's non-softmax attention kinds and token merging (SPEC §3, §4).

Each function mirrors one C op exactly (same formula, same conventions), so that
tests/reference/make_fixtures.py can build parity fixtures for linformer / tome / maelre:

  efficient_attention(q, k, v, heads, log_s=None)       core/attn_efficient.c
  linformer_attention(q, k, v, E, F, heads)              core/attn_linformer.c
  merge_plan(k, heads, n_target, kind, window, local_until, s=None)
                                                         core/merge.c merge_plan_build
  merge_tokens(x, s, dst, n_out)                         core/merge.c merge_forward (+ autograd
                                                         gives merge_backward)

All work on ONE sample: q, k, v are (N, D) tensors, head h owns columns [h*d, (h+1)*d).
The plan is computed in float32 with numpy, in the C code's order of operations (metric =
keys averaged over heads, L2-normalised; across rounds the size-weighted mean of member rows,
re-normalised; ties to the lower index), and is a constant for autograd.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tests/reference/methods_ref.py
  no arguments: self-checks (torch efficient attention vs a direct formula, etc.)
  --write-plan-fixture PATH: writes the merge-plan fixture read by tests/test_merge.c
"""
import math
import sys

import numpy as np
import torch

# ---------------------------------------------------------------- attention kinds


def efficient_attention(q, k, v, heads, log_s=None):
    """rho_q(Q) (rho_k(K)^T V) per head: rho_q = softmax over the d features of each query row,
    rho_k = softmax over the N tokens of each key column after adding log s_j. No scaling."""
    N, D = q.shape
    d = D // heads
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        kl = k[:, sl]
        if log_s is not None:
            kl = kl + log_s[:, None]
        pk = torch.softmax(kl, dim=0)            # (N, d), columns sum to 1
        pq = torch.softmax(q[:, sl], dim=1)      # (N, d), rows sum to 1
        outs.append(pq @ (pk.t() @ v[:, sl]))    # (N, d) via the d x d context
    return torch.cat(outs, dim=1)


def linformer_attention(q, k, v, E, F, heads):
    """softmax(Q (E_N K)^T / sqrt(d)) (F_N V) per head; E, F (kp, n_max) shared by the heads,
    sliced to their first N columns."""
    N, D = q.shape
    d = D // heads
    kp_ = E[:, :N] @ k       # (kp, D)
    vp_ = F[:, :N] @ v       # (kp, D)
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        p = torch.softmax(q[:, sl] @ kp_[:, sl].t() / math.sqrt(d), dim=1)   # (N, kp)
        outs.append(p @ vp_[:, sl])
    return torch.cat(outs, dim=1)


# ---------------------------------------------------------------- token merging

SIM_BLOCK = 32   # rows of A per similarity block in core/merge.c (does not change the result)


def _normalise_rows(m):
    """L2-normalise float32 rows like core/merge.c: sum of squares in double, float multiplier."""
    ss = np.sum(m.astype(np.float64) ** 2, axis=1)
    inv = np.where(ss > 0, 1.0 / np.sqrt(np.where(ss > 0, ss, 1.0)), 1.0).astype(np.float32)
    return np.where((ss > 0)[:, None], m * inv[:, None], m).astype(np.float32)


def _match_global(m):
    n = m.shape[0]
    A, B = m[0::2], m[1::2]
    sim = (A @ B.T).astype(np.float32)      # (|A|, |B|)
    best_b = np.argmax(sim, axis=1)          # first maximum: ties to the lower b
    return best_b, sim[np.arange(sim.shape[0]), best_b]


def _match_local(m, w):
    n, d = m.shape
    nA, nB = (n + 1) // 2, n // 2
    best_b = np.zeros(nA, dtype=np.int64)
    best_s = np.zeros(nA, dtype=np.float32)
    for a in range(nA):
        p = 2 * a
        lo = (p - w) // 2 if p > w + 1 else 0
        hi = min((p + w - 1) // 2, nB - 1)
        bb, bs = lo, -np.inf
        for b in range(lo, hi + 1):
            s = np.float32(0.0)
            for c in range(d):   # sequential float32 sum, as the C loop
                s = np.float32(s + m[p, c] * m[2 * b + 1, c])
            if s > bs:
                bb, bs = b, s
        best_b[a], best_s[a] = bb, bs
    return best_b, best_s


def merge_plan(k, heads, n_target, kind="global", window=8, local_until=0, s=None, threshold=0.0):
    """Mirror of merge_plan_build. k (N, D) keys (torch or numpy), s (N) sizes or None.
    threshold > 0: adaptive amount (only the a whose best similarity reaches it merge, n_target
    is a floor). Returns (dst LongTensor (N), n_out): input token i goes to output row dst[i]."""
    k = k.detach().cpu().numpy() if torch.is_tensor(k) else np.asarray(k)
    k = k.astype(np.float32)
    N, D = k.shape
    d = D // heads
    if s is None:
        sz = np.ones(N, dtype=np.float32)
    else:
        sz = (s.detach().cpu().numpy() if torch.is_tensor(s) else np.asarray(s)).astype(np.float32)
    dst = np.arange(N, dtype=np.int64)
    if N == 0:
        return torch.from_numpy(dst), 0
    n_target = max(1, min(n_target, N))
    window = max(1, window)
    if n_target == N:
        return torch.from_numpy(dst), N
    acc = np.zeros((N, d), dtype=np.float32)
    for h in range(heads):   # sum over heads in float, then times 1/H (as the C loop)
        acc = (acc + k[:, h * d:(h + 1) * d]).astype(np.float32)
    m = _normalise_rows((acc * np.float32(1.0 / heads)).astype(np.float32))
    n = N
    while n > n_target:
        nA, nB = (n + 1) // 2, n // 2
        if nB == 0:
            break
        r = min(n - n_target, nA)
        if kind == "local" and n > local_until:
            best_b, best_s = _match_local(m, window)
        else:
            best_b, best_s = _match_global(m)
        if threshold > 0:   # float32 comparison, as the C loop
            r = min(r, int(np.count_nonzero(best_s.astype(np.float32) >= np.float32(threshold))))
            if r == 0:
                break
        order = np.argsort(-best_s.astype(np.float64), kind="stable")   # ties: lower a first
        merged = np.zeros(n, dtype=bool)
        merged[2 * order[:r]] = True
        out = np.full(n, -1, dtype=np.int64)
        out[~merged] = np.arange(n - r)
        for a in order[:r]:
            out[2 * a] = out[2 * best_b[a] + 1]
        n_new = n - r
        sz_next = np.zeros(n_new, dtype=np.float32)
        m_next = np.zeros((n_new, d), dtype=np.float32)
        for p in range(n):   # in position order, float32 accumulation, as the C loop
            o = out[p]
            sz_next[o] = np.float32(sz_next[o] + sz[p])
            m_next[o] = (m_next[o] + sz[p] * m[p]).astype(np.float32)
        m = _normalise_rows(m_next)
        sz = sz_next
        dst = out[dst]
        n = n_new
    return torch.from_numpy(dst), n


def merge_tokens(x, s, dst, n_out):
    """x_out[g] = sum_{i->g} s_i x_i / sum s_i, s_out[g] = sum s_i. Differentiable in x; the plan
    dst and the sizes are constants, so autograd gives exactly merge_backward
    (dx_i = dx_out[dst_i] * s_i / s_out[dst_i])."""
    s = s.detach()
    dst = dst.to(torch.long)
    s_out = torch.zeros(n_out, dtype=s.dtype).index_add_(0, dst, s)
    num = torch.zeros(n_out, x.shape[1], dtype=x.dtype).index_add_(0, dst, s[:, None] * x)
    return num / s_out[:, None], s_out


# ---------------------------------------------------------------- fixture for tests/test_merge.c

PLAN_FIXTURE_MAGIC = "MAELRE-MERGE-PLAN-FIXTURE"
PLAN_FIXTURE_VERSION = 1
# (N, D, heads, n_target, kind, window, local_until, sizes random?) chosen to exercise one and
# several rounds, odd N, global, local and the local->global switch.
PLAN_CASES = [
    (40, 8, 2, 7, "global", 8, 0, True),
    (37, 12, 3, 9, "local", 3, 12, True),
    (64, 8, 2, 16, "local", 8, 20, False),
    (33, 6, 1, 30, "global", 8, 0, False),
    (25, 4, 2, 3, "local", 1, 0, True),
]


def write_plan_fixture(path):
    """Text fixture: a magic/version line, then per case a header line and the keys, sizes,
    expected dst and merged output of a random x. Floats are written with 9 significant
    digits, which round-trips float32 exactly."""
    rng = np.random.RandomState(1234)
    lines = ["%s %d" % (PLAN_FIXTURE_MAGIC, PLAN_FIXTURE_VERSION), "cases %d" % len(PLAN_CASES)]
    f9 = lambda a: " ".join("%.9g" % v for v in np.asarray(a, dtype=np.float32).ravel())
    for (N, D, H, target, kind, w, until, rand_sizes) in PLAN_CASES:
        k = rng.randn(N, D).astype(np.float32)
        # a few near-duplicate neighbours so that merging has structure to find
        for i in range(0, N - 3, 5):
            k[i + 2] = (k[i] + 0.05 * rng.randn(D)).astype(np.float32)
        s = (1 + rng.randint(0, 4, size=N)).astype(np.float32) if rand_sizes \
            else np.ones(N, dtype=np.float32)
        x = rng.randn(N, D).astype(np.float32)
        dst, n_out = merge_plan(k, H, target, kind, w, until, s)
        xo, so = merge_tokens(torch.from_numpy(x), torch.from_numpy(s), dst, n_out)
        lines.append("case N %d D %d H %d target %d kind %s window %d local_until %d n_out %d"
                     % (N, D, H, target, kind, w, until, n_out))
        lines.append("k " + f9(k))
        lines.append("s " + f9(s))
        lines.append("x " + f9(x))
        lines.append("dst " + " ".join(str(int(v)) for v in dst))
        lines.append("x_out " + f9(xo.numpy()))
        lines.append("s_out " + f9(so.numpy()))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    import os
    os.replace(tmp, path)


# ---------------------------------------------------------------- self-checks


def _efficient_direct(q, k, v, heads, log_s):
    """Literal loops over the formula, float64."""
    N, D = q.shape
    d = D // heads
    out = np.zeros((N, D))
    for h in range(heads):
        o = h * d
        for i in range(N):
            e = np.exp(q[i, o:o + d] - q[i, o:o + d].max())
            pq = e / e.sum()
            for c2 in range(d):
                val = 0.0
                for c in range(d):
                    z = k[:, o + c] + (log_s if log_s is not None else 0.0)
                    w = np.exp(z - z.max())
                    w /= w.sum()
                    val += pq[c] * np.dot(w, v[:, o + c2])
                out[i, o + c2] = val
    return out


def _self_check():
    torch.manual_seed(0)
    rng = np.random.RandomState(0)
    ok = True
    # efficient attention vs direct formula, with and without sizes
    for (N, D, H) in [(7, 6, 2), (12, 8, 1), (5, 9, 3)]:
        q, k, v = (torch.from_numpy(rng.randn(N, D)) for _ in range(3))
        ls = torch.from_numpy(np.log(1 + rng.randint(0, 4, size=N).astype(np.float64)))
        for log_s in (None, ls):
            got = efficient_attention(q, k, v, H, log_s).numpy()
            want = _efficient_direct(q.numpy(), k.numpy(), v.numpy(), H,
                                     None if log_s is None else log_s.numpy())
            err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-12)
            print("efficient N=%d D=%d H=%d sizes=%s: rel err %.2e" % (N, D, H, log_s is not None, err))
            ok &= err < 1e-12
    # a size-2 token equals two copies of it (proportional weighting on keys)
    x = torch.from_numpy(rng.randn(2, 8))
    three, two = torch.stack([x[0], x[1], x[0]]), x
    o3 = efficient_attention(three, three, three, 2)[:2]
    o2 = efficient_attention(two, two, two, 2, torch.tensor([math.log(2.0), 0.0], dtype=torch.float64))
    err = (o3 - o2).abs().max().item()
    print("efficient size-2 token vs two copies: max abs err %.2e" % err)
    ok &= err < 1e-12
    # linformer ignores columns >= N of E and F
    N, D, kp, n_max = 9, 8, 4, 16
    q, k, v = (torch.from_numpy(rng.randn(N, D)) for _ in range(3))
    E, F = torch.from_numpy(rng.randn(kp, n_max)), torch.from_numpy(rng.randn(kp, n_max))
    E2, F2 = E.clone(), F.clone()
    E2[:, N:] = 100.0
    F2[:, N:] = -7.0
    d1 = (linformer_attention(q, k, v, E, F, 2) - linformer_attention(q, k, v, E2, F2, 2)).abs().max()
    print("linformer columns >= N: max abs change %.2e" % d1.item())
    ok &= d1.item() == 0.0
    # merging conserves sum s and sum s x, reaches the target, local(w >= N) == global
    N, D, H = 50, 8, 2
    k = rng.randn(N, D).astype(np.float32)
    s = (1 + rng.randint(0, 4, size=N)).astype(np.float32)
    xx = torch.from_numpy(rng.randn(N, D))
    for target in (49, 25, 10, 1):
        dg, ng = merge_plan(k, H, target, "global", s=s)
        dl, nl = merge_plan(k, H, target, "local", window=N, s=s)
        st = torch.from_numpy(s).double()
        xo, so = merge_tokens(xx, st, dg, ng)
        cons = max(abs(so.sum().item() - st.sum().item()),
                   ((so[:, None] * xo).sum(0) - (st[:, None] * xx).sum(0)).abs().max().item())
        same = ng == nl == target and bool(torch.equal(dg, dl))
        print("merge target %d: n_out %d, local(w=N)==global %s, conservation err %.2e"
              % (target, ng, same, cons))
        ok &= same and cons < 1e-9
    print("self-check", "OK" if ok else "FAILED")
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write-plan-fixture":
        write_plan_fixture(sys.argv[2])
        print("wrote", sys.argv[2])
    elif len(sys.argv) == 1:
        sys.exit(0 if _self_check() else 1)
    else:
        print(__doc__)
        sys.exit(2)
