#!/usr/bin/python3
"""Generate tiny Llama-architecture checkpoints and golden outputs under test/fixtures/llama-*.

Deterministic (fixed seeds); run from anywhere:

    /usr/bin/python3 tools/llama_make_fixtures.py

For every fixture directory this writes
    config.json          transformers-style LlamaConfig (LlamaForCausalLM would load it)
    model.safetensors    float32 weights, HF parameter names
    golden.safetensors   reference outputs (F32), computed in float64 from the
                         float32-rounded weights re-read from model.safetensors:
                         ids, targets, logits, logits_step, loss, grad.<param>,
                         key_cache.<i> / value_cache.<i> (B, Hkv, L, hd) after the sequence

Before writing anything the script asserts that the parallel forward, successive steps with a
KV cache and a chunked prefill agree, that the rotate_half rotary embedding equals the same
rotation written with complex numbers, and that autograd gradients match finite differences.
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import (  # noqa: E402
    LlamaConfig,
    LlamaLM,
    cross_entropy_mean,
    load_safetensors,
    rope,
    save_safetensors,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures")

BATCH, SEQ = 2, 13

COMMON_CONFIG = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 64,
    "pretraining_tp": 1,
    "rope_scaling": None,
    "attention_dropout": 0.0,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float32",
}

FIXTURE_SPECS = {
    # multi-head attention, tied head, no biases, hd = hidden / heads
    "llama-tiny-a": dict(
        seed=4321,
        config={
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "intermediate_size": 24,
            "vocab_size": 37,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "attention_bias": False,
            "mlp_bias": False,
            "tie_word_embeddings": True,
        },
    ),
    # grouped-query attention (2 kv heads for 4 heads), head_dim != hidden / heads,
    # untied lm_head, projection biases, a small rope_theta so positions rotate a lot
    "llama-tiny-b": dict(
        seed=8765,
        config={
            "hidden_size": 12,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 6,
            "intermediate_size": 20,
            "vocab_size": 29,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500.0,
            "attention_bias": True,
            "mlp_bias": True,
            "tie_word_embeddings": False,
        },
    ),
}


def init_params(cfg, gen):
    """Random float64 parameters, large enough that attention is far from uniform."""
    params = {}
    for name, shape in cfg.param_shapes().items():
        randn = torch.randn(*shape, generator=gen, dtype=torch.float64)
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            t = 1.0 + 0.1 * randn
        elif name.endswith(".bias"):
            t = 0.1 * randn
        elif name in ("model.embed_tokens.weight", "lm_head.weight"):
            t = 0.5 * randn
        else:
            t = randn / math.sqrt(shape[1]) * (2.0 if ("q_proj" in name or "k_proj" in name) else 1.0)
        params[name] = t
    return params


def check_rope_complex(gen):
    """rotate_half RoPE == multiplying (x_i + i x_{i+hd/2}) by exp(i p theta^(-2i/hd))."""
    hd, L, theta = 8, 11, 500.0
    x = torch.randn(3, L, hd, generator=gen, dtype=torch.float64)
    pos = torch.arange(5, 5 + L)
    z = torch.complex(x[..., : hd // 2], x[..., hd // 2 :])
    f = theta ** (-2.0 * torch.arange(hd // 2, dtype=torch.float64) / hd)
    zr = z * torch.exp(1j * pos[:, None].double() * f[None, :])
    want = torch.cat([zr.real, zr.imag], -1)
    err = (rope(x, pos, theta) - want).abs().max().item()
    assert err < 1e-12, f"rope disagrees with the complex rotation: {err}"
    return err


def loss_fn(model, ids, targets):
    return cross_entropy_mean(model(ids), targets)


def check_finite_differences(model, ids, targets, grads, gen):
    """Central differences on the largest-gradient entry and two random entries of every parameter."""
    h = 1e-6
    worst = 0.0
    with torch.no_grad():
        for name, p in model.params.items():
            flat = p.view(-1)
            g = grads[name].reshape(-1)
            idxs = [int(g.abs().argmax())] + torch.randint(0, flat.numel(), (2,), generator=gen).tolist()
            for j in idxs:
                orig = flat[j].item()
                flat[j] = orig + h
                lp = loss_fn(model, ids, targets).item()
                flat[j] = orig - h
                lm = loss_fn(model, ids, targets).item()
                flat[j] = orig
                fd, an = (lp - lm) / (2 * h), g[j].item()
                err = abs(fd - an)
                assert err <= 1e-7 + 1e-5 * abs(an), f"FD mismatch {name}[{j}]: fd={fd} autograd={an}"
                worst = max(worst, err)
    return worst


def make_fixture(dirname, spec):
    out_dir = os.path.join(FIXTURES, dirname)
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(spec["seed"])
    config = dict(COMMON_CONFIG)
    config.update(spec["config"])
    cfg = LlamaConfig(config)

    # 1. weights: float64 init -> float32 on disk
    params = init_params(cfg, gen)
    save_safetensors(os.path.join(out_dir, "model.safetensors"),
                     {k: v.float() for k, v in params.items()}, metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")

    # 2. reload from disk (weights are now f32-rounded)
    model = LlamaLM.from_pretrained(out_dir, dtype=torch.float64)
    for k, v in params.items():
        assert torch.equal(model.params[k], v.float().double()), k

    ids = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    targets = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)

    # 3. parallel forward vs KV-cache steps vs a chunked prefill
    with torch.no_grad():
        logits = model.forward(ids)
        logits_step, cache = model.forward_by_steps(ids)
        chunked = model.init_cache()
        first = model._run(ids[:, :7], chunked, 0)
        rest = model._run(ids[:, 7:], chunked, 7)
    d_step = (logits - logits_step).abs().max().item()
    d_chunk = (torch.cat([first, rest], 1) - logits).abs().max().item()
    assert d_step < 1e-10, f"parallel vs step logits differ by {d_step}"
    assert d_chunk < 1e-10, f"parallel vs chunked prefill differ by {d_chunk}"
    rope_err = check_rope_complex(gen)

    # 4. loss and gradients
    model.requires_grad_(True)
    loss = loss_fn(model, ids, targets)
    names = list(model.params)
    grads = dict(zip(names, torch.autograd.grad(loss, [model.params[n] for n in names])))
    for n, g in grads.items():
        assert g.abs().max().item() > 0, f"gradient of {n} is identically zero"
    model.requires_grad_(False)
    fd_worst = check_finite_differences(model, ids, targets, grads, gen)

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
    for i, (k, v) in enumerate(cache):
        golden[f"key_cache.{i}"] = k
        golden[f"value_cache.{i}"] = v
    save_safetensors(os.path.join(out_dir, "golden.safetensors"), golden,
                     metadata={"generator": "tools/llama_make_fixtures.py", "batch": BATCH, "seq_len": SEQ})
    back, _ = load_safetensors(os.path.join(out_dir, "golden.safetensors"))
    assert set(back) == set(golden)
    for k, v in golden.items():
        assert torch.equal(back[k].double(), v.detach().float().double()), k

    print(f"{dirname}: loss={loss.item():.10f} |parallel-step|={d_step:.2e} |parallel-chunked|={d_chunk:.2e} "
          f"rope-vs-complex={rope_err:.2e} FD worst={fd_worst:.2e}")
    total = 0
    for fn in sorted(os.listdir(out_dir)):
        size = os.path.getsize(os.path.join(out_dir, fn))
        total += size
        print(f"  {fn}: {size} bytes")
    assert total < 100_000, f"{dirname} is {total} bytes"


def main():
    torch.set_default_dtype(torch.float64)
    for dirname, spec in FIXTURE_SPECS.items():
        make_fixture(dirname, spec)


if __name__ == "__main__":
    main()
