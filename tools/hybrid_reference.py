#!/usr/bin/python3
"""Plain PyTorch reference implementation of a Bamba-style hybrid language model.

Written from the architecture's description (IBM's Bamba, transformers' BambaForCausalLM names
and config keys), not from its code: every layer is

    h = h + mixer(RMSNorm(h; input_layernorm))      mixer: Mamba-2 block or attention
    h = h + MLP(RMSNorm(h; pre_ff_layernorm))        MLP: down(silu(gate(x)) * up(x))

then final_layernorm and lm_head. Attention layers sit at attn_layer_indices: grouped-query
attention, scale 1/sqrt(head_dim), causal softmax, with rotary embeddings on the first
partial_rotary_factor * head_dim channels of each query and key head (rotate_half layout,
frequencies theta^(-2i/rd)). The Mamba-2 mixer is tools/mamba2_reference.py's (its gated norm
normalises groups of d_inner / n_groups; this fixture has one group, where every reading agrees).

Everything in float64: a parallel forward, a recurrent step with conv / SSM states and a KV cache.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

from mamba_reference import linear, load_safetensors, rmsnorm, silu, softplus
from mamba2_reference import gated_group_rmsnorm, ssd_recurrent


class BambaConfig:
    def __init__(self, d):
        self.raw = dict(d)
        self.hidden_size = int(d["hidden_size"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.vocab_size = int(d["vocab_size"])
        self.intermediate_size = int(d["intermediate_size"])
        self.num_attention_heads = int(d["num_attention_heads"])
        self.num_key_value_heads = int(d.get("num_key_value_heads", self.num_attention_heads))
        self.head_dim = int(d.get("head_dim", self.hidden_size // self.num_attention_heads))
        self.rotary_dim = 2 * int(self.head_dim * float(d.get("partial_rotary_factor", 0.5)) / 2)
        self.rope_theta = float(d.get("rope_theta", 10000.0))
        self.rms_norm_eps = float(d.get("rms_norm_eps", 1e-5))
        self.attn = set(d.get("attn_layer_indices") or [])
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", False))
        self.n_heads = int(d["mamba_n_heads"])
        self.expand = int(d.get("mamba_expand", 2))
        self.d_inner = self.expand * self.hidden_size
        self.m_head_dim = self.d_inner // self.n_heads
        self.n_groups = int(d.get("mamba_n_groups", 1))
        self.d_state = int(d.get("mamba_d_state", 256))
        self.d_conv = int(d.get("mamba_d_conv", 4))
        self.conv_bias = bool(d.get("mamba_conv_bias", True))
        self.proj_bias = bool(d.get("mamba_proj_bias", False))
        lim = d.get("time_step_limit", [0.0, math.inf])
        self.time_step_limit = (lim[0], lim[1])
        self.conv_dim = self.d_inner + 2 * self.n_groups * self.d_state
        self.in_proj_dim = self.d_inner + self.conv_dim + self.n_heads

    @classmethod
    def from_file(cls, path):
        with open(path) as f:
            return cls(json.load(f))


class BambaLM:
    def __init__(self, cfg, params):
        self.cfg = cfg
        self.params = {k: v.detach().to(torch.float64).clone() for k, v in params.items()}

    @classmethod
    def from_pretrained(cls, directory):
        cfg = BambaConfig.from_file(os.path.join(directory, "config.json"))
        tensors, _ = load_safetensors(os.path.join(directory, "model.safetensors"))
        return cls(cfg, tensors)

    def p(self, name):
        return self.params.get(name)

    def requires_grad_(self, flag=True):
        for t in self.params.values():
            t.requires_grad_(flag)
        return self

    def head(self):
        return self.params["model.embed_tokens.weight" if self.cfg.tie_word_embeddings else "lm_head.weight"]

    # -- sub-blocks --------------------------------------------------------------

    def rotate(self, x, positions):
        """x (..., L, heads, hd): turn the first rotary_dim channels of each head by position."""
        rd, half = self.cfg.rotary_dim, self.cfg.rotary_dim // 2
        inv = self.cfg.rope_theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / rd)
        ang = positions.to(torch.float64)[:, None] * inv[None, :]          # (L, rd/2)
        cos = torch.cos(ang)[:, None, :]
        sin = torch.sin(ang)[:, None, :]
        x1, x2, rest = x[..., :half], x[..., half:rd], x[..., rd:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)

    def qkv(self, i, x, positions):
        c, a = self.cfg, f"model.layers.{i}.self_attn."
        H, Hkv, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        q = linear(x, self.params[a + "q_proj.weight"], self.p(a + "q_proj.bias"))
        k = linear(x, self.params[a + "k_proj.weight"], self.p(a + "k_proj.bias"))
        v = linear(x, self.params[a + "v_proj.weight"], self.p(a + "v_proj.bias"))
        q = self.rotate(q.reshape(*q.shape[:-1], H, hd), positions)
        k = self.rotate(k.reshape(*k.shape[:-1], Hkv, hd), positions)
        return q, k, v.reshape(*v.shape[:-1], Hkv, hd)

    def attend(self, i, q, k, v, first):
        """q (B, Lq, H, hd) at positions first.., k/v (B, Lk, Hkv, hd) from position 0 -> (B, Lq, D)."""
        c, a = self.cfg, f"model.layers.{i}.self_attn."
        rep = c.num_attention_heads // c.num_key_value_heads
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(c.head_dim)
        Lq, Lk = q.shape[1], k.shape[1]
        allowed = torch.arange(Lk)[None, :] <= (first + torch.arange(Lq))[:, None]
        s = s.masked_fill(~allowed, -math.inf)
        o = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(s, dim=-1), v)
        return linear(o.reshape(*o.shape[:2], -1), self.params[a + "o_proj.weight"], self.p(a + "o_proj.bias"))

    def mlp(self, i, x):
        f = f"model.layers.{i}.feed_forward."
        g = linear(x, self.params[f + "gate_proj.weight"], self.p(f + "gate_proj.bias"))
        u = linear(x, self.params[f + "up_proj.weight"], self.p(f + "up_proj.bias"))
        return linear(silu(g) * u, self.params[f + "down_proj.weight"], self.p(f + "down_proj.bias"))

    def ssm_inputs(self, i, xBC, dt):
        c, m = self.cfg, f"model.layers.{i}.mamba."
        ED, GN, H = c.d_inner, c.n_groups * c.d_state, c.n_heads
        x = xBC[..., :ED].reshape(*xBC.shape[:-1], H, c.m_head_dim)
        per_head = lambda t: t.reshape(*t.shape[:-1], c.n_groups, c.d_state).repeat_interleave(H // c.n_groups, dim=-2)
        delta = torch.clamp(softplus(dt + self.params[m + "dt_bias"]), min=c.time_step_limit[0], max=c.time_step_limit[1])
        return x, delta, -torch.exp(self.params[m + "A_log"]), per_head(xBC[..., ED:ED + GN]), per_head(xBC[..., ED + GN:])

    def mamba_out(self, i, y, x, z):
        c, m = self.cfg, f"model.layers.{i}.mamba."
        y = (y + self.params[m + "D"][:, None] * x).reshape(*y.shape[:-2], c.d_inner)
        y = gated_group_rmsnorm(y, z, self.params[m + "norm.weight"], c.n_groups, c.rms_norm_eps)
        return linear(y, self.params[m + "out_proj.weight"], self.p(m + "out_proj.bias"))

    def mamba(self, i, u):
        c, m = self.cfg, f"model.layers.{i}.mamba."
        K, L = c.d_conv, u.shape[1]
        zxbcdt = linear(u, self.params[m + "in_proj.weight"], self.p(m + "in_proj.bias"))
        z, xBC, dt = zxbcdt[..., :c.d_inner], zxbcdt[..., c.d_inner:c.d_inner + c.conv_dim], zxbcdt[..., c.d_inner + c.conv_dim:]
        xt = xBC.transpose(1, 2)
        conv = F.conv1d(xt, self.params[m + "conv1d.weight"], self.p(m + "conv1d.bias"), padding=K - 1, groups=c.conv_dim)[..., :L]
        x, delta, A, Bm, Cm = self.ssm_inputs(i, silu(conv.transpose(1, 2)), dt)
        y, h = ssd_recurrent(x, delta, A, Bm, Cm)
        return self.mamba_out(i, y, x, z), (F.pad(xt, (max(K - L, 0), 0))[..., -K:], h)

    # -- whole model ----------------------------------------------------------------

    def forward(self, ids, return_states=False):
        c = self.cfg
        h = self.params["model.embed_tokens.weight"][ids]
        L, states = ids.shape[1], []
        for i in range(c.num_hidden_layers):
            u = rmsnorm(h, self.params[f"model.layers.{i}.input_layernorm.weight"], c.rms_norm_eps)
            if i in c.attn:
                q, k, v = self.qkv(i, u, torch.arange(L))
                out, st = self.attend(i, q, k, v, 0), (k, v)
            else:
                out, st = self.mamba(i, u)
            h = h + out
            h = h + self.mlp(i, rmsnorm(h, self.params[f"model.layers.{i}.pre_ff_layernorm.weight"], c.rms_norm_eps))
            states.append(st)
        logits = linear(rmsnorm(h, self.params["model.final_layernorm.weight"], c.rms_norm_eps), self.head())
        return (logits, states) if return_states else logits

    __call__ = forward

    def step(self, ids_t, state, position):
        """One token per stream at `position`; state: per layer (conv, ssm) or the (k, v) cache so far."""
        c = self.cfg
        h = self.params["model.embed_tokens.weight"][ids_t]
        new = []
        for i in range(c.num_hidden_layers):
            u = rmsnorm(h, self.params[f"model.layers.{i}.input_layernorm.weight"], c.rms_norm_eps)
            if i in c.attn:
                q, k, v = self.qkv(i, u[:, None], torch.tensor([position]))
                kc, vc = state[i] if state[i] is not None else (k[:, :0], v[:, :0])
                kc, vc = torch.cat([kc, k], 1), torch.cat([vc, v], 1)
                out = self.attend(i, q, kc, vc, position)[:, 0]
                new.append((kc, vc))
            else:
                m = f"model.layers.{i}.mamba."
                conv_state, ssm_state = state[i] if state[i] is not None else (
                    torch.zeros(ids_t.shape[0], c.conv_dim, c.d_conv, dtype=torch.float64),
                    torch.zeros(ids_t.shape[0], c.n_heads, c.m_head_dim, c.d_state, dtype=torch.float64))
                zxbcdt = linear(u, self.params[m + "in_proj.weight"], self.p(m + "in_proj.bias"))
                z, xBC, dt = zxbcdt[..., :c.d_inner], zxbcdt[..., c.d_inner:c.d_inner + c.conv_dim], zxbcdt[..., c.d_inner + c.conv_dim:]
                conv_state = torch.cat([conv_state[:, :, 1:], xBC[:, :, None]], dim=2)
                xc = (conv_state * self.params[m + "conv1d.weight"][:, 0, :]).sum(-1)
                if self.p(m + "conv1d.bias") is not None:
                    xc = xc + self.params[m + "conv1d.bias"]
                x, delta, A, Bm, Cm = self.ssm_inputs(i, silu(xc), dt)
                ssm_state = torch.exp(delta * A)[:, :, None, None] * ssm_state + (delta[..., None] * x)[..., None] * Bm[:, :, None, :]
                out = self.mamba_out(i, torch.einsum("bhpn,bhn->bhp", ssm_state, Cm), x, z)
                new.append((conv_state, ssm_state))
            h = h + out
            h = h + self.mlp(i, rmsnorm(h, self.params[f"model.layers.{i}.pre_ff_layernorm.weight"], c.rms_norm_eps))
        return linear(rmsnorm(h, self.params["model.final_layernorm.weight"], c.rms_norm_eps), self.head()), new

    def forward_by_steps(self, ids):
        state = [None] * self.cfg.num_hidden_layers
        outs = []
        for t in range(ids.shape[1]):
            logits, state = self.step(ids[:, t], state, t)
            outs.append(logits)
        return torch.stack(outs, 1), state
