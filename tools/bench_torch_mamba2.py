#!/usr/bin/python3
"""PyTorch peer of frugal's Mamba-2 training: the same model, the same algorithm, in float32.

The d_model 256, 4-layer, vocabulary 256 Mamba-2 (d_state 128, heads of 64, one group, conv 4)
trained with AdamW on batch 8 x 256 tokens, its SSD in chunks of 64 as the paper's block
decomposition (einsum products, segment sums masked with -inf before exp), autograd for the
backward. Prints tokens per second of the median step (after one untimed step) per thread count:

    /usr/bin/python3 tools/bench_torch_mamba2.py --threads 1,2 --steps 6 [--d-state 128]
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def segsum(a):
    """(..., Q) -> (..., Q, Q): a_{j+1} + ... + a_i below the diagonal, -inf above."""
    Q = a.shape[-1]
    x = a[..., None].expand(*a.shape, Q)
    x = x.masked_fill(~torch.tril(torch.ones(Q, Q, dtype=torch.bool), -1), 0)
    s = torch.cumsum(x, dim=-2)
    return s.masked_fill(~torch.tril(torch.ones(Q, Q, dtype=torch.bool), 0), -math.inf)


def ssd(x, dt, A, B, C, Q):
    """x (b, L, h, p), dt (b, L, h), A (h), B/C (b, L, h, n) -> y (b, L, h, p); L a multiple of Q."""
    b, L, h, p = x.shape
    xd, a = x * dt[..., None], dt * A
    xd, a, B, C = [t.reshape(b, L // Q, Q, *t.shape[2:]) for t in (xd, a, B, C)]
    a = a.permute(0, 3, 1, 2)                                    # (b, h, c, Q)
    cs = torch.cumsum(a, -1)
    y = torch.einsum('bclhn,bcshn,bhcls,bcshp->bclhp', C, B, torch.exp(segsum(a)), xd)
    states = torch.einsum('bclhn,bhcl,bclhp->bchpn', B, torch.exp(cs[..., -1:] - cs), xd)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], 1)
    states = torch.einsum('bhzc,bchpn->bzhpn', torch.exp(segsum(F.pad(cs[..., -1], (1, 0)))), states)[:, :-1]
    y = y + torch.einsum('bclhn,bchpn,bhcl->bclhp', C, states, torch.exp(cs))
    return y.reshape(b, L, h, p)


class Mixer(nn.Module):
    def __init__(self, D, N, P=64, K=4):
        super().__init__()
        self.ED, self.N, self.P, self.H = 2 * D, N, P, 2 * D // P
        self.CD = self.ED + 2 * N
        self.in_proj = nn.Linear(D, self.ED + self.CD + self.H, bias=False)
        self.conv1d = nn.Conv1d(self.CD, self.CD, K, groups=self.CD, padding=K - 1)
        self.dt_bias = nn.Parameter(torch.rand(self.H) * 0.1)
        self.A_log = nn.Parameter(torch.log(1 + 15 * torch.rand(self.H)))
        self.D = nn.Parameter(torch.ones(self.H))
        self.norm = nn.Parameter(torch.ones(self.ED))
        self.out_proj = nn.Linear(self.ED, D, bias=False)

    def forward(self, u, Q):
        b, L, _ = u.shape
        z, xBC, dt = torch.split(self.in_proj(u), [self.ED, self.CD, self.H], -1)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2))[..., :L].transpose(1, 2))
        x, B, C = torch.split(xBC, [self.ED, self.N, self.N], -1)
        x = x.reshape(b, L, self.H, self.P)
        B, C = B[:, :, None].expand(b, L, self.H, self.N), C[:, :, None].expand(b, L, self.H, self.N)
        y = ssd(x, F.softplus(dt + self.dt_bias), -torch.exp(self.A_log), B, C, Q) + self.D[:, None] * x
        g = y.reshape(b, L, self.ED) * F.silu(z)
        return self.out_proj(g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + 1e-5) * self.norm)


class LM(nn.Module):
    def __init__(self, D=256, layers=4, N=128, V=256):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.norms = nn.ParameterList([nn.Parameter(torch.ones(D)) for _ in range(layers)])
        self.mixers = nn.ModuleList([Mixer(D, N) for _ in range(layers)])
        self.norm_f = nn.Parameter(torch.ones(D))

    def forward(self, ids, Q):
        rms = lambda h, w: h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5) * w
        h = self.emb(ids)
        for w, m in zip(self.norms, self.mixers):
            h = h + m(rms(h, w), Q)
        return rms(h, self.norm_f) @ self.emb.weight.T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', default='1')
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--d-state', type=int, default=128)
    ap.add_argument('--chunk', type=int, default=64)
    a = ap.parse_args()
    torch.manual_seed(0)
    for t in [int(v) for v in a.threads.split(',')]:
        torch.set_num_threads(t)
        model = LM(N=a.d_state)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        ids = torch.randint(0, 256, (8, 257))
        times = []
        for s in range(a.steps + 1):
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(ids[:, :-1], a.chunk).reshape(-1, 256), ids[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if s > 0:
                times.append(time.perf_counter() - t0)
        n = sum(p.numel() for p in model.parameters())
        med = sorted(times)[len(times) // 2]
        print(f'torch {torch.__version__} Mamba-2 train: {n} parameters, threads {t}: {8 * 256 / med:.0f} tok/s '
              f'(median of {len(times)} steps, {min(times):.2f}-{max(times):.2f} s)', flush=True)
    sys.stdout.flush()


if __name__ == '__main__':
    main()
