#!/usr/bin/python3
"""PyTorch mirror of maelre-bench's Nystromformer attention (SPEC §9.2, core/attn_nystrom.c).

  nystrom_attention(q, k, v, heads, m, conv=None, log_s=None)

One sample: q, k, v are (N, D) tensors, head h owns columns [h*d, (h+1)*d); conv is (heads, kc)
or None. Autograd through everything (landmark means, the three softmaxes, the pseudo-inverse
iteration with the scale of Z_0, the convolution) gives the gradients the C backward computes.
Segments: i covers rows [floor(i N/m), floor((i+1) N/m)) (the reference Nystromformer pads N to
a multiple of m instead; SPEC fixes this form). N <= m: exact softmax attention.
Run: /usr/bin/python3 tests/reference/methods_ref_nystrom.py   (a self-check)
"""
import math

import torch

ITERS = 6


def _pinv(A):
    Z = A.t() / (A.sum(dim=0).max() * A.sum(dim=1).max())
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    for _ in range(ITERS):
        P = A @ Z
        Z = 0.25 * Z @ (13 * eye - P @ (15 * eye - P @ (7 * eye - P)))
    return Z


def _conv(v, w):
    """Depthwise 1-D convolution along the tokens, zero padding kc // 2: v (N, d), w (kc,)."""
    kc = w.shape[0]
    x = v.t().unsqueeze(1)                                           # (d, 1, N)
    y = torch.nn.functional.conv1d(x, w.view(1, 1, kc), padding=kc // 2)
    return y[:, 0, : v.shape[0]].t()


def nystrom_attention(q, k, v, heads, m, conv=None, log_s=None):
    N, D = q.shape
    d = D // heads
    sc = d ** -0.25
    outs = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        qs, ks, vh = q[:, sl] * sc, k[:, sl] * sc, v[:, sl]
        if N <= m:
            s = qs @ ks.t()
            if log_s is not None:
                s = s + log_s[None, :]
            o = torch.softmax(s, dim=1) @ vh
        else:
            bounds = [i * N // m for i in range(m + 1)]
            Ql = torch.stack([qs[bounds[i]:bounds[i + 1]].mean(0) for i in range(m)])
            Kl = torch.stack([ks[bounds[i]:bounds[i + 1]].mean(0) for i in range(m)])
            F = torch.softmax(qs @ Kl.t(), dim=1)
            A = torch.softmax(Ql @ Kl.t(), dim=1)
            b = Ql @ ks.t()
            if log_s is not None:
                b = b + log_s[None, :]
            B = torch.softmax(b, dim=1)
            o = F @ (_pinv(A) @ (B @ vh))
        if conv is not None and conv.shape[1] > 0:
            o = o + _conv(vh, conv[h])
        outs.append(o)
    return torch.cat(outs, dim=1)


def _self_check():
    torch.manual_seed(0)
    N, D, H = 9, 8, 2
    q, k, v = (torch.randn(N, D, dtype=torch.float64) for _ in range(3))
    # N <= m: exact softmax
    ref = torch.cat([torch.softmax(q[:, h * 4:(h + 1) * 4] @ k[:, h * 4:(h + 1) * 4].t() / 2, 1)
                     @ v[:, h * 4:(h + 1) * 4] for h in range(H)], 1)
    assert torch.allclose(nystrom_attention(q, k, v, H, 16), ref)
    # the iteration approaches the pseudo-inverse of a well-conditioned softmax matrix
    A = torch.softmax(4 * torch.eye(8, dtype=torch.float64) + 0.5 * torch.randn(8, 8, dtype=torch.float64), 1)
    err = (_pinv(A) - torch.linalg.pinv(A)).abs().max().item()
    print(f"pinv iteration vs torch.linalg.pinv: {err:.2e}")
    assert err < 1e-6
    print("ok")


if __name__ == "__main__":
    _self_check()
