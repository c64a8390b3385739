#!/usr/bin/python3
"""Generate tiny Mamba-1 checkpoints and golden outputs under test/fixtures/.

Deterministic (fixed seeds); run from anywhere:

    /usr/bin/python3 tools/make_fixtures.py

For every fixture directory this writes
    config.json          transformers-style MambaConfig
    model.safetensors    float32 weights, HF parameter names
    golden.safetensors   reference outputs (F32), computed in float64 from the
                         float32-rounded weights re-read from model.safetensors

Before writing anything the script asserts that the parallel forward and the
recurrent step agree, and that autograd gradients match finite differences.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_reference import (  # noqa: E402
    MambaConfig,
    MambaLM,
    cross_entropy_mean,
    inverse_softplus,
    load_safetensors,
    save_safetensors,
    softplus,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures")

BATCH, SEQ = 2, 13  # default shape of the golden batch; a spec may set its own

COMMON_CONFIG = {
    "model_type": "mamba",
    "architectures": ["MambaForCausalLM"],
    "initializer_range": 0.1,
    "time_step_scale": 1.0,
    "time_step_min": 0.001,
    "time_step_max": 0.1,
    "time_step_init_scheme": "random",
    "time_step_floor": 0.0001,
    "rescale_prenorm_residual": False,
    "residual_in_fp32": True,
    "use_cache": True,
    "pad_token_id": 0,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "hidden_act": "silu",
    "torch_dtype": "float32",
}

FIXTURE_SPECS = {
    "mamba-tiny-a": dict(
        seed=1234,
        config={
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "state_size": 8,
            "conv_kernel": 4,
            "expand": 2,
            # intermediate_size deliberately absent: ED = expand * D = 32
            "time_step_rank": "auto",  # ceil(16 / 16) = 1
            "vocab_size": 37,
            "layer_norm_epsilon": 1e-5,
            "use_bias": False,
            "use_conv_bias": True,
            "tie_word_embeddings": True,
        },
    ),
    # L = 48 > 2 x 16: the scan's checkpointed backward (chunks of 16 steps, src/ops/ops.ts
    # SCAN_CHUNK) recomputes states across three chunks, so its gradients are checked against
    # PyTorch's autograd through chunk boundaries, not only against frugal's own twin
    "mamba-tiny-c": dict(
        seed=9012,
        batch=2,
        seq=48,
        config={
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "state_size": 6,
            "conv_kernel": 4,
            "expand": 2,
            "time_step_rank": 2,
            "vocab_size": 23,
            "layer_norm_epsilon": 1e-5,
            "use_bias": False,
            "use_conv_bias": True,
            "tie_word_embeddings": True,
        },
    ),
    "mamba-tiny-b": dict(
        seed=5678,
        config={
            "hidden_size": 12,
            "num_hidden_layers": 2,
            "state_size": 5,
            "conv_kernel": 3,
            "expand": 2,
            "intermediate_size": 24,
            "time_step_rank": 3,
            "vocab_size": 29,
            "layer_norm_epsilon": 1e-3,
            "use_bias": True,
            "use_conv_bias": True,
            "tie_word_embeddings": False,
        },
    ),
}


# ---------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------


def init_params(cfg, gen):
    """Random float64 parameters; every tensor gets noise so that it matters."""
    D, N, K = cfg.hidden_size, cfg.state_size, cfg.conv_kernel
    ED, R, V = cfg.intermediate_size, cfg.time_step_rank, cfg.vocab_size
    raw = cfg.raw

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64)

    params = {}
    for name, shape in cfg.param_shapes().items():
        short = name.split(".")[-2] + "." + name.split(".")[-1]
        if name == "backbone.embeddings.weight" or name == "lm_head.weight":
            t = 0.5 * randn(*shape)
        elif short in ("norm.weight", "norm_f.weight"):
            t = 1.0 + 0.1 * randn(*shape)
        elif short == "in_proj.weight":
            t = randn(*shape) / math.sqrt(D)
        elif short == "conv1d.weight":
            t = randn(*shape) / math.sqrt(K)
        elif short == "x_proj.weight":
            t = randn(*shape) / math.sqrt(ED)
        elif short == "dt_proj.weight":
            std = raw["time_step_scale"] / math.sqrt(R)
            t = (2 * rand(*shape) - 1) * std
        elif short == "dt_proj.bias":
            lo, hi = math.log(raw["time_step_min"]), math.log(raw["time_step_max"])
            dt = torch.exp(lo + (hi - lo) * rand(*shape)).clamp(min=raw["time_step_floor"])
            t = inverse_softplus(dt) + 0.1 * randn(*shape)
        elif short == "mixer.A_log":
            a = torch.arange(1, N + 1, dtype=torch.float64).expand(ED, N)
            t = torch.log(a) + 0.1 * randn(*shape)
        elif short == "mixer.D":
            t = 1.0 + 0.1 * randn(*shape)
        elif short == "out_proj.weight":
            t = randn(*shape) / math.sqrt(ED)
        elif short.endswith(".bias"):  # in_proj / conv1d / out_proj biases
            t = 0.1 * randn(*shape)
        else:
            raise AssertionError(f"no init rule for {name}")
        params[name] = t.reshape(shape)
    return params


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------


def check_safetensors_reader(tmpdir):
    """Hand-assemble a file with F16/BF16/F64/F32 tensors and read it back."""
    vals = np.array([1.0, -2.5, 0.333251953125, 65504.0], dtype=np.float64)
    f16 = vals.astype("<f2").tobytes()
    f32 = vals.astype("<f4")
    bf16 = (f32.view("<u4") >> 16).astype("<u2").tobytes()  # truncation
    f64 = vals.astype("<f8").tobytes()
    blobs = [("a16", "F16", f16), ("b16", "BF16", bf16), ("c64", "F64", f64),
             ("d32", "F32", f32.tobytes())]
    header, off, data = {"__metadata__": {"format": "pt"}}, 0, b""
    for name, dt, raw in blobs:
        header[name] = {"dtype": dt, "shape": [2, 2], "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    hj = json.dumps(header).encode()
    path = os.path.join(tmpdir, "_selftest.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + data)
    t, meta = load_safetensors(path)
    os.remove(path)
    assert meta == {"format": "pt"}
    exp = torch.tensor(vals).reshape(2, 2)
    assert torch.equal(t["a16"].double(), exp)
    assert torch.equal(t["c64"], exp)
    assert torch.equal(t["d32"].double(), exp.float().double())
    bf_exp = torch.from_numpy((f32.view("<u4") & 0xFFFF0000).view("<f4").astype(np.float64)).reshape(2, 2)
    assert torch.equal(t["b16"].double(), bf_exp)
    assert t["b16"][0, 0].item() == 1.0 and t["b16"][0, 1].item() == -2.5


def closed_form_scan(delta, A, Bm, Cm, x, Dp):
    """y_t = sum_{s<=t} C_t . (exp(A * sum_{r=s+1..t} delta_r) * delta_s B_s x_s) + D x_t.

    A non-recurrent O(L^2) evaluation used to cross-check the sequential scan.
    delta, x: (B, L, ED); Bm, Cm: (B, L, N); A: (ED, N); Dp: (ED,).
    """
    Bsz, L, ED = x.shape
    cum = torch.cumsum(delta, dim=1)  # (B, L, ED)
    y = torch.zeros_like(x)
    for t in range(L):
        for s in range(t + 1):
            decay = torch.exp((cum[:, t] - cum[:, s])[:, :, None] * A)  # (B, ED, N)
            contrib = decay * (delta[:, s] * x[:, s])[:, :, None] * Bm[:, s, None, :]
            y[:, t] += (contrib * Cm[:, t, None, :]).sum(-1)
    return y + Dp * x


def check_scan_closed_form(model, ids):
    """Recompute layer 0's SSM output in closed form and compare."""
    cfg = model.cfg
    P = model.params
    pre = "backbone.layers.0.mixer."
    ED, L = cfg.intermediate_size, ids.shape[1]
    from mamba_reference import rmsnorm, linear, silu  # local import for clarity
    import torch.nn.functional as F

    u = rmsnorm(P["backbone.embeddings.weight"][ids], P["backbone.layers.0.norm.weight"], cfg.layer_norm_epsilon)
    xz = linear(u, P[pre + "in_proj.weight"], P.get(pre + "in_proj.bias"))
    x_in, z = xz[..., :ED], xz[..., ED:]
    # conv written as an explicit sum over taps: out_t = b + sum_k w[k] * x_{t-(K-1)+k}
    K = cfg.conv_kernel
    w = P[pre + "conv1d.weight"][:, 0, :]
    xc = torch.zeros_like(x_in)
    for t in range(L):
        for k in range(K):
            src = t - (K - 1) + k
            if src >= 0:
                xc[:, t] += w[:, k] * x_in[:, src]
    if P.get(pre + "conv1d.bias") is not None:
        xc = xc + P[pre + "conv1d.bias"]
    x = silu(xc)
    delta, Bm, Cm = model._ssm_inputs(0, x)
    y = closed_form_scan(delta, -torch.exp(P[pre + "A_log"]), Bm, Cm, x, P[pre + "D"])
    out_cf = linear(y * silu(z), P[pre + "out_proj.weight"], P.get(pre + "out_proj.bias"))
    out_ref, _, _ = model.mixer(0, u)
    err = (out_cf - out_ref).abs().max().item()
    assert err < 1e-12, f"closed-form scan disagrees with sequential scan: {err}"
    return err


def loss_fn(model, ids, targets):
    return cross_entropy_mean(model(ids), targets)


def check_finite_differences(model, ids, targets, grads, gen):
    """Central differences on a few entries of several parameters."""
    names = [n for n in model.params if any(k in n for k in (
        "layers.0.mixer.A_log", "layers.1.mixer.dt_proj.bias", "layers.0.mixer.conv1d.weight",
        "layers.1.mixer.x_proj.weight", "backbone.embeddings.weight", "lm_head.weight",
        "layers.0.mixer.D", "norm_f.weight", "layers.1.mixer.in_proj.bias",
        "layers.0.mixer.dt_proj.weight"))]
    h = 1e-6
    worst = 0.0
    with torch.no_grad():
        for name in names:
            p = model.params[name]
            flat = p.view(-1)
            # the largest-gradient entry plus two random ones
            g = grads[name].reshape(-1)
            idxs = [int(g.abs().argmax())] + torch.randint(0, flat.numel(), (2,), generator=gen).tolist()
            for j in idxs:
                orig = flat[j].item()
                flat[j] = orig + h
                lp = loss_fn(model, ids, targets).item()
                flat[j] = orig - h
                lm = loss_fn(model, ids, targets).item()
                flat[j] = orig
                fd = (lp - lm) / (2 * h)
                an = g[j].item()
                err = abs(fd - an)
                assert err <= 1e-7 + 1e-5 * abs(an), f"FD mismatch {name}[{j}]: fd={fd} autograd={an}"
                worst = max(worst, err)
    return worst, len(names)


def check_gradcheck(model, ids, targets, name):
    """torch.autograd.gradcheck of the loss w.r.t. one whole parameter tensor."""
    base = model.params[name]

    def f(p):
        saved = model.params[name]
        model.params[name] = p
        try:
            return loss_fn(model, ids, targets)
        finally:
            model.params[name] = saved

    inp = base.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (inp,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def check_recurrence(model, ids):
    """Parallel forward vs successive steps, and a prefill continued by steps: the reference must
    agree with itself (< 1e-10). Returns the logits of both, the step states and the three gaps."""
    with torch.no_grad():
        logits, states = model.forward(ids, return_states=True)
        logits_step, step_states = model.forward_by_steps(ids)
    d_logits = (logits - logits_step).abs().max().item()
    assert d_logits < 1e-10, f"parallel vs step logits differ by {d_logits}"
    d_state = 0.0
    for (cs, ss), (cs2, ss2) in zip(states, step_states):
        d_state = max(d_state, (cs - cs2).abs().max().item(), (ss - ss2).abs().max().item())
    assert d_state < 1e-10, f"parallel vs step states differ by {d_state}"

    # prefix consistency: stepping from a parallel-prefill state continues correctly
    with torch.no_grad():
        _, pre_states = model.forward(ids[:, :7], return_states=True)
        st = [(c.clone(), s.clone()) for c, s in pre_states]
        tail = []
        for t in range(7, ids.shape[1]):
            lg, st = model.step(ids[:, t], st)
            tail.append(lg)
        d_tail = (torch.stack(tail, 1) - logits[:, 7:]).abs().max().item()
    assert d_tail < 1e-10, f"prefill+step differs by {d_tail}"
    return logits, logits_step, step_states, (d_logits, d_state, d_tail)


def memory_effect(model, ids, logits, names):
    """How much the SSM memory moves the logits: A -> -inf makes the state forget instantly."""
    with torch.no_grad():
        saved = {n: model.params[n] for n in names if n.endswith("A_log")}
        for n in saved:
            model.params[n] = saved[n] + 30.0
        nomem = model(ids)
        model.params.update(saved)
        return (nomem - logits).abs().max().item()


def write_golden(out_dir, golden):
    """Write golden.safetensors (F32) and confirm what was written by reading it back."""
    batch, seq = golden["ids"].shape
    save_safetensors(os.path.join(out_dir, "golden.safetensors"), golden,
                     metadata={"generator": "tools/make_fixtures.py", "batch": batch, "seq_len": seq})

    # re-read and confirm what was written
    back, _ = load_safetensors(os.path.join(out_dir, "golden.safetensors"))
    assert set(back) == set(golden)
    for k, v in golden.items():
        assert tuple(back[k].shape) == tuple(v.shape), k
        assert torch.equal(back[k].double(), v.detach().float().double()), k


def make_fixture(dirname, spec):
    out_dir = os.path.join(FIXTURES, dirname)
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(spec["seed"])

    config = dict(COMMON_CONFIG)
    config.update(spec["config"])
    cfg = MambaConfig(config)

    # 1. weights: float64 init -> float32 on disk
    params = init_params(cfg, gen)
    save_safetensors(os.path.join(out_dir, "model.safetensors"),
                     {k: v.float() for k, v in params.items()}, metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")

    # 2. reload from disk (exercises the reader; weights are now f32-rounded)
    model = MambaLM.from_pretrained(out_dir, dtype=torch.float64)
    for k, v in params.items():
        assert torch.equal(model.params[k], v.float().double()), k
    if cfg.tie_word_embeddings:
        assert "lm_head.weight" not in model.params

    batch, seq = spec.get("batch", BATCH), spec.get("seq", SEQ)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), generator=gen)
    targets = torch.randint(0, cfg.vocab_size, (batch, seq), generator=gen)

    # 3. forward (parallel) vs step
    logits, logits_step, step_states, (d_logits, d_state, d_tail) = check_recurrence(model, ids)

    with torch.no_grad():
        cf_err = check_scan_closed_form(model, ids)

    # 4. loss and gradients
    model.requires_grad_(True)
    loss = loss_fn(model, ids, targets)
    names = list(model.params)
    grads = dict(zip(names, torch.autograd.grad(loss, [model.params[n] for n in names])))
    for n, g in grads.items():
        assert g.abs().max().item() > 0, f"gradient of {n} is identically zero"
    model.requires_grad_(False)

    fd_worst, fd_count = check_finite_differences(model, ids, targets, grads, gen)
    check_gradcheck(model, ids, targets, "backbone.layers.0.mixer.A_log")
    check_gradcheck(model, ids, targets, "backbone.layers.1.mixer.conv1d.bias")

    # diagnostic: how much the SSM memory contributes to the logits
    mem_effect = memory_effect(model, ids, logits, names)

    # 5. golden file
    golden = {
        "ids": ids.double(),
        "targets": targets.double(),
        "logits": logits,
        "logits_step": logits_step,
        "loss": loss.detach().reshape(1),
    }
    for n in names:
        golden["grad." + n] = grads[n]
    for i, (cs, ss) in enumerate(step_states):
        golden[f"conv_state.{i}"] = cs
        golden[f"ssm_state.{i}"] = ss
    write_golden(out_dir, golden)

    print(f"{dirname}: loss={loss.item():.10f} |parallel-step| logits={d_logits:.2e} states={d_state:.2e} "
          f"prefill+step={d_tail:.2e} closed-form={cf_err:.2e} FD worst={fd_worst:.2e} ({fd_count} params) "
          f"memory effect on logits={mem_effect:.3f}")
    for fn in sorted(os.listdir(out_dir)):
        print(f"  {fn}: {os.path.getsize(os.path.join(out_dir, fn))} bytes")
    total = sum(os.path.getsize(os.path.join(out_dir, fn)) for fn in os.listdir(out_dir))
    assert total < 100_000, f"{dirname} is {total} bytes"
    return golden


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(FIXTURES, exist_ok=True)
    check_safetensors_reader(FIXTURES)
    for dirname, spec in FIXTURE_SPECS.items():
        make_fixture(dirname, spec)


if __name__ == "__main__":
    main()
