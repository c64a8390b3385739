#!/usr/bin/python3
"""Hand frugal's checkpoints to PyTorch and check nothing is lost.

Needs the built CLI (npm run build) and torch; transformers is not needed (nor installable here),
so `load_like_transformers` reproduces what MambaForCausalLM.from_pretrained requires of a
directory, from transformers' documented MambaConfig and the MambaForCausalLM state dict:

  * config.json: model_type "mamba", MambaForCausalLM in architectures, every key a documented
    MambaConfig / PretrainedConfig key (frugal's own "frugal" block is reported separately:
    transformers keeps unknown keys as plain attributes), absent keys read with transformers'
    defaults (use_bias True, time_step_rank "auto" = ceil(hidden_size / 16), ...);
  * model.safetensors: metadata {"format": "pt"}, exactly the parameter names and shapes of
    MambaForCausalLM for that config (lm_head.weight may be absent only when tied), dtype = torch_dtype.

Steps (run from anywhere):

    /usr/bin/python3 tools/check_interop.py

  1. frugal train a small model; load it like transformers; the independent float64 reference
     (tools/mamba_reference.py) and `frugal logits` (parallel and step) must agree within 1e-4.
     The checkpoint and PyTorch's logits are committed as test/fixtures/interop/frugal-trained/.
  2. frugal convert --to original; torch.load must return the same tensors (tied head sharing
     its storage), and so must a ZIP64 archive written by the same writer.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba_reference import MambaConfig, MambaLM, load_safetensors  # noqa: E402
from make_interop_fixtures import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "test", "fixtures", "interop", "frugal-trained")

# transformers MambaConfig.__init__ arguments (docs: model_doc/mamba) and the attribute it derives
MAMBA_CONFIG_KEYS = {
    "vocab_size", "hidden_size", "state_size", "num_hidden_layers", "layer_norm_epsilon", "pad_token_id",
    "bos_token_id", "eos_token_id", "expand", "conv_kernel", "use_bias", "use_conv_bias", "hidden_act",
    "initializer_range", "residual_in_fp32", "time_step_rank", "time_step_scale", "time_step_min", "time_step_max",
    "time_step_init_scheme", "time_step_floor", "rescale_prenorm_residual", "use_cache", "use_mambapy",
    "intermediate_size",
}
# PretrainedConfig keys that save_pretrained writes for any model (docs: main_classes/configuration)
PRETRAINED_KEYS = {"architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "tie_word_embeddings"}
TRANSFORMERS_DEFAULTS = {"state_size": 16, "expand": 2, "conv_kernel": 4, "use_bias": True, "use_conv_bias": True,
                         "layer_norm_epsilon": 1e-5, "time_step_rank": "auto", "tie_word_embeddings": True}
TORCH_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def load_like_transformers(directory):
    with open(os.path.join(directory, "config.json")) as f:
        raw = json.load(f)
    assert raw.get("model_type") == "mamba", raw.get("model_type")
    assert "MambaForCausalLM" in raw.get("architectures", []), raw.get("architectures")
    extra = sorted(set(raw) - MAMBA_CONFIG_KEYS - PRETRAINED_KEYS)
    assert extra in ([], ["frugal"]), f"undocumented config keys: {extra}"
    cfg = dict(TRANSFORMERS_DEFAULTS)
    cfg.update({k: v for k, v in raw.items() if k != "frugal"})
    if cfg["time_step_rank"] == "auto":
        cfg["time_step_rank"] = math.ceil(cfg["hidden_size"] / 16)
    cfg.setdefault("intermediate_size", cfg["expand"] * cfg["hidden_size"])
    config = MambaConfig(cfg)
    path = os.path.join(directory, "model.safetensors")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    assert header.get("__metadata__", {}).get("format") == "pt", header.get("__metadata__")
    want_dtype = TORCH_DTYPES[cfg.get("torch_dtype", "float32")]
    tensors, _ = load_safetensors(path)
    expected = config.param_shapes()
    names = set(tensors)
    missing = set(expected) - names
    unexpected = names - set(expected)
    if config.tie_word_embeddings:
        unexpected -= {"lm_head.weight"}
    assert not missing, f"missing: {sorted(missing)}"
    assert not unexpected, f"unexpected: {sorted(unexpected)}"
    for k, shape in expected.items():
        assert tuple(tensors[k].shape) == tuple(shape), (k, tensors[k].shape, shape)
        assert header[k]["dtype"] == want_dtype, (k, header[k]["dtype"], want_dtype)
    return config, {k: v.double() for k, v in tensors.items() if k in expected}, extra


def frugal(*args):
    r = subprocess.run(["node", os.path.join(ROOT, "bin", "frugal.js"), *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"frugal {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r.stdout


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main():
    tmp = tempfile.mkdtemp(prefix="frugal-interop-")
    try:
        out = os.path.join(tmp, "trained")
        frugal("train", "--steps", "12", "--d-model", "32", "--layers", "2", "--d-state", "8", "--seq-len", "32",
               "--batch", "4", "--eval-windows", "4", "--save-every", "0", "--seed", "3", "--out", out)
        config, params, extra = load_like_transformers(out)
        ids = torch.tensor([[84, 104, 101, 32, 115, 116, 97, 116, 101, 32, 111, 102, 32, 116, 104, 101, 32, 85, 110, 105, 111, 110]])
        model = MambaLM(config, params, dtype=torch.float64)
        with torch.no_grad():
            ref = model.forward(ids)[0]
        for mode in ("parallel", "step"):
            got = json.loads(frugal("logits", "--model", out, "--ids", ",".join(map(str, ids[0].tolist())), "--mode", mode))
            err = rel_err(torch.tensor(got["logits"], dtype=torch.float64).reshape(ref.shape), ref)
            assert err < 1e-4, f"{mode}: {err}"
            print(f"train -> save -> PyTorch: {mode} logits agree, relative error {err:.2e}")
        print(f"config keys beyond transformers' documented ones: {extra} (frugal's tokenizer marker)")
        os.makedirs(FIXTURE, exist_ok=True)
        for fn in ("config.json", "model.safetensors"):
            shutil.copy(os.path.join(out, fn), os.path.join(FIXTURE, fn))
        write_safetensors(os.path.join(FIXTURE, "golden.safetensors"), {"ids": ids.double(), "logits": ref[None]}, "F32")

        orig = os.path.join(tmp, "original")
        frugal("convert", "--model", out, "--out", orig, "--to", "original")
        sd = torch.load(os.path.join(orig, "pytorch_model.bin"))
        for k, v in params.items():
            ok = k.replace("backbone.embeddings.", "backbone.embedding.")
            assert torch.equal(sd[ok].double(), v), k
        assert sd["lm_head.weight"].data_ptr() == sd["backbone.embedding.weight"].data_ptr()
        with open(os.path.join(orig, "config.json")) as f:
            oc = json.load(f)
        print(f"convert --to original: torch.load gives all {len(sd)} tensors (tied head shares storage); config {oc}")

        z64 = os.path.join(tmp, "zip64.bin")
        script = (
            "import { torchBinProducer } from './dist/io/torchbin.js'; import { writeFileAtomic } from './dist/io/atomic.js';"
            "const f = new Float32Array([1.5, -2, 3.25, 4, 5, 6]);"
            "const t = [{ name: 'a', dtype: 'F32', shape: [2, 3], storage: 's', data: () => new Uint8Array(f.buffer) },"
            "           { name: 'b', dtype: 'F32', shape: [2, 3], storage: 's', data: () => new Uint8Array(f.buffer) }];"
            f"writeFileAtomic({json.dumps(z64)}, torchBinProducer(t, {{ zip64: true }}));"
        )
        subprocess.run(["node", "--input-type=module", "-e", script], cwd=ROOT, check=True)
        z = torch.load(z64)
        assert torch.equal(z["a"], torch.tensor([[1.5, -2, 3.25], [4, 5, 6]])) and z["b"].data_ptr() == z["a"].data_ptr()
        print("ZIP64 archive: torch.load reads it")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
