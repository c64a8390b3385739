#!/usr/bin/python3
"""Generate tiny Mamba-3 checkpoints (SISO and MIMO) in state-spaces' layout and golden outputs.

    /usr/bin/python3 tools/make_mamba3_fixtures.py

test/fixtures/mamba3-tiny/: config.json with ssm_cfg.layer "Mamba3" (4 heads in 2 groups of B/C,
d_state 8, rope_fraction 0.5: 2 rotary angles), vocabulary 37 padded to 40, tied head;
pytorch_model.bin by torch.save (lm_head.weight sharing the embedding).
test/fixtures/mamba3-mimo-tiny/: the same with ssm_cfg.is_mimo and mimo_rank 3, an untied head.
golden.safetensors: ids, targets, logits (the attention-form forward), logits_step (the
recurrence), loss, grad.<param> (frugal's names) and the state after the sequence, angle.<i>
(B, H, S), ssm.<i> (B, H, P, N), kprev.<i> (B, H, N), vprev.<i> (B, H, P) (MIMO: (B, H, R, N) and
(B, H, R, P), the input after mimo_x). Asserted first: both forms agree, and gradcheck.
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_reference import cross_entropy_mean, inverse_softplus, save_safetensors  # noqa: E402
from mamba3_reference import Mamba3Config, Mamba3LM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SEQ = 2, 12
CONFIG = {
    "d_model": 16, "n_layer": 2, "vocab_size": 37, "pad_vocab_size_multiple": 8,
    "ssm_cfg": {"layer": "Mamba3", "d_state": 8, "expand": 2, "headdim": 8, "ngroups": 2, "rope_fraction": 0.5},
    "d_intermediate": 0, "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True,
    "fused_add_norm": True, "tie_embeddings": True,
}
MIMO_CONFIG = {**CONFIG, "tie_embeddings": False,
               "ssm_cfg": {**CONFIG["ssm_cfg"], "is_mimo": True, "mimo_rank": 3}}


def init(cfg, gen):
    randn = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)
    rand = lambda *s: torch.rand(*s, generator=gen, dtype=torch.float64)
    out = {}
    for name, shape in cfg.param_shapes().items():
        if name == "backbone.embeddings.weight":
            t = 0.5 * randn(*shape)
        elif name.endswith("norm.weight") or name.endswith("norm_f.weight") or name.endswith("_bias") and "dt" not in name or name.endswith(".D"):
            t = 1.0 + 0.2 * randn(*shape)
        elif "mimo_" in name:
            t = (1.0 + 0.3 * randn(*shape)) / (1 if name.endswith("mimo_z") else shape[1])
        elif name.endswith("dt_bias"):
            t = inverse_softplus(torch.exp(math.log(1e-3) + (math.log(0.1) - math.log(1e-3)) * rand(*shape))) + 0.3 * randn(*shape)
        else:
            t = randn(*shape) / math.sqrt(shape[-1])
        out[name] = t
    return out


def make(name, config, seed):
    out = os.path.join(ROOT, "test", "fixtures", name)
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    cfg = Mamba3Config(config)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    state = {("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k): v.float() for k, v in init(cfg, gen).items()}
    if cfg.tie:
        state["lm_head.weight"] = state["backbone.embedding.weight"]
    torch.save(state, os.path.join(out, "pytorch_model.bin"))
    model = Mamba3LM.from_pretrained(out)
    ids = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    targets = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    with torch.no_grad():
        logits = model.forward(ids)
        logits_step, states = model.forward_by_steps(ids)
    gap = (logits - logits_step).abs().max().item()
    assert gap < 1e-10, f"attention form vs recurrence {gap}"

    model.requires_grad_(True)
    loss = cross_entropy_mean(model(ids), targets)
    names = list(model.params)
    grads = dict(zip(names, torch.autograd.grad(loss, [model.params[n] for n in names])))
    model.requires_grad_(False)
    for n, g in grads.items():
        assert g.abs().max().item() > 0, n
    checked = ("backbone.layers.0.mixer.in_proj.weight", "backbone.layers.1.mixer.B_bias") + (
        ("backbone.layers.1.mixer.mimo_z", "backbone.layers.0.mixer.mimo_o") if cfg.is_mimo else ())
    for pname in checked:
        base = model.params[pname]

        def f(p, pname=pname, base=base):
            model.params[pname] = p
            try:
                return cross_entropy_mean(model.forward_by_steps(ids)[0], targets)
            finally:
                model.params[pname] = base
        assert torch.autograd.gradcheck(f, (base.clone().requires_grad_(True),), eps=1e-6, atol=1e-8, rtol=1e-6)

    golden = {"ids": ids.double(), "targets": targets.double(), "logits": logits, "logits_step": logits_step, "loss": loss.detach().reshape(1)}
    golden.update({"grad." + n: g for n, g in grads.items()})
    for i, (theta, h, k, v) in enumerate(states):
        # frugal keeps the ranks after the heads: (B, H, R, ·), or (B, H, ·) for SISO
        k, v = (k.transpose(1, 2), v.transpose(1, 2)) if cfg.is_mimo else (k[:, 0], v[:, 0])
        golden[f"angle.{i}"], golden[f"ssm.{i}"], golden[f"kprev.{i}"], golden[f"vprev.{i}"] = theta, h, k, v
    save_safetensors(os.path.join(out, "golden.safetensors"), golden,
                     metadata={"generator": "tools/make_mamba3_fixtures.py", "batch": BATCH, "seq_len": SEQ})
    total = sum(os.path.getsize(os.path.join(out, fn)) for fn in os.listdir(out))
    print(f"{name}: loss={loss.item():.10f} forms agree to {gap:.2e}, {total} bytes")
    assert total < 150_000


def main():
    torch.set_default_dtype(torch.float64)
    make("mamba3-tiny", CONFIG, 303)
    make("mamba3-mimo-tiny", MIMO_CONFIG, 304)


if __name__ == "__main__":
    main()
