#!/usr/bin/python3
"""Generate a tiny Bamba-layout hybrid checkpoint and golden outputs under test/fixtures/bamba-tiny/.

    /usr/bin/python3 tools/make_hybrid_fixtures.py

config.json uses transformers' BambaConfig keys (model_type "bamba", attention at
attn_layer_indices [1] of 3 layers, 2 query heads on 1 key/value head, partial_rotary_factor 0.5,
an untied head); model.safetensors holds float32 weights with BambaForCausalLM names.
golden.safetensors: ids, targets, logits (parallel), logits_step (successive steps), loss,
grad.<param>, and after the sequence conv_state.<i> / ssm_state.<i> of the Mamba-2 layers and
k.<i> / v.<i> (B, L, Hkv, head_dim; keys after rotary) of the attention layer, all in float64
from the float32 weights. Before writing, parallel == steps and gradcheck are asserted.
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_reference import cross_entropy_mean, inverse_softplus, save_safetensors  # noqa: E402
from hybrid_reference import BambaConfig, BambaLM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "bamba-tiny")
BATCH, SEQ = 2, 11
CONFIG = {
    "model_type": "bamba", "architectures": ["BambaForCausalLM"],
    "hidden_size": 16, "num_hidden_layers": 3, "vocab_size": 37, "intermediate_size": 24,
    "num_attention_heads": 2, "num_key_value_heads": 1, "attn_layer_indices": [1], "rope_theta": 1000.0,
    "partial_rotary_factor": 0.5, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    "mamba_n_heads": 4, "mamba_d_head": 8, "mamba_n_groups": 1, "mamba_d_state": 8, "mamba_d_conv": 3,
    "mamba_expand": 2, "mamba_chunk_size": 4, "mamba_conv_bias": True, "mamba_proj_bias": False,
    "time_step_limit": [0.0, math.inf], "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
    "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
}


def shapes(c):
    D, F, hd = c.hidden_size, c.intermediate_size, c.head_dim
    s = {"model.embed_tokens.weight": (c.vocab_size, D)}
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = (D,)
        if i in c.attn:
            s[p + "self_attn.q_proj.weight"] = (c.num_attention_heads * hd, D)
            s[p + "self_attn.k_proj.weight"] = (c.num_key_value_heads * hd, D)
            s[p + "self_attn.v_proj.weight"] = (c.num_key_value_heads * hd, D)
            s[p + "self_attn.o_proj.weight"] = (D, c.num_attention_heads * hd)
        else:
            m = p + "mamba."
            s[m + "in_proj.weight"] = (c.in_proj_dim, D)
            s[m + "conv1d.weight"] = (c.conv_dim, 1, c.d_conv)
            s[m + "conv1d.bias"] = (c.conv_dim,)
            s[m + "dt_bias"] = (c.n_heads,)
            s[m + "A_log"] = (c.n_heads,)
            s[m + "D"] = (c.n_heads,)
            s[m + "norm.weight"] = (c.d_inner,)
            s[m + "out_proj.weight"] = (D, c.d_inner)
        s[p + "pre_ff_layernorm.weight"] = (D,)
        s[p + "feed_forward.gate_proj.weight"] = (F, D)
        s[p + "feed_forward.up_proj.weight"] = (F, D)
        s[p + "feed_forward.down_proj.weight"] = (D, F)
    s["model.final_layernorm.weight"] = (D,)
    s["lm_head.weight"] = (c.vocab_size, D)
    return s


def init(c, gen):
    randn = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)
    rand = lambda *s: torch.rand(*s, generator=gen, dtype=torch.float64)
    out = {}
    for name, shape in shapes(c).items():
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            t = 0.5 * randn(*shape)
        elif name.endswith("norm.weight"):
            t = 1.0 + 0.1 * randn(*shape)
        elif name.endswith("dt_bias"):
            t = inverse_softplus(torch.exp(math.log(1e-3) + (math.log(0.1) - math.log(1e-3)) * rand(*shape))) + 0.3 * randn(*shape)
        elif name.endswith("A_log"):
            t = torch.log(1 + 15 * rand(*shape))
        elif name.endswith(".D"):
            t = 1.0 + 0.1 * randn(*shape)
        elif name.endswith("conv1d.bias"):
            t = 0.1 * randn(*shape)
        else:  # projections and the conv kernel: unit-variance outputs
            t = randn(*shape) / math.sqrt(shape[-1] if len(shape) == 2 else shape[-1])
        out[name] = t
    return out


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(31337)
    cfg = BambaConfig(CONFIG)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")
    save_safetensors(os.path.join(OUT, "model.safetensors"), {k: v.float() for k, v in init(cfg, gen).items()}, metadata={"format": "pt"})
    model = BambaLM.from_pretrained(OUT)
    ids = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    targets = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    with torch.no_grad():
        logits, states = model.forward(ids, return_states=True)
        logits_step, step_states = model.forward_by_steps(ids)
    gap = (logits - logits_step).abs().max().item()
    assert gap < 1e-10, f"parallel vs step {gap}"
    for a, b in zip(states, step_states):
        assert max((a[0] - b[0]).abs().max().item(), (a[1] - b[1]).abs().max().item()) < 1e-10

    model.requires_grad_(True)
    loss = cross_entropy_mean(model(ids), targets)
    names = list(model.params)
    grads = dict(zip(names, torch.autograd.grad(loss, [model.params[n] for n in names])))
    model.requires_grad_(False)
    for n, g in grads.items():
        assert g.abs().max().item() > 0, n
    for name in ("model.layers.1.self_attn.k_proj.weight", "model.layers.2.mamba.dt_bias"):
        base = model.params[name]

        def f(p, name=name, base=base):
            model.params[name] = p
            try:
                return cross_entropy_mean(model(ids), targets)
            finally:
                model.params[name] = base
        assert torch.autograd.gradcheck(f, (base.clone().requires_grad_(True),), eps=1e-6, atol=1e-8, rtol=1e-6)

    golden = {"ids": ids.double(), "targets": targets.double(), "logits": logits, "logits_step": logits_step, "loss": loss.detach().reshape(1)}
    golden.update({"grad." + n: g for n, g in grads.items()})
    for i, st in enumerate(step_states):
        keys = ("k", "v") if i in cfg.attn else ("conv_state", "ssm_state")
        golden[f"{keys[0]}.{i}"], golden[f"{keys[1]}.{i}"] = st
    save_safetensors(os.path.join(OUT, "golden.safetensors"), golden,
                     metadata={"generator": "tools/make_hybrid_fixtures.py", "batch": BATCH, "seq_len": SEQ})
    total = sum(os.path.getsize(os.path.join(OUT, fn)) for fn in os.listdir(OUT))
    print(f"bamba-tiny: loss={loss.item():.10f} parallel-step gap={gap:.2e} {total} bytes")
    assert total < 200_000


if __name__ == "__main__":
    main()
