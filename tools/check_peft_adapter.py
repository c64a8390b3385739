#!/usr/bin/env python3
"""Check a LoRA adapter folder against the Hugging Face PEFT layout, independently of frugal.

    python3 tools/check_peft_adapter.py ADAPTER_DIR --base BASE_MODEL_DIR

Written from PEFT's conventions (LoraConfig's keys; LoraModel's state dict names
`base_model.model.<module path>.lora_A.weight` [r, in_features] and `.lora_B.weight`
[out_features, r] for an nn.Linear of weight [out_features, in_features]), with the standard
library only: the safetensors headers of the adapter and of the base's model.safetensors are read
by hand. PEFT itself cannot be installed here, so this reader stands in for it; it was not checked
against PEFT's own loader. Prints one line and exits 0 when the layout holds, 1 otherwise.
"""
import argparse
import json
import os
import re
import struct
import sys

REQUIRED = {
    "peft_type": lambda v: v == "LORA",
    "r": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
    "lora_alpha": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "lora_dropout": lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
    "target_modules": lambda v: isinstance(v, list) and v and all(isinstance(t, str) for t in v),
    "bias": lambda v: v == "none",
    "task_type": lambda v: v == "CAUSAL_LM",
    "fan_in_fan_out": lambda v: v is False,
    "base_model_name_or_path": lambda v: isinstance(v, str),
}
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
NAME = re.compile(r"^base_model\.model\.(.+)\.lora_(A|B)\.weight$")


def header(path):
    """The JSON header of a safetensors file and the size of its data section."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    size = os.path.getsize(path) - 8 - n
    return h, size


def check(adapter_dir, base_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    for key, ok in REQUIRED.items():
        if key not in cfg:
            return f"adapter_config.json has no '{key}'"
        if not ok(cfg[key]):
            return f"adapter_config.json: '{key}' is {cfg[key]!r}"
    r, targets = cfg["r"], cfg["target_modules"]

    h, size = header(os.path.join(adapter_dir, "adapter_model.safetensors"))
    h.pop("__metadata__", None)
    end = 0
    pairs = {}
    for name, t in h.items():
        m = NAME.match(name)
        if not m:
            return f"tensor '{name}' is not named base_model.model.<module>.lora_A/B.weight"
        if t["dtype"] not in DTYPE_BYTES:
            return f"tensor '{name}' has dtype {t['dtype']}"
        count = 1
        for d in t["shape"]:
            count *= d
        begin, stop = t["data_offsets"]
        if stop - begin != count * DTYPE_BYTES[t["dtype"]]:
            return f"tensor '{name}' has {stop - begin} bytes for shape {t['shape']}"
        end = max(end, stop)
        module, which = m.group(1), m.group(2)
        if module.split(".")[-1] not in targets:
            return f"tensor '{name}': module '{module}' is not in target_modules {targets}"
        pairs.setdefault(module, {})[which] = t["shape"]
    if end != size:
        return f"adapter_model.safetensors: data section is {size} bytes, tensors cover {end}"

    base, _ = header(os.path.join(base_dir, "model.safetensors"))
    base.pop("__metadata__", None)
    expected = {
        n[: -len(".weight")]: t["shape"]
        for n, t in base.items()
        if n.endswith(".weight") and len(t["shape"]) == 2 and n[: -len(".weight")].split(".")[-1] in targets
    }
    if set(pairs) != set(expected):
        missing = sorted(set(expected) - set(pairs))
        extra = sorted(set(pairs) - set(expected))
        return f"adapted modules differ from the base's targets: missing {missing[:3]}, extra {extra[:3]}"
    for module, (out_f, in_f) in expected.items():
        ab = pairs[module]
        if ab.get("A") != [r, in_f]:
            return f"{module}.lora_A.weight is {ab.get('A')}, PEFT expects [r, in_features] = {[r, in_f]}"
        if ab.get("B") != [out_f, r]:
            return f"{module}.lora_B.weight is {ab.get('B')}, PEFT expects [out_features, r] = {[out_f, r]}"
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("adapter")
    p.add_argument("--base", required=True)
    a = p.parse_args()
    problem = check(a.adapter, a.base)
    if problem:
        print(f"not PEFT LoRA: {problem}")
        sys.exit(1)
    print(f"ok: PEFT LoRA layout, {len(header(os.path.join(a.adapter, 'adapter_model.safetensors'))[0]) - 1} tensors")


if __name__ == "__main__":
    main()
