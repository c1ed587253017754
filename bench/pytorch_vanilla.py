#!/usr/bin/python3
"""The vanilla model of SPEC §2/§5 in PyTorch, timed the way `maelre-bench profile --train` times
the C model: one training step (forward + cross-entropy + backward + AdamW) on random byte tokens
(vocab 257), batch 8, D=64, H=2, M=128, 4 pre-LN blocks, learned position embeddings with
max_len = N, size-weighted (here: plain) mean pool, LayerNorm, Linear(D, 2).

Differences from the C run, on purpose: PyTorch gets a fixed-length [B, N] batch (all samples
have length N, so packing and padding are the same thing here); attention is written out as
Q K^T -> softmax -> A V (torch 1.13 has no fused CPU attention). Timing: one warm-up step
excluded, then steps repeated until at least --min-time seconds and --min-reps steps on
time.perf_counter (monotonic); the median step time divided by the batch is ms per sample.

Run with Debian's interpreter (python3-torch 1.13): /usr/bin/python3 bench/pytorch_vanilla.py
Output: one CSV header line, then one line per N on stdout.
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim, eps=1e-5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim, eps=1e-5)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        b, n, dim = x.shape
        h = self.heads
        d = dim // h
        qkv = self.qkv(self.ln1(x)).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4)  # 3, B, H, N, d
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(d)), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, dim)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))  # the C model's GELU


class Classifier(nn.Module):
    def __init__(self, vocab, max_len, dim, heads, mlp, blocks, classes):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp) for _ in range(blocks))
        self.ln = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids):
        x = self.tok(ids) + self.pos[: ids.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x.mean(dim=1)))


def time_to(fn, min_time, min_reps):
    fn()  # warm-up, excluded
    times = []
    while sum(times) < min_time or len(times) < min_reps:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times), len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq-len", default="1024,2048,4096")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-reps", type=int, default=3, help="at least this many timed steps (as the C side)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-infer", action="store_true", help="skip the inference timing")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    print("n,batch,threads,params,train_ms_per_sample,train_ms_min,train_ms_max,train_reps,"
          "infer_ms_per_sample,infer_ms_min,infer_ms_max,infer_reps")
    for n in (int(s) for s in a.seq_len.split(",")):
        model = Classifier(257, n, 64, 2, 128, 4, 2)
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

        print(f"pytorch: N={n} training...", file=sys.stderr, flush=True)
        tm, tmin, tmax, tr = time_to(train_step, a.min_time, a.min_reps)
        im = imin = imax = float("nan")
        ir = 0
        if not a.no_infer:
            print(f"pytorch: N={n} inference...", file=sys.stderr, flush=True)
            im, imin, imax, ir = time_to(infer, a.min_time, a.min_reps)
        ms = 1e3 / a.batch
        print(f"{n},{a.batch},{a.threads},{params},{tm*ms:.4f},{tmin*ms:.4f},{tmax*ms:.4f},{tr},"
              f"{im*ms:.4f},{imin*ms:.4f},{imax*ms:.4f},{ir}", flush=True)
        del model, opt


if __name__ == "__main__":
    main()
