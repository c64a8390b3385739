#!/usr/bin/python3
"""Plain PyTorch reference implementation of a Mamba-1 causal language model.

This mirrors the parameter layout of Hugging Face's ``MambaForCausalLM`` but is
written from the math, not from that code base, so that it can serve as an
independent check for the TypeScript engine.  Readability beats speed here:
everything runs in float64 by default and the selective scan is a plain loop.

Contents
  * ``load_safetensors`` / ``save_safetensors``: a self-contained reader
    (F32 / F16 / BF16 / F64, plus integer types) and an F32/F64 writer.
  * ``MambaConfig``: the config.json keys that matter for the forward pass.
  * ``MambaLM``: parallel forward over (B, L) and a recurrent ``step``.

Only torch and numpy are needed (no transformers, no safetensors package).
"""

import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# safetensors I/O (hand-written)
# ---------------------------------------------------------------------------

_NP_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def load_safetensors(path):
    """Read a .safetensors file into ``(tensors, metadata)``.

    Layout: 8-byte little-endian unsigned header length n, then n bytes of
    JSON mapping name -> {dtype, shape, data_offsets: [begin, end]} (offsets
    relative to the first byte after the header), optionally a
    ``__metadata__`` entry, then the raw little-endian tensor bytes.
    Floating tensors are returned as torch tensors of their natural dtype
    (BF16 is widened exactly to float32).
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: file too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} exceeds file size")
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n :]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dtype = info["dtype"]
        shape = [int(s) for s in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
        if not (0 <= begin <= end <= len(data)):
            raise ValueError(f"{path}: bad data_offsets for {name}")
        raw = bytes(data[begin:end])
        count = int(np.prod(shape)) if shape else 1
        if dtype == "BF16":
            if len(raw) != 2 * count:
                raise ValueError(f"{path}: size mismatch for {name}")
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
            arr = (u16 << 16).view(np.float32)
        elif dtype in _NP_DTYPES:
            npd = _NP_DTYPES[dtype]
            if len(raw) != npd.itemsize * count:
                raise ValueError(f"{path}: size mismatch for {name}")
            arr = np.frombuffer(raw, dtype=npd)
            arr = arr.astype(arr.dtype.newbyteorder("="))
        else:
            raise ValueError(f"{path}: unsupported dtype {dtype} for {name}")
        tensors[name] = torch.from_numpy(arr.copy().reshape(shape))
    return tensors, metadata


def save_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Write ``tensors`` (name -> tensor) to ``path`` as F32 (or F64).

    Tensors are stored in sorted-name order, the JSON header is padded with
    spaces to a multiple of 8 bytes so that the data section is aligned.
    """
    npd = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}[dtype]
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float64).contiguous()
        raw = t.numpy().astype(npd).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in chunks:
            f.write(raw)


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------


class MambaConfig:
    """The subset of transformers' MambaConfig that shapes the forward pass."""

    def __init__(self, d):
        self.raw = dict(d)
        self.hidden_size = int(d["hidden_size"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.state_size = int(d.get("state_size", 16))
        self.conv_kernel = int(d.get("conv_kernel", 4))
        self.expand = int(d.get("expand", 2))
        ed = d.get("intermediate_size")
        self.intermediate_size = int(ed) if ed is not None else self.expand * self.hidden_size
        r = d.get("time_step_rank", "auto")
        self.time_step_rank = math.ceil(self.hidden_size / 16) if r == "auto" else int(r)
        self.vocab_size = int(d["vocab_size"])
        self.layer_norm_epsilon = float(d.get("layer_norm_epsilon", 1e-5))
        self.use_bias = bool(d.get("use_bias", False))
        self.use_conv_bias = bool(d.get("use_conv_bias", True))
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", True))

    @classmethod
    def from_file(cls, path):
        with open(path) as f:
            return cls(json.load(f))

    def param_shapes(self):
        """Expected parameter name -> shape, exactly as in HF checkpoints."""
        D, N, K = self.hidden_size, self.state_size, self.conv_kernel
        ED, R, V = self.intermediate_size, self.time_step_rank, self.vocab_size
        s = {"backbone.embeddings.weight": (V, D)}
        for i in range(self.num_hidden_layers):
            p = f"backbone.layers.{i}."
            s[p + "norm.weight"] = (D,)
            s[p + "mixer.in_proj.weight"] = (2 * ED, D)
            if self.use_bias:
                s[p + "mixer.in_proj.bias"] = (2 * ED,)
            s[p + "mixer.conv1d.weight"] = (ED, 1, K)
            if self.use_conv_bias:
                s[p + "mixer.conv1d.bias"] = (ED,)
            s[p + "mixer.x_proj.weight"] = (R + 2 * N, ED)
            s[p + "mixer.dt_proj.weight"] = (ED, R)
            s[p + "mixer.dt_proj.bias"] = (ED,)
            s[p + "mixer.A_log"] = (ED, N)
            s[p + "mixer.D"] = (ED,)
            s[p + "mixer.out_proj.weight"] = (D, ED)
            if self.use_bias:
                s[p + "mixer.out_proj.bias"] = (D,)
        s["backbone.norm_f.weight"] = (D,)
        if not self.tie_word_embeddings:
            s["lm_head.weight"] = (V, D)
        return s


# ---------------------------------------------------------------------------
# math helpers
# ---------------------------------------------------------------------------


def silu(x):
    return x * torch.sigmoid(x)


def softplus(x):
    # log(1 + e^x), written in an overflow-free form (no threshold cut-off).
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def inverse_softplus(y):
    # x such that softplus(x) = y  (y > 0): x = y + log(1 - e^-y)
    return y + torch.log(-torch.expm1(-y))


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps) * w


def linear(x, w, b=None):
    y = x @ w.transpose(-1, -2)
    return y if b is None else y + b


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


class MambaLM:
    """Mamba-1 LM with parameters held in a flat dict keyed by HF names."""

    def __init__(self, config, params, dtype=torch.float64):
        self.cfg = config
        expected = config.param_shapes()
        missing = sorted(set(expected) - set(params))
        extra = sorted(set(params) - set(expected))
        if missing:
            raise ValueError(f"missing parameters: {missing}")
        if extra:
            raise ValueError(f"unexpected parameters: {extra}")
        self.params = {}
        for name, shape in expected.items():
            t = params[name]
            if tuple(t.shape) != tuple(shape):
                raise ValueError(f"{name}: shape {tuple(t.shape)} != {tuple(shape)}")
            self.params[name] = t.detach().to(dtype).clone()
        self.dtype = dtype

    @classmethod
    def from_pretrained(cls, directory, dtype=torch.float64):
        cfg = MambaConfig.from_file(os.path.join(directory, "config.json"))
        tensors, _ = load_safetensors(os.path.join(directory, "model.safetensors"))
        return cls(cfg, tensors, dtype)

    # -- helpers -----------------------------------------------------------

    def p(self, name, default=None):
        return self.params.get(name, default)

    def head_weight(self):
        if self.cfg.tie_word_embeddings:
            return self.params["backbone.embeddings.weight"]
        return self.params["lm_head.weight"]

    def requires_grad_(self, flag=True):
        for t in self.params.values():
            t.requires_grad_(flag)
        return self

    def _ssm_inputs(self, i, x):
        """From conv output x (..., ED) compute delta (..., ED), B, C (..., N)."""
        cfg = self.cfg
        pre = f"backbone.layers.{i}.mixer."
        R, N = cfg.time_step_rank, cfg.state_size
        x_dbl = linear(x, self.params[pre + "x_proj.weight"])
        dt = x_dbl[..., :R]
        Bm = x_dbl[..., R : R + N]
        Cm = x_dbl[..., R + N : R + 2 * N]
        delta = softplus(linear(dt, self.params[pre + "dt_proj.weight"], self.params[pre + "dt_proj.bias"]))
        return delta, Bm, Cm

    # -- parallel forward -------------------------------------------------

    def mixer(self, i, u):
        """u: (B, L, D) -> (out (B, L, D), conv_state (B,ED,K), ssm_state (B,ED,N))."""
        cfg = self.cfg
        pre = f"backbone.layers.{i}.mixer."
        ED, K, N = cfg.intermediate_size, cfg.conv_kernel, cfg.state_size
        Bsz, L, _ = u.shape

        xz = linear(u, self.params[pre + "in_proj.weight"], self.p(pre + "in_proj.bias"))
        x_in, z = xz[..., :ED], xz[..., ED:]

        # causal depthwise conv over time: left-pad K-1, keep the first L outputs
        xt = x_in.transpose(1, 2)  # (B, ED, L)
        xc = F.conv1d(xt, self.params[pre + "conv1d.weight"], self.p(pre + "conv1d.bias"),
                      padding=K - 1, groups=ED)[..., :L]
        x = silu(xc.transpose(1, 2))  # (B, L, ED)

        # recurrent cache after this sequence: last K conv inputs, oldest first
        conv_state = F.pad(xt, (max(K - L, 0), 0))[..., -K:]

        delta, Bm, Cm = self._ssm_inputs(i, x)
        A = -torch.exp(self.params[pre + "A_log"])  # (ED, N)
        Dp = self.params[pre + "D"]

        h = torch.zeros(Bsz, ED, N, dtype=u.dtype)
        ys = []
        for t in range(L):
            dA = torch.exp(delta[:, t, :, None] * A)  # (B, ED, N)
            dBx = delta[:, t, :, None] * Bm[:, t, None, :] * x[:, t, :, None]
            h = dA * h + dBx
            y = (h * Cm[:, t, None, :]).sum(-1) + Dp * x[:, t]
            ys.append(y)
        y = torch.stack(ys, dim=1)  # (B, L, ED)

        out = linear(y * silu(z), self.params[pre + "out_proj.weight"], self.p(pre + "out_proj.bias"))
        return out, conv_state, h

    def forward(self, ids, return_states=False):
        """ids: (B, L) int64 -> logits (B, L, V) [, list of (conv_state, ssm_state)]."""
        cfg = self.cfg
        eps = cfg.layer_norm_epsilon
        h = self.params["backbone.embeddings.weight"][ids]
        states = []
        for i in range(cfg.num_hidden_layers):
            u = rmsnorm(h, self.params[f"backbone.layers.{i}.norm.weight"], eps)
            out, cs, ss = self.mixer(i, u)
            h = h + out
            states.append((cs, ss))
        h = rmsnorm(h, self.params["backbone.norm_f.weight"], eps)
        logits = linear(h, self.head_weight())
        return (logits, states) if return_states else logits

    __call__ = forward

    # -- recurrent step ---------------------------------------------------

    def init_state(self, batch):
        cfg = self.cfg
        ED, K, N = cfg.intermediate_size, cfg.conv_kernel, cfg.state_size
        return [
            (torch.zeros(batch, ED, K, dtype=self.dtype), torch.zeros(batch, ED, N, dtype=self.dtype))
            for _ in range(cfg.num_hidden_layers)
        ]

    def step(self, ids_t, state):
        """One token per batch row. ids_t: (B,), state: list of (conv (B,ED,K), ssm (B,ED,N)).

        Returns (logits (B, V), new_state).  The input state is not modified.
        """
        cfg = self.cfg
        eps = cfg.layer_norm_epsilon
        ED = cfg.intermediate_size
        h = self.params["backbone.embeddings.weight"][ids_t]  # (B, D)
        new_state = []
        for i in range(cfg.num_hidden_layers):
            pre = f"backbone.layers.{i}.mixer."
            conv_state, ssm_state = state[i]
            u = rmsnorm(h, self.params[f"backbone.layers.{i}.norm.weight"], eps)
            xz = linear(u, self.params[pre + "in_proj.weight"], self.p(pre + "in_proj.bias"))
            x_in, z = xz[:, :ED], xz[:, ED:]

            # shift the window left by one and append the newest input at K-1
            conv_state = torch.cat([conv_state[:, :, 1:], x_in[:, :, None]], dim=2)
            xc = (conv_state * self.params[pre + "conv1d.weight"][:, 0, :]).sum(-1)
            cb = self.p(pre + "conv1d.bias")
            if cb is not None:
                xc = xc + cb
            x = silu(xc)  # (B, ED)

            delta, Bm, Cm = self._ssm_inputs(i, x)
            A = -torch.exp(self.params[pre + "A_log"])
            ssm_state = torch.exp(delta[:, :, None] * A) * ssm_state + (delta * x)[:, :, None] * Bm[:, None, :]
            y = torch.einsum("bdn,bn->bd", ssm_state, Cm) + self.params[pre + "D"] * x

            out = linear(y * silu(z), self.params[pre + "out_proj.weight"], self.p(pre + "out_proj.bias"))
            h = h + out
            new_state.append((conv_state, ssm_state))
        h = rmsnorm(h, self.params["backbone.norm_f.weight"], eps)
        return linear(h, self.head_weight()), new_state

    def forward_by_steps(self, ids):
        """Run ``step`` over every position. Returns logits (B, L, V) and final state."""
        Bsz, L = ids.shape
        state = self.init_state(Bsz)
        outs = []
        for t in range(L):
            logits, state = self.step(ids[:, t], state)
            outs.append(logits)
        return torch.stack(outs, dim=1), state


def cross_entropy_mean(logits, targets):
    """Mean token cross-entropy in nats. logits (..., V), targets (...) int64."""
    logz = torch.logsumexp(logits, dim=-1)
    picked = torch.gather(logits, -1, targets[..., None])[..., 0]
    return (logz - picked).mean()
