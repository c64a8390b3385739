"""PyTorch peer of `frugal bench`: a mamba.py-style Mamba-1 (alxndrTL/mamba.py) on the same shapes.

- decode:      batch-1 recurrent `step` of the mamba-130m-shaped model (d_model 768, 24 layers,
               d_inner 1536, d_state 16, d_conv 4, dt_rank 48, vocab 50280, tied head), float32,
               random weights, under torch.inference_mode();
- prefill-128: the parallel forward over a 128-token prompt (parallel scan), inference mode, with
               the head applied at the last position only, as frugal and llama.cpp do;
- train:       AdamW steps of the d_model 256, 4-layer, vocab 256 model on batch 8 × seq 256,
               with mamba.py's parallel scan (Blelloch, in place, custom backward).

Each at every --threads count (torch.set_num_threads). Prints one JSON document to stdout:
  {"torch": version, "blas": name, "results": [{"measure", "threads", "tok_s", "tok_s_min", "tok_s_max"}, ...],
   "skipped": [...]}
where tok_s is the median timed call (min and max beside it); training results also carry the
model's parameters and the scan's FLOPs per token, for its MFU. Progress goes to stderr.
This is frugal's own peer script, not a published implementation: `frugal bench` runs it one
measure at a time, interleaved with its own timings (src/bench/speed/peers.ts); by hand:
  /usr/bin/python3 tools/bench_torch.py --mode quick --threads 1,2
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- parallel scan (mamba.py's pscan)
# H_t = A_t * H_{t-1} + X_t over t, in place on X (A is overwritten too), A, X: (B, D, L, N) with L
# a power of two: an up-sweep of log2(L) levels combining pairs, then a down-sweep filling the rest.

def _scan(A, X):
    Bs, Ds, L, _ = A.shape
    steps = int(math.log2(L))
    Aa, Xa = A, X
    for _ in range(steps):
        T = Xa.size(2)
        Aa = Aa.view(Bs, Ds, T // 2, 2, -1)
        Xa = Xa.view(Bs, Ds, T // 2, 2, -1)
        Xa[:, :, :, 1].add_(Aa[:, :, :, 1].mul(Xa[:, :, :, 0]))
        Aa[:, :, :, 1].mul_(Aa[:, :, :, 0])
        Aa, Xa = Aa[:, :, :, 1], Xa[:, :, :, 1]
    for k in range(steps - 2, -1, -1):
        s = 2 ** k
        Aa = A[:, :, s - 1:L:s]
        Xa = X[:, :, s - 1:L:s]
        T = Xa.size(2)
        Aa = Aa.view(Bs, Ds, T // 2, 2, -1)
        Xa = Xa.view(Bs, Ds, T // 2, 2, -1)
        Xa[:, :, 1:, 0].add_(Aa[:, :, 1:, 0].mul(Xa[:, :, :-1, 1]))
        Aa[:, :, 1:, 0].mul_(Aa[:, :, :-1, 1])


def _scan_rev(A, X):
    """The same scan from the end: X_t <- X_t + A_t * X_{t+1}."""
    Bs, Ds, L, _ = A.shape
    steps = int(math.log2(L))
    Aa, Xa = A, X
    for _ in range(steps):
        T = Xa.size(2)
        Aa = Aa.view(Bs, Ds, T // 2, 2, -1)
        Xa = Xa.view(Bs, Ds, T // 2, 2, -1)
        Xa[:, :, :, 0].add_(Aa[:, :, :, 0].mul(Xa[:, :, :, 1]))
        Aa[:, :, :, 0].mul_(Aa[:, :, :, 1])
        Aa, Xa = Aa[:, :, :, 0], Xa[:, :, :, 0]
    for k in range(steps - 2, -1, -1):
        s = 2 ** k
        Aa = A[:, :, 0:L:s]
        Xa = X[:, :, 0:L:s]
        T = Xa.size(2)
        Aa = Aa.view(Bs, Ds, T // 2, 2, -1)
        Xa = Xa.view(Bs, Ds, T // 2, 2, -1)
        Xa[:, :, :-1, 1].add_(Aa[:, :, :-1, 1].mul(Xa[:, :, 1:, 0]))
        Aa[:, :, :-1, 1].mul_(Aa[:, :, 1:, 0])


def _pad_pow2(t):
    L = t.size(1)
    P = 2 ** math.ceil(math.log2(max(L, 1)))
    return F.pad(t, (0, 0, 0, 0, 0, P - L)) if P != L else t.clone()


class PScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A_in, X_in):  # (B, L, D, N) each -> H (B, L, D, N)
        L = X_in.size(1)
        A = _pad_pow2(A_in).transpose(2, 1)  # (B, D, P, N)
        X = _pad_pow2(X_in).transpose(2, 1)
        _scan(A, X)
        ctx.save_for_backward(A_in, X)
        return X.transpose(2, 1)[:, :L]

    @staticmethod
    def backward(ctx, grad_in):
        A_in, X = ctx.saved_tensors  # X holds H, (B, D, P, N)
        L = grad_in.size(1)
        G = _pad_pow2(grad_in).transpose(2, 1)
        A = _pad_pow2(A_in).transpose(2, 1)
        A = F.pad(A[:, :, 1:], (0, 0, 0, 1))  # A_{t+1}
        _scan_rev(A, G)  # dL/dX_t
        Q = torch.zeros_like(X)
        Q[:, :, 1:].add_(X[:, :, :-1] * G[:, :, 1:])  # dL/dA_t = H_{t-1} * dL/dX_t
        return Q.transpose(2, 1)[:, :L], G.transpose(2, 1)[:, :L]


pscan = PScan.apply


# ---------------------------------------------------------------- the model (mamba.py's layout)

class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class MambaBlock(nn.Module):
    def __init__(self, d_model, d_inner, d_state, d_conv, dt_rank):
        super().__init__()
        self.d_inner, self.d_state, self.d_conv, self.dt_rank = d_inner, d_state, d_conv, dt_rank
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))  # (ED, N)
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, x):  # (B, L, D)
        L = x.size(1)
        x, z = self.in_proj(x).chunk(2, dim=-1)  # (B, L, ED) each
        x = F.silu(self.conv1d(x.transpose(1, 2))[:, :, :L].transpose(1, 2))
        y = self.ssm(x)
        return self.out_proj(y * F.silu(z))  # (B, L, D)

    def ssm(self, x):
        A = -torch.exp(self.A_log)  # (ED, N)
        delta, Bm, Cm = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(delta))  # (B, L, ED)
        deltaA = torch.exp(delta.unsqueeze(-1) * A)  # (B, L, ED, N)
        BX = delta.unsqueeze(-1) * Bm.unsqueeze(2) * x.unsqueeze(-1)  # (B, L, ED, N)
        hs = pscan(deltaA, BX)  # (B, L, ED, N)
        y = (hs @ Cm.unsqueeze(-1)).squeeze(3)  # (B, L, ED)
        return y + self.D * x

    def step(self, x, cache):  # x (B, D); cache: h (B, ED, N), inputs (B, ED, K-1)
        h, inputs = cache
        x, z = self.in_proj(x).chunk(2, dim=1)  # (B, ED)
        xc = x.unsqueeze(2)
        x = F.silu(self.conv1d(torch.cat([inputs, xc], dim=2))[:, :, self.d_conv - 1])  # (B, ED)
        A = -torch.exp(self.A_log)
        delta, Bm, Cm = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(delta))
        deltaA = torch.exp(delta.unsqueeze(-1) * A)  # (B, ED, N)
        h = deltaA * h + delta.unsqueeze(-1) * Bm.unsqueeze(1) * x.unsqueeze(-1)
        y = (h @ Cm.unsqueeze(-1)).squeeze(2) + self.D * x
        out = self.out_proj(y * F.silu(z))
        return out, (h, torch.cat([inputs[:, :, 1:], xc], dim=2))


class MambaLM(nn.Module):
    def __init__(self, d_model, n_layer, vocab, d_state=16, d_conv=4, expand=2, dt_rank=None):
        super().__init__()
        d_inner = expand * d_model
        dt_rank = dt_rank or math.ceil(d_model / 16)
        self.embedding = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList([MambaBlock(d_model, d_inner, d_state, d_conv, dt_rank) for _ in range(n_layer)])
        self.norms = nn.ModuleList([RMSNorm(d_model) for _ in range(n_layer)])
        self.norm_f = RMSNorm(d_model)

    def forward(self, ids, last_only=False):  # (B, L) -> logits (B, L, V), or (B, 1, V) at the last position; tied head
        x = self.embedding(ids)
        for norm, layer in zip(self.norms, self.layers):
            x = x + layer(norm(x))
        if last_only:  # a prompt's prefill needs the next token's logits only
            x = x[:, -1:]
        return F.linear(self.norm_f(x), self.embedding.weight)

    def empty_caches(self, B):
        return [(torch.zeros(B, l.d_inner, l.d_state), torch.zeros(B, l.d_inner, l.d_conv - 1)) for l in self.layers]

    def step(self, ids, caches):  # ids (B,) -> logits (B, V)
        x = self.embedding(ids)
        for i, (norm, layer) in enumerate(zip(self.norms, self.layers)):
            y, caches[i] = layer.step(norm(x), caches[i])
            x = x + y
        return F.linear(self.norm_f(x), self.embedding.weight)


# ---------------------------------------------------------------- timings

def timed(fn, min_calls, min_seconds, warm):
    """Seconds of every timed call, after `warm` untimed ones."""
    for _ in range(warm):
        fn()
    samples, t0 = [], time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - t0 < min_seconds:
        s = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - s)
    return samples


def rate(work, samples, **extra):
    """Work per second of each call: the median, with min and max."""
    r = sorted(work / s for s in samples)
    m = len(r) // 2
    med = r[m] if len(r) % 2 else (r[m - 1] + r[m]) / 2
    return dict(tok_s=med, tok_s_min=r[0], tok_s_max=r[-1], **extra)


PLANS = {
    'full': dict(decode=dict(d_model=768, n_layer=24, vocab=50280, dt_rank=48), train=dict(d_model=256, n_layer=4, vocab=256),
                 batch=8, seq=256, tokens=32, steps=3, seconds=3.0, prompt=128),
    'quick': dict(decode=dict(d_model=768, n_layer=24, vocab=50280, dt_rank=48), train=dict(d_model=256, n_layer=4, vocab=256),
                  batch=8, seq=256, tokens=8, steps=1, seconds=0.5, prompt=128),
    'tiny': dict(decode=dict(d_model=64, n_layer=2, vocab=512), train=dict(d_model=32, n_layer=2, vocab=256, d_state=8),
                 batch=2, seq=16, tokens=2, steps=1, seconds=0.02, prompt=8),
}


def blas_name():
    """Which BLAS torch's matmuls run on (Debian's python3-torch uses the system libblas.so.3:
    the reference BLAS is ~25× slower than OpenBLAS; `apt-get install libopenblas0-openmp`)."""
    torch.randn(64, 64) @ torch.randn(64, 64)
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1] for line in f if 'blas' in line or 'mkl' in line}
    except OSError:
        return 'unknown'
    for key in ('openblas-openmp', 'openblas-pthread', 'openblas', 'mkl', 'blis', 'atlas'):
        if any(key in p for p in libs):
            return key
    return 'reference (netlib)' if any('libblas' in p for p in libs) else 'built-in'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mode', choices=sorted(PLANS), default='full')
    ap.add_argument('--threads', default='1', help='comma-separated thread counts')
    ap.add_argument('--what', default='decode,prefill,train')
    ap.add_argument('--budget', type=float, default=float('inf'), help='seconds: measurements that would start later are skipped')
    args = ap.parse_args()
    t_start = time.perf_counter()
    skipped = []

    def fits(name):
        if time.perf_counter() - t_start < args.budget:
            return True
        skipped.append(name)
        log(f'{name}: skipped, past the {args.budget:.0f} s budget')
        return False
    plan = PLANS[args.mode]
    threads = [int(t) for t in args.threads.split(',')]
    what = set(args.what.split(','))
    torch.manual_seed(0)
    results = []
    if 'train' in what:
        model = MambaLM(**plan['train']).float()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        B, L, V = plan['batch'], plan['seq'], plan['train']['vocab']
        x, y = torch.randint(0, V, (B, L)), torch.randint(0, V, (B, L))

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x).reshape(B * L, V), y.reshape(B * L))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        for T in threads:
            if not fits(f'train {T} threads'):
                continue
            torch.set_num_threads(T)
            s = timed(train_step, plan['steps'], plan['seconds'], 2)  # the first steps still allocate
            layer = model.layers[0]
            scan = 21 * layer.d_inner * layer.d_state * len(model.layers)  # as frugal counts it (src/bench/formulas.ts)
            r = rate(B * L, s, measure='train', threads=T, parameters=sum(p.numel() for p in model.parameters()), scan_flops_per_token=scan)
            results.append(r)
            log(f'train {T} threads: {r["tok_s"]:.0f} tok/s')
    if what & {'decode', 'prefill'}:
        model = MambaLM(**plan['decode']).float().eval()
        V = plan['decode']['vocab']
        for T in threads:
            torch.set_num_threads(T)
            with torch.inference_mode():
                if 'decode' in what and fits(f'decode {T} threads'):
                    caches, ids = model.empty_caches(1), torch.tensor([1])

                    def step():
                        model.step(ids, caches)
                        ids[0] = (ids[0] * 1103515245 + 12345) % V
                    r = rate(1, timed(step, plan['tokens'], plan['seconds'], 3), measure='decode', threads=T)
                    results.append(r)
                    log(f'decode f32 {T} threads: {r["tok_s"]:.2f} tok/s')
                P = plan['prompt']
                if 'prefill' in what and fits(f'prefill-{P} {T} threads'):
                    prompt = torch.randint(0, V, (1, P))
                    r = rate(P, timed(lambda: model(prompt, last_only=True), 1, plan['seconds'], 1), measure=f'prefill-{P}', threads=T)
                    results.append(r)
                    log(f'prefill-{P} f32 {T} threads: {r["tok_s"]:.1f} tok/s')
        del model
    json.dump(dict(torch=torch.__version__, blas=blas_name(), results=results, skipped=skipped), sys.stdout)
    print()


if __name__ == '__main__':
    main()
