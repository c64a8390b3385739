#!/usr/bin/python3
"""Plain PyTorch reference implementation of a Llama-architecture causal language model.

It mirrors the parameter layout and config keys of Hugging Face's ``LlamaForCausalLM``
(``model.embed_tokens.weight``, ``model.layers.{i}.self_attn.q_proj.weight``, ...,
``model.norm.weight``, ``lm_head.weight`` unless tied) but is written from the math, not
from that code base, so that it can serve as an independent check for the TypeScript
engine (transformers itself is not needed). Everything runs in float64 by default.

Contents
  * ``LlamaConfig``: the config.json keys that matter for the forward pass.
  * ``LlamaLM``: parallel forward over (B, L) and a ``step`` that appends to a KV cache.
  * ``rope``: rotary embedding in the ``rotate_half`` convention (halves, not pairs).

The safetensors reader/writer is shared with ``mamba_reference.py``.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

from mamba_reference import load_safetensors, save_safetensors  # noqa: F401  (re-exported)


class LlamaConfig:
    """The forward-pass keys of transformers' LlamaConfig, with its defaults."""

    def __init__(self, d):
        self.raw = dict(d)
        self.hidden_size = d["hidden_size"]
        self.num_hidden_layers = d["num_hidden_layers"]
        self.num_attention_heads = d["num_attention_heads"]
        self.num_key_value_heads = d.get("num_key_value_heads") or self.num_attention_heads
        self.head_dim = d.get("head_dim") or self.hidden_size // self.num_attention_heads
        self.intermediate_size = d["intermediate_size"]
        self.vocab_size = d["vocab_size"]
        self.rms_norm_eps = d.get("rms_norm_eps", 1e-6)
        self.rope_theta = d.get("rope_theta", 10000.0)
        self.attention_bias = d.get("attention_bias", False)
        self.mlp_bias = d.get("mlp_bias", False)
        self.tie_word_embeddings = d.get("tie_word_embeddings", False)
        assert d.get("hidden_act", "silu") == "silu"
        assert d.get("rope_scaling") is None

    @classmethod
    def from_file(cls, path):
        with open(path) as f:
            return cls(json.load(f))

    def param_shapes(self):
        """name -> shape, in the order the model uses them."""
        D, H, Hkv, hd = self.hidden_size, self.num_attention_heads, self.num_key_value_heads, self.head_dim
        Fw, V = self.intermediate_size, self.vocab_size
        shapes = {"model.embed_tokens.weight": (V, D)}
        for i in range(self.num_hidden_layers):
            p = f"model.layers.{i}"
            shapes[f"{p}.input_layernorm.weight"] = (D,)
            for proj, rows in (("q_proj", H * hd), ("k_proj", Hkv * hd), ("v_proj", Hkv * hd)):
                shapes[f"{p}.self_attn.{proj}.weight"] = (rows, D)
                if self.attention_bias:
                    shapes[f"{p}.self_attn.{proj}.bias"] = (rows,)
            shapes[f"{p}.self_attn.o_proj.weight"] = (D, H * hd)
            if self.attention_bias:
                shapes[f"{p}.self_attn.o_proj.bias"] = (D,)
            shapes[f"{p}.post_attention_layernorm.weight"] = (D,)
            for proj, shape in (("gate_proj", (Fw, D)), ("up_proj", (Fw, D)), ("down_proj", (D, Fw))):
                shapes[f"{p}.mlp.{proj}.weight"] = shape
                if self.mlp_bias:
                    shapes[f"{p}.mlp.{proj}.bias"] = (shape[0],)
        shapes["model.norm.weight"] = (D,)
        if not self.tie_word_embeddings:
            shapes["lm_head.weight"] = (V, D)
        return shapes


def rmsnorm(x, w, eps):
    """w * x / sqrt(mean(x^2) + eps) over the last dimension."""
    return w * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def rope(x, positions, theta):
    """Rotate x (..., L, hd) at positions (L,): pairs (i, i + hd/2) turn by positions * theta^(-2i/hd)."""
    hd = x.shape[-1]
    half = hd // 2
    inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # (hd/2,)
    ang = positions.to(torch.float64)[:, None] * inv_freq[None, :]           # (L, hd/2)
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class LlamaLM:
    """Decoder-only transformer: pre-RMSNorm, rotary multi-head causal attention, SwiGLU MLP."""

    def __init__(self, config, params, dtype=torch.float64):
        self.cfg = config
        self.dtype = dtype
        self.params = {k: v.to(dtype) for k, v in params.items()}
        expected = config.param_shapes()
        extra = set(self.params) - set(expected) - {"lm_head.weight"}
        assert not extra, f"unexpected tensors {sorted(extra)}"
        for name, shape in expected.items():
            assert tuple(self.params[name].shape) == tuple(shape), (name, self.params[name].shape, shape)

    @classmethod
    def from_pretrained(cls, directory, dtype=torch.float64):
        cfg = LlamaConfig.from_file(os.path.join(directory, "config.json"))
        tensors, _ = load_safetensors(os.path.join(directory, "model.safetensors"))
        if cfg.tie_word_embeddings:
            tensors.pop("lm_head.weight", None)
        return cls(cfg, tensors, dtype)

    def p(self, name):
        return self.params.get(name)

    def head_weight(self):
        if self.cfg.tie_word_embeddings:
            return self.params["model.embed_tokens.weight"]
        return self.params["lm_head.weight"]

    def requires_grad_(self, flag=True):
        for t in self.params.values():
            t.requires_grad_(flag)

    def _qkv(self, i, x, positions):
        """q (B, H, L, hd), k and v (B, Hkv, L, hd) of layer i for x (B, L, D) at positions (L,)."""
        c, a = self.cfg, f"model.layers.{i}.self_attn"
        Bsz, L, _ = x.shape
        q = linear(x, self.p(f"{a}.q_proj.weight"), self.p(f"{a}.q_proj.bias"))
        k = linear(x, self.p(f"{a}.k_proj.weight"), self.p(f"{a}.k_proj.bias"))
        v = linear(x, self.p(f"{a}.v_proj.weight"), self.p(f"{a}.v_proj.bias"))
        q = q.view(Bsz, L, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = k.view(Bsz, L, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = v.view(Bsz, L, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        return rope(q, positions, c.rope_theta), rope(k, positions, c.rope_theta), v

    def _attend(self, i, q, k, v, offset):
        """softmax(q k^T / sqrt(hd), causal) v for queries at offset.. against keys 0..; -> (B, Lq, H*hd)."""
        c, a = self.cfg, f"model.layers.{i}.self_attn"
        group = c.num_attention_heads // c.num_key_value_heads
        k = k.repeat_interleave(group, dim=1)  # kv head g serves query heads g*group .. g*group+group-1
        v = v.repeat_interleave(group, dim=1)
        Lq, Lk = q.shape[2], k.shape[2]
        scores = q @ k.transpose(-1, -2) / math.sqrt(c.head_dim)  # (B, H, Lq, Lk)
        qpos = torch.arange(offset, offset + Lq)[:, None]
        kpos = torch.arange(Lk)[None, :]
        scores = scores.masked_fill(kpos > qpos, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v                   # (B, H, Lq, hd)
        out = out.transpose(1, 2).reshape(q.shape[0], Lq, -1)
        return linear(out, self.p(f"{a}.o_proj.weight"), self.p(f"{a}.o_proj.bias"))

    def _mlp(self, i, x):
        m = f"model.layers.{i}.mlp"
        g = linear(x, self.p(f"{m}.gate_proj.weight"), self.p(f"{m}.gate_proj.bias"))
        u = linear(x, self.p(f"{m}.up_proj.weight"), self.p(f"{m}.up_proj.bias"))
        return linear(F.silu(g) * u, self.p(f"{m}.down_proj.weight"), self.p(f"{m}.down_proj.bias"))

    def _run(self, ids, cache, offset):
        """Logits for ids (B, L) at positions offset.., appending keys/values to cache (list of [k, v])."""
        c = self.cfg
        h = self.params["model.embed_tokens.weight"][ids]
        positions = torch.arange(offset, offset + ids.shape[1])
        for i in range(c.num_hidden_layers):
            p = f"model.layers.{i}"
            x = rmsnorm(h, self.p(f"{p}.input_layernorm.weight"), c.rms_norm_eps)
            q, k, v = self._qkv(i, x, positions)
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], dim=2)
                v = torch.cat([cache[i][1], v], dim=2)
            cache[i] = [k, v]
            h = h + self._attend(i, q, k, v, offset)
            h = h + self._mlp(i, rmsnorm(h, self.p(f"{p}.post_attention_layernorm.weight"), c.rms_norm_eps))
        h = rmsnorm(h, self.params["model.norm.weight"], c.rms_norm_eps)
        return h @ self.head_weight().T

    def init_cache(self):
        return [None] * self.cfg.num_hidden_layers

    def forward(self, ids):
        """Parallel forward: logits (B, L, V) for ids (B, L)."""
        return self._run(ids, self.init_cache(), 0)

    __call__ = forward

    def step(self, ids_t, cache, position):
        """One token per stream (B,) at `position`; returns logits (B, V), cache extended in place."""
        return self._run(ids_t[:, None], cache, position)[:, 0]

    def forward_by_steps(self, ids):
        """Logits (B, L, V) and the final cache from L successive steps."""
        cache = self.init_cache()
        out = [self.step(ids[:, t], cache, t) for t in range(ids.shape[1])]
        return torch.stack(out, 1), cache


def cross_entropy_mean(logits, targets):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="mean")
