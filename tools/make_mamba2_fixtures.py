#!/usr/bin/python3
"""Generate tiny Mamba-2 checkpoints and golden outputs under test/fixtures/.

Deterministic (fixed seeds); run from anywhere:

    /usr/bin/python3 tools/make_mamba2_fixtures.py

  mamba2-tiny-a/  transformers layout (model_type "mamba2"): 4 heads in n_groups = 2, untied head
                  (Mamba2Config's default), chunk_size 4 so 13 tokens end in a partial chunk,
                  time_step_limit [0.0, Infinity] written by Python's json as a bare Infinity
  mamba2-tiny-b/  state-spaces layout: config.json with ssm_cfg.layer "Mamba2" (headdim, ngroups 1,
                  dt_limit that clamps, in/out_proj biases), vocabulary 37 padded to 40, tied head,
                  pytorch_model.bin written by torch.save (lm_head.weight sharing the embedding)

Each golden.safetensors holds ids, targets, logits (parallel), logits_step (successive steps),
loss, grad.<param> (HF names) and conv_state.<i> (B, CD, K), ssm_state.<i> (B, H, P, N) after the
sequence, all computed in float64 from the float32 weights as stored. Before writing, the script
asserts parallel == steps, the chunked form == the recurrence, and gradients against finite
differences (torch.autograd.gradcheck).
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_reference import cross_entropy_mean, inverse_softplus, save_safetensors  # noqa: E402
from mamba2_reference import Mamba2Config, Mamba2LM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "test", "fixtures")
BATCH, SEQ = 2, 13

SPECS = {
    "mamba2-tiny-a": dict(seed=2024, config={
        "model_type": "mamba2", "architectures": ["Mamba2ForCausalLM"],
        "hidden_size": 16, "num_hidden_layers": 2, "vocab_size": 37, "state_size": 8, "expand": 2,
        "num_heads": 4, "head_dim": 8, "n_groups": 2, "conv_kernel": 4, "chunk_size": 4,
        "use_bias": False, "use_conv_bias": True, "layer_norm_epsilon": 1e-5, "rms_norm": True,
        "time_step_limit": [0.0, math.inf], "time_step_min": 0.001, "time_step_max": 0.1, "time_step_floor": 1e-4,
        "tie_word_embeddings": False, "hidden_act": "silu", "residual_in_fp32": True, "torch_dtype": "float32",
    }),
    "mamba2-tiny-b": dict(seed=4202, config={
        "d_model": 12, "n_layer": 2, "vocab_size": 37, "pad_vocab_size_multiple": 8,
        "ssm_cfg": {"layer": "Mamba2", "d_state": 6, "d_conv": 3, "expand": 2, "headdim": 6, "ngroups": 1,
                    "chunk_size": 5, "bias": True, "dt_limit": [0.02, 0.6]},
        "d_intermediate": 0, "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True,
        "residual_in_fp32": True, "fused_add_norm": True, "tie_embeddings": True,
    }),
}


def init_params(cfg, gen):
    """Random float64 parameters, each with noise so every path matters."""
    D, K = cfg.hidden_size, cfg.conv_kernel
    randn = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)
    rand = lambda *s: torch.rand(*s, generator=gen, dtype=torch.float64)
    params = {}
    for name, shape in cfg.param_shapes().items():
        leaf = name.split("mixer.")[-1] if "mixer." in name else name.split(".")[-2] + "." + name.split(".")[-1]
        if name in ("backbone.embeddings.weight", "lm_head.weight"):
            t = 0.5 * randn(*shape)
        elif leaf in ("norm.weight", "norm_f.weight"):
            t = 1.0 + 0.1 * randn(*shape)
        elif leaf == "in_proj.weight":
            t = randn(*shape) / math.sqrt(D)
        elif leaf == "conv1d.weight":
            t = randn(*shape) / math.sqrt(K)
        elif leaf == "dt_bias":
            dt = torch.exp(math.log(1e-3) + (math.log(0.1) - math.log(1e-3)) * rand(*shape))
            t = inverse_softplus(dt) + 0.3 * randn(*shape)
        elif leaf == "A_log":
            t = torch.log(1 + 15 * rand(*shape))
        elif leaf == "D":
            t = 1.0 + 0.1 * randn(*shape)
        elif leaf == "out_proj.weight":
            t = randn(*shape) / math.sqrt(cfg.intermediate_size)
        elif leaf.endswith("bias"):
            t = 0.1 * randn(*shape)
        else:
            raise AssertionError(f"no init rule for {name}")
        params[name] = t
    return params


def write_checkpoint(out_dir, cfg, config, params):
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)  # a float('inf') is written as a bare Infinity
        f.write("\n")
    f32 = {k: v.float() for k, v in params.items()}
    if cfg.layout == "hf":
        save_safetensors(os.path.join(out_dir, "model.safetensors"), f32, metadata={"format": "pt"})
        return
    state = {("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k): v for k, v in f32.items()}
    if cfg.tie_word_embeddings:
        state["lm_head.weight"] = state["backbone.embedding.weight"]  # one storage, as a tied module's state dict
    torch.save(state, os.path.join(out_dir, "pytorch_model.bin"))


def check(model, ids):
    """Parallel == steps == chunked (< 1e-10), and a prefill continued by steps."""
    with torch.no_grad():
        logits, states = model.forward(ids, return_states=True)
        chunked = model.forward(ids, chunked=True)
        logits_step, step_states = model.forward_by_steps(ids)
    gaps = {"step": (logits - logits_step).abs().max().item(), "chunked": (logits - chunked).abs().max().item()}
    for (cs, ss), (cs2, ss2) in zip(states, step_states):
        gaps["state"] = max(gaps.get("state", 0), (cs - cs2).abs().max().item(), (ss - ss2).abs().max().item())
    for k, v in gaps.items():
        assert v < 1e-10, f"{k} differs by {v}"
    return logits, logits_step, step_states, gaps


def make_fixture(dirname, spec):
    out_dir = os.path.join(FIXTURES, dirname)
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(spec["seed"])
    cfg = Mamba2Config(spec["config"])
    write_checkpoint(out_dir, cfg, spec["config"], init_params(cfg, gen))
    model = Mamba2LM.from_pretrained(out_dir)  # float32-rounded weights, as stored
    ids = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    targets = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    logits, logits_step, step_states, gaps = check(model, ids)

    model.requires_grad_(True)
    loss = cross_entropy_mean(model(ids), targets)
    names = list(model.params)
    grads = dict(zip(names, torch.autograd.grad(loss, [model.params[n] for n in names])))
    model.requires_grad_(False)
    for n, g in grads.items():
        assert g.abs().max().item() > 0, f"gradient of {n} is identically zero"
    for name in ("backbone.layers.0.mixer.A_log", "backbone.layers.1.mixer.dt_bias", "backbone.layers.0.mixer.norm.weight"):
        base = model.params[name]

        def f(p, name=name, base=base):
            model.params[name] = p
            try:
                return cross_entropy_mean(model(ids), targets)
            finally:
                model.params[name] = base
        assert torch.autograd.gradcheck(f, (base.clone().requires_grad_(True),), eps=1e-6, atol=1e-8, rtol=1e-6)

    golden = {"ids": ids.double(), "targets": targets.double(), "logits": logits, "logits_step": logits_step,
              "loss": loss.detach().reshape(1)}
    golden.update({"grad." + n: g for n, g in grads.items()})
    for i, (cs, ss) in enumerate(step_states):
        golden[f"conv_state.{i}"] = cs
        golden[f"ssm_state.{i}"] = ss
    save_safetensors(os.path.join(out_dir, "golden.safetensors"), golden,
                     metadata={"generator": "tools/make_mamba2_fixtures.py", "batch": BATCH, "seq_len": SEQ})
    total = sum(os.path.getsize(os.path.join(out_dir, fn)) for fn in os.listdir(out_dir))
    print(f"{dirname}: loss={loss.item():.10f} gaps={gaps} {total} bytes")
    assert total < 150_000


def main():
    torch.set_default_dtype(torch.float64)
    for dirname, spec in SPECS.items():
        make_fixture(dirname, spec)


if __name__ == "__main__":
    main()
