#!/usr/bin/python3
"""MAELRE of SPEC §4/§5 in PyTorch, timed the way `maelre-bench profile --train` times the C
model: one training step (forward + cross-entropy + backward + AdamW + clipping) and one
inference pass on random byte tokens (vocab 257), batch 8, D=64, H=2, M=128, 4 pre-LN blocks,
one block per stage with keep 1/4, efficient attention while N > D, softmax with proportional
attention (+ log s) after; merging at each stage's last block: local bipartite matching
(window 8) while N > D, global after; size-weighted mean pool, LayerNorm, Linear(D, 2).

A fair PyTorch side: the local matching computes only the similarities inside the window
(O(N w d), gathered with unfold), never an N x N matrix masked down; the plan is built without
autograd (a constant, as in the C model) and batched over samples (all samples have length N,
so every sample merges to the same length); merging is index_add of size-weighted rows.
Tie-breaking and the order of survivors follow SPEC §4 (survivors keep their relative order).

Run with Debian's interpreter (python3-torch 1.13): /usr/bin/python3 bench/pytorch_maelre.py
Output: the CSV of bench/pytorch_vanilla.py (one header line, one line per N) on stdout.
"""
import argparse
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_vanilla import time_to

WINDOW = 8


def efficient_attention(q, k, v, log_s):
    """rho_q(Q) (rho_k(K + log s)^T V) per head; q, k, v (B, H, N, d), log_s (B, N)."""
    pk = torch.softmax(k + log_s[:, None, :, None], dim=2)     # over tokens
    pq = torch.softmax(q, dim=3)                                # over features
    return pq @ (pk.transpose(-2, -1) @ v)


def softmax_attention(q, k, v, log_s):
    s = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1])) + log_s[:, None, None, :]
    return torch.softmax(s, dim=-1) @ v


@torch.no_grad()
def best_partners(m, local):
    """For every A (even) token its most similar B (odd) token: m (B, n, d) normalised metric.
    Local: only B tokens b with (p - w) // 2 <= b <= (p + w - 1) // 2 for p = 2a (SPEC §4's
    window, as core/merge.c), computed on the window only."""
    A, Bm = m[:, 0::2], m[:, 1::2]
    nA, nB = A.shape[1], Bm.shape[1]
    if not local:
        sim = A @ Bm.transpose(1, 2)
        best, idx = sim.max(dim=2)
        return idx, best
    lo_off, hi_off = -(WINDOW // 2), (WINDOW - 1) // 2          # b - a for a interior token
    width = hi_off - lo_off + 1
    pad = F.pad(Bm, (0, 0, -lo_off, hi_off + max(0, nA - nB)))  # (B, nB + width - 1 + extra, d)
    win = pad.unfold(1, width, 1)[:, :nA]                       # (B, nA, d, width)
    sim = torch.einsum("bad,badw->baw", A, win)
    b_idx = torch.arange(nA)[:, None] + torch.arange(lo_off, hi_off + 1)[None, :]
    valid = (b_idx >= 0) & (b_idx < nB)
    sim = sim.masked_fill(~valid[None], float("-inf"))
    best, j = sim.max(dim=2)
    return (torch.arange(nA)[None, :] + lo_off + j).clamp(0, nB - 1), best


@torch.no_grad()
def merge_plan(k, s, heads, n_target, local_until):
    """dst (B, n) for keys k (B, n, D) and sizes s (B, n): rounds of bipartite matching, local
    while the current length is above local_until, global after (MAELRE: local_until = D)."""
    Bsz, n, D = k.shape
    d = D // heads
    m = F.normalize(k.view(Bsz, n, heads, d).mean(2), dim=-1)
    dst = torch.arange(n).expand(Bsz, n).clone()
    sz = s.clone()
    cur = n
    while cur > n_target and cur // 2 > 0:
        nA = (cur + 1) // 2
        r = min(cur - n_target, nA)
        best_b, best_s = best_partners(m, cur > local_until)
        order = torch.sort(best_s, dim=1, descending=True, stable=True).indices
        merged = torch.zeros(Bsz, cur, dtype=torch.bool)
        merged.scatter_(1, 2 * order[:, :r], True)
        new_idx = torch.cumsum(~merged, dim=1) - 1                # survivors keep their order
        a_pos = 2 * torch.arange(nA)
        partner = new_idx.gather(1, 2 * best_b + 1)              # (B, nA)
        out = torch.where(merged, torch.zeros_like(new_idx), new_idx)
        out[:, a_pos] = torch.where(merged[:, a_pos], partner, out[:, a_pos])
        n_new = cur - r
        sz_next = torch.zeros(Bsz, n_new).scatter_add_(1, out, sz)
        m_next = torch.zeros(Bsz, n_new, m.shape[-1]).scatter_add_(
            1, out[..., None].expand(-1, -1, m.shape[-1]), sz[..., None] * m)
        m, sz, cur = F.normalize(m_next, dim=-1), sz_next, n_new
        dst = out.gather(1, dst)
    return dst, cur


def merge_tokens(x, s, dst, n_out):
    """Size-weighted means of the groups: differentiable in x, the plan a constant."""
    Bsz, n, D = x.shape
    s_out = torch.zeros(Bsz, n_out).scatter_add_(1, dst, s)
    num = torch.zeros(Bsz, n_out, D).scatter_add(1, dst[..., None].expand(-1, -1, D), s[..., None] * x)
    return num / s_out[..., None], s_out


class Block(nn.Module):
    def __init__(self, dim, heads, mlp, keep):
        super().__init__()
        self.heads, self.keep = heads, keep
        self.ln1 = nn.LayerNorm(dim, eps=1e-5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim, eps=1e-5)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x, s):
        b, n, dim = x.shape
        h, d = self.heads, dim // self.heads
        qkv = self.qkv(self.ln1(x))
        q, k, v = qkv.view(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
        attn = efficient_attention if n > dim else softmax_attention
        y = attn(q, k, v, torch.log(s)).transpose(1, 2).reshape(b, n, dim)
        x = x + self.proj(y)
        target = max(1, int(math.floor(self.keep * n + 0.5)))
        if target < n:
            dst, n_out = merge_plan(qkv[..., dim:2 * dim].detach(), s, h, target, local_until=dim)
            x, s = merge_tokens(x, s, dst, n_out)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))
        return x, s


class Maelre(nn.Module):
    def __init__(self, vocab, max_len, dim=64, heads=2, mlp=128, blocks=4, classes=2, keep=0.25):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp, keep) for _ in range(blocks))
        self.ln = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids):
        x = self.tok(ids) + self.pos[: ids.shape[1]]
        s = torch.ones(ids.shape)
        for blk in self.blocks:
            x, s = blk(x, s)
        pooled = (s[..., None] * x).sum(1) / s.sum(1, keepdim=True)
        return self.head(self.ln(pooled))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq-len", default="1024,4096")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    print("n,batch,threads,params,train_ms_per_sample,train_ms_min,train_ms_max,train_reps,"
          "infer_ms_per_sample,infer_ms_min,infer_ms_max,infer_reps")
    for n in (int(x) for x in a.seq_len.split(",")):
        model = Maelre(257, n)
        decay = [p for name, p in model.named_parameters()
                 if name.endswith("weight") and ".ln" not in name and not name.startswith(("ln", "tok"))]
        no_decay = [p for name, p in model.named_parameters() if all(p is not q for q in decay)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=5e-4)
        ids = torch.randint(0, 257, (a.batch, n))
        labels = torch.randint(0, 2, (a.batch,))
        params = sum(p.numel() for p in model.parameters())

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(ids), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        def infer():
            with torch.no_grad():
                model(ids)

        print(f"pytorch maelre: N={n} training...", file=sys.stderr, flush=True)
        tm, tmin, tmax, tr = time_to(train_step, a.min_time, a.min_reps)
        print(f"pytorch maelre: N={n} inference...", file=sys.stderr, flush=True)
        im, imin, imax, ir = time_to(infer, a.min_time, a.min_reps)
        ms = 1e3 / a.batch
        print(f"{n},{a.batch},{a.threads},{params},{tm*ms:.4f},{tmin*ms:.4f},{tmax*ms:.4f},{tr},"
              f"{im*ms:.4f},{imin*ms:.4f},{imax*ms:.4f},{ir}", flush=True)


if __name__ == "__main__":
    main()
