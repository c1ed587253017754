#!/usr/bin/python3
"""PyTorch mirrors of maelre-bench's `linear` and `performer` attention kinds (SPEC §9.3, §9.1).

Each function mirrors one C kernel exactly (same formula, same conventions), so that the parity
fixtures for these methods can import them:

  linear_attention(q, k, v, log_s=None)               core/attn_linear.c
  performer_features(x, W, is_query, log_s=None)      core/attn_performer.c attn_performer_phi
  performer_attention(q, k, v, W, log_s=None)         core/attn_performer.c

All work on ONE sample, per head: q, k, v are (N, H, d) tensors (d = D/H; a fused (N, 3D) QKV
row splits as q = qkv[:, :D].reshape(N, H, d) and so on); log_s is (N,) or None (all sizes 1);
the outputs are (N, H, d). No nn.Module: plain functions, autograd gives the backward.

Performer's W (m, d) is drawn on the C side (attn_performer_draw_features) and handed over in
the fixture; this file does not try to reproduce the C RNG. The stabilisers c are detached: the
C backward is the gradient of out(q, k, v; c) with c held at its forward value, which is what
autograd computes here.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tests/reference/methods_ref_new.py
  no arguments: self-checks against direct (quadratic) formulas in float64.
"""
import math
import sys

import torch
import torch.nn.functional as F

LINEAR_EPS = 1e-6      # SPEC §9.3: denominator guard
PERFORMER_EPS = 1e-4   # SPEC §9.1: positive floor of every feature


def _sizes(log_s, x):
    """(N, 1, 1) size weights s_j = exp(log s_j), or None."""
    return None if log_s is None else torch.exp(log_s.to(x.dtype))[:, None, None]


def linear_attention(q, k, v, log_s=None):
    """phi(q_i) (sum_j s_j phi(k_j) v_j^T) / (phi(q_i) . sum_j s_j phi(k_j) + 1e-6),
    phi = elu + 1 on the raw q, k. q, k, v (N, H, d) -> (N, H, d)."""
    fq = F.elu(q) + 1.0
    fk = F.elu(k) + 1.0
    s = _sizes(log_s, k)
    if s is not None:
        fk = fk * s
    C = torch.einsum("nhc,nhe->hce", fk, v)          # (H, d, d) context
    z = fk.sum(dim=0)                                # (H, d)
    num = torch.einsum("nhc,hce->nhe", fq, C)
    den = torch.einsum("nhc,hc->nh", fq, z) + LINEAR_EPS
    return num / den[..., None]


def performer_features(x, W, is_query, log_s=None):
    """s_i m^(-1/2) (exp(w_l . x' - |x'|^2/2 - c) + 1e-4), x' = x d^(-1/4). c (detached) is the
    max over l per row for queries, the max over all rows and l per head for keys.
    x (N, H, d), W (m, d) -> (N, H, m)."""
    d = x.shape[-1]
    m = W.shape[0]
    xs = x * d ** -0.25
    a = torch.einsum("nhc,lc->nhl", xs, W.to(x.dtype))
    hn = (xs * xs).sum(dim=-1, keepdim=True) / 2.0
    if is_query:
        c = a.amax(dim=-1, keepdim=True).detach()
    else:
        c = a.amax(dim=(0, 2), keepdim=True).detach()
    f = (torch.exp(a - hn - c) + PERFORMER_EPS) * m ** -0.5
    s = _sizes(log_s, x)
    return f if s is None else f * s


def performer_attention(q, k, v, W, log_s=None):
    """FAVOR+: phi(q_i) (sum_j s_j phi(k_j) v_j^T) / (phi(q_i) . sum_j s_j phi(k_j)).
    q, k, v (N, H, d), W (m, d) shared by the heads -> (N, H, d)."""
    fq = performer_features(q, W, True)
    fk = performer_features(k, W, False, log_s)
    C = torch.einsum("nhl,nhe->hle", fk, v)          # (H, m, d) context
    z = fk.sum(dim=0)                                # (H, m)
    num = torch.einsum("nhl,hle->nhe", fq, C)
    den = torch.einsum("nhl,hl->nh", fq, z)
    return num / den[..., None]


# ---------------------------------------------------------------- self-checks


def _direct(fq, fk, v, log_s):
    """out_i = sum_j s_j (fq_i . fk_j) v_j / (sum_j s_j fq_i . fk_j), quadratic, per head."""
    kern = torch.einsum("ihl,jhl->hij", fq, fk)
    if log_s is not None:
        kern = kern * torch.exp(log_s)[None, None, :]
    return torch.einsum("hij,jhe->ihe", kern, v), kern.sum(dim=-1).t()


def _orthogonal_features(m, d, gen):
    """A W like the C side's, for the self-check only (QR of Gaussian blocks, chi norms)."""
    blocks = []
    for r0 in range(0, m, d):
        g = torch.randn(d, d, generator=gen, dtype=torch.float64)
        qm, _ = torch.linalg.qr(g)
        blocks.append(qm.t()[: min(d, m - r0)])
    W = torch.cat(blocks, dim=0)
    return W * torch.randn(m, d, generator=gen, dtype=torch.float64).norm(dim=1, keepdim=True)


def _self_check():
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for N, H, d, m in [(1, 1, 4, 8), (7, 2, 3, 5), (33, 2, 16, 40)]:
        for sized in (False, True):
            q, k, v = (torch.randn(N, H, d, generator=gen, dtype=torch.float64) for _ in range(3))
            log_s = torch.log1p(torch.randint(0, 5, (N,), generator=gen).double()) if sized else None
            # linear vs its direct formula
            num, den = _direct(F.elu(q) + 1, F.elu(k) + 1, v, log_s)
            want = num / (den + LINEAR_EPS)[..., None]
            err = (linear_attention(q, k, v, log_s) - want).abs().max().item()
            print("linear    N=%d H=%d d=%d sizes=%s: max abs err %.2e" % (N, H, d, sized, err))
            worst = max(worst, err)
            # performer vs its direct formula
            W = _orthogonal_features(m, d, gen)
            num, den = _direct(performer_features(q, W, True), performer_features(k, W, False),
                               v, log_s)
            err = (performer_attention(q, k, v, W, log_s) - num / den[..., None]).abs().max().item()
            print("performer N=%d H=%d d=%d m=%d sizes=%s: max abs err %.2e" % (N, H, d, m, sized, err))
            worst = max(worst, err)
    if worst > 1e-12:
        print("FAILED: worst %.2e" % worst)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(_self_check())
