#!/usr/bin/python3
"""Tiny Mamba checkpoints in every published layout, with golden logits, under test/fixtures/interop/.

Deterministic (fixed seeds); run from anywhere:

    /usr/bin/python3 tools/make_interop_fixtures.py

Each directory holds a checkpoint exactly as it would be published, plus golden.safetensors
(ids, logits) computed by the independent float64 reference (tools/mamba_reference.py) from the
weights as stored (F16/BF16 values widened exactly):

  hf-f16-sharded/      transformers layout, F16, three shards + model.safetensors.index.json, tied
                       head, time_step_rank "auto", published-style extra keys (fused_add_norm, ...)
  hf-bf16-untied/      transformers layout, BF16, one file, untied lm_head, in/out_proj biases,
                       an unknown config key (must warn, not fail)
  orig-bin-tied/       state-spaces layout: mamba_ssm config.json (vocab 37 padded to 40) and a
                       pytorch_model.bin written by torch.save of a module's state_dict (tied head:
                       lm_head.weight shares the embedding's storage; _metadata attached)
  orig-bin-f16-untied/ state-spaces layout, HalfStorage tensors, untied head, ssm_cfg overrides
  hf-tokenizer/        transformers layout, F32, with a GPT-NeoX-style tokenizer.json built by
                       tools/make_tokenizer.py; golden ids for a text come from its reference encoder;
                       tokenizer-cases.json lists more texts and their reference ids
"""

import json
import math
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_reference import MambaConfig, MambaLM, inverse_softplus  # noqa: E402
import make_tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "interop")
BATCH, SEQ = 2, 9


def write_safetensors(path, tensors, dtype):
    """name -> float64 tensor, stored as dtype (F32 / F16 / BF16), in the given order."""
    header, chunks, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        if dtype == "F32":
            raw = t.float().numpy().astype("<f4").tobytes()
        elif dtype == "F16":
            raw = t.half().numpy().astype("<f2").tobytes()
        else:  # BF16: round to nearest even, as torch does
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(chunks))


def stored(t, dtype):
    """The float64 values a reader gets back from t stored as dtype."""
    return {"F32": t.float(), "F16": t.half(), "BF16": t.to(torch.bfloat16)}[dtype].double()


def hf_shapes(c):
    return MambaConfig(c).param_shapes()


def init_params(shapes, cfg, gen):
    """Random parameters with the magnitudes of a trained model, so every tensor matters."""
    N = cfg.state_size
    params = OrderedDict()
    for name, shape in shapes.items():
        leaf = name.split(".")[-2] + "." + name.split(".")[-1]
        g = lambda: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
        if leaf.endswith("A_log"):
            t = torch.log(torch.arange(1, N + 1, dtype=torch.float64).expand(*shape)) + 0.1 * g()
        elif leaf.endswith(".D") or "norm" in leaf:
            t = 1.0 + 0.1 * g()
        elif leaf == "dt_proj.bias":
            dt = torch.exp(math.log(1e-3) + (math.log(0.1) - math.log(1e-3)) * torch.rand(*shape, generator=gen, dtype=torch.float64))
            t = inverse_softplus(dt)
        elif name.endswith("bias"):
            t = 0.1 * g()
        elif "embedding" in name or name == "lm_head.weight":
            t = 0.5 * g()
        else:
            t = g() / math.sqrt(shape[-1])
        params[name] = t.reshape(shape)
    return params


def golden(out_dir, ref_config, values, gen, ids=None):
    """Reference logits (parallel and by steps) for ids; writes golden.safetensors."""
    cfg = MambaConfig(ref_config)
    model = MambaLM(cfg, values, dtype=torch.float64)
    if ids is None:
        ids = torch.randint(0, cfg.vocab_size, (BATCH, SEQ), generator=gen)
    with torch.no_grad():
        logits = model.forward(ids)
        steps, _ = model.forward_by_steps(ids)
    d = (logits - steps).abs().max().item()
    assert d < 1e-10, f"{out_dir}: parallel vs step {d}"
    write_safetensors(os.path.join(out_dir, "golden.safetensors"), {"ids": ids.double(), "logits": logits}, "F32")
    return ids


def hf_fixture(name, config, dtype, seed, shards=1, with_tokenizer=False):
    out_dir = os.path.join(OUT, name)
    os.makedirs(out_dir, exist_ok=True)
    for fn in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, fn))
    gen = torch.Generator().manual_seed(seed)
    ref = dict(config)
    ref.setdefault("use_bias", True)  # transformers' default when the key is absent
    shapes = hf_shapes(ref)
    params = init_params(shapes, MambaConfig(ref), gen)
    if shards == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), params, dtype)
    else:
        names = list(params)
        per = math.ceil(len(names) / shards)
        weight_map = {}
        for k in range(shards):
            fn = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            part = OrderedDict((n, params[n]) for n in names[k * per:(k + 1) * per])
            write_safetensors(os.path.join(out_dir, fn), part, dtype)
            weight_map.update({n: fn for n in part})
        total = sum(params[n].numel() * {"F32": 4, "F16": 2, "BF16": 2}[dtype] for n in names)
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    ids = None
    if with_tokenizer:
        tok = make_tokenizer.write(out_dir)
        text = "The state space model reads Café 日本 🙂 one token at a time."
        ids = torch.tensor([make_tokenizer.encode(tok, text)])
        cases = ["Hello world", "The state model<|endoftext|>Café 日本 🙂", "Don't   stop\n\nnow", " leading space",
                 "numbers 12345 and 2024!?", "naïve façade résumé", "🚀🚀 emoji", "tabs\tand\nnew lines  ", text]
        with open(os.path.join(out_dir, "tokenizer-cases.json"), "w", encoding="utf-8") as f:
            json.dump({"text": text, "cases": [{"text": t, "ids": make_tokenizer.encode(tok, t),
                                                 "decoded": make_tokenizer.decode(tok, make_tokenizer.encode(tok, t))} for t in cases]},
                      f, ensure_ascii=False, indent=1)
    golden(out_dir, ref, {n: stored(t, dtype) for n, t in params.items()}, gen, ids)
    return out_dir


class _Mixer(torch.nn.Module):
    """Parameter names and registration order of mamba_ssm's Mamba block (no computation needed here)."""

    def __init__(self, D, ED, N, K, R, bias, conv_bias):
        super().__init__()
        self.in_proj = torch.nn.Linear(D, 2 * ED, bias=bias)
        self.conv1d = torch.nn.Conv1d(ED, ED, K, groups=ED, padding=K - 1, bias=conv_bias)
        self.x_proj = torch.nn.Linear(ED, R + 2 * N, bias=False)
        self.dt_proj = torch.nn.Linear(R, ED, bias=True)
        self.A_log = torch.nn.Parameter(torch.zeros(ED, N))
        self.D = torch.nn.Parameter(torch.ones(ED))
        self.out_proj = torch.nn.Linear(ED, D, bias=bias)


class _Block(torch.nn.Module):
    def __init__(self, D, **kw):
        super().__init__()
        self.mixer = _Mixer(D, **kw)
        self.norm = torch.nn.Module()
        self.norm.weight = torch.nn.Parameter(torch.ones(D))


class _LMHead(torch.nn.Module):
    """mamba_ssm's MambaLMHeadModel parameter tree: backbone.{embedding, layers, norm_f}, lm_head."""

    def __init__(self, D, L, V, tied, **kw):
        super().__init__()
        self.backbone = torch.nn.Module()
        self.backbone.embedding = torch.nn.Embedding(V, D)
        self.backbone.layers = torch.nn.ModuleList([_Block(D, **kw) for _ in range(L)])
        self.backbone.norm_f = torch.nn.Module()
        self.backbone.norm_f.weight = torch.nn.Parameter(torch.ones(D))
        self.lm_head = torch.nn.Linear(D, V, bias=False)
        if tied:
            self.lm_head.weight = self.backbone.embedding.weight


def original_fixture(name, config, torch_dtype, seed):
    out_dir = os.path.join(OUT, name)
    os.makedirs(out_dir, exist_ok=True)
    for fn in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, fn))
    gen = torch.Generator().manual_seed(seed)
    ssm = config.get("ssm_cfg", {})
    D, L = config["d_model"], config["n_layer"]
    mult = config.get("pad_vocab_size_multiple", 8)
    V = -(-config["vocab_size"] // mult) * mult
    N, K, E = ssm.get("d_state", 16), ssm.get("d_conv", 4), ssm.get("expand", 2)
    R = math.ceil(D / 16) if ssm.get("dt_rank", "auto") == "auto" else ssm["dt_rank"]
    tied = config.get("tie_embeddings", True)
    ref = {"hidden_size": D, "num_hidden_layers": L, "state_size": N, "conv_kernel": K, "expand": E, "intermediate_size": E * D,
           "time_step_rank": R, "vocab_size": V, "layer_norm_epsilon": 1e-5, "use_bias": ssm.get("bias", False),
           "use_conv_bias": ssm.get("conv_bias", True), "tie_word_embeddings": tied}
    params = init_params(hf_shapes(ref), MambaConfig(ref), gen)
    module = _LMHead(D, L, V, tied, ED=E * D, N=N, K=K, R=R, bias=ref["use_bias"], conv_bias=ref["use_conv_bias"])
    sd = module.state_dict()
    with torch.no_grad():
        for n in sd:
            hf = n.replace("backbone.embedding.", "backbone.embeddings.")
            if n == "lm_head.weight" and tied:
                continue
            sd[n].copy_(params[hf].to(sd[n].dtype))
    module = module.to(torch_dtype)
    state = module.state_dict()
    if tied:
        assert state["lm_head.weight"].data_ptr() == state["backbone.embedding.weight"].data_ptr()
    torch.save(state, os.path.join(out_dir, "pytorch_model.bin"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    back = torch.load(os.path.join(out_dir, "pytorch_model.bin"))
    values = {n.replace("backbone.embedding.", "backbone.embeddings."): t.double() for n, t in back.items()
              if not (tied and n == "lm_head.weight")}
    golden(out_dir, ref, values, gen)
    return out_dir


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    common = {"model_type": "mamba", "architectures": ["MambaForCausalLM"], "hidden_act": "silu", "initializer_range": 0.1,
              "residual_in_fp32": True, "time_step_scale": 1.0, "time_step_min": 0.001, "time_step_max": 0.1,
              "time_step_init_scheme": "random", "time_step_floor": 0.0001, "rescale_prenorm_residual": False,
              "use_cache": True, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, "layer_norm_epsilon": 1e-5}
    hf_fixture("hf-f16-sharded", {**common, "hidden_size": 16, "num_hidden_layers": 3, "state_size": 4, "conv_kernel": 4,
                                  "expand": 2, "time_step_rank": "auto", "vocab_size": 40, "use_bias": False,
                                  "use_conv_bias": True, "tie_word_embeddings": True, "torch_dtype": "float16",
                                  "pad_vocab_size_multiple": 8, "fused_add_norm": True, "rms_norm": True,
                                  "transformers_version": "4.39.0.dev0"}, "F16", 11, shards=3)
    hf_fixture("hf-bf16-untied", {**common, "hidden_size": 12, "num_hidden_layers": 2, "state_size": 6, "conv_kernel": 3,
                                  "expand": 2, "intermediate_size": 24, "time_step_rank": 2, "vocab_size": 29,
                                  "use_bias": True, "use_conv_bias": True, "tie_word_embeddings": False,
                                  "torch_dtype": "bfloat16", "layer_norm_epsilon": 1e-3, "some_future_key": 1}, "BF16", 12)
    original_fixture("orig-bin-tied", {"d_model": 16, "n_layer": 2, "vocab_size": 37, "ssm_cfg": {}, "rms_norm": True,
                                       "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8},
                     torch.float32, 13)
    original_fixture("orig-bin-f16-untied", {"d_model": 12, "n_layer": 2, "vocab_size": 30,
                                             "ssm_cfg": {"d_state": 5, "d_conv": 3, "dt_rank": 2, "bias": True},
                                             "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
                                             "pad_vocab_size_multiple": 16, "tie_embeddings": False}, torch.float16, 14)
    tok, _ = make_tokenizer.build()
    rows = -(-len(tok["model"]["vocab"]) // 8) * 8
    hf_fixture("hf-tokenizer", {**common, "hidden_size": 16, "num_hidden_layers": 2, "state_size": 8, "conv_kernel": 4,
                                "expand": 2, "time_step_rank": "auto", "vocab_size": rows, "use_bias": False,
                                "use_conv_bias": True, "tie_word_embeddings": True, "torch_dtype": "float32"}, "F32", 15,
               with_tokenizer=True)
    for d in sorted(os.listdir(OUT)):
        size = sum(os.path.getsize(os.path.join(OUT, d, f)) for f in os.listdir(os.path.join(OUT, d)))
        print(f"{d}: {size} bytes")
        assert size < 200_000, d


if __name__ == "__main__":
    main()
