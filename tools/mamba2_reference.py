#!/usr/bin/python3
"""Plain PyTorch reference implementation of a Mamba-2 causal language model.

Written from the Mamba-2 paper (Dao & Gu 2024, "Transformers are SSMs") and the block's
description (in_proj -> [z | xBC | dt], causal depthwise conv + SiLU over xBC, x | B | C with G
groups, per-head scalar decay, gated RMSNorm over groups, out_proj), not from any existing
implementation, so that it can serve as an independent check of the TypeScript engine. It uses
Hugging Face's Mamba2ForCausalLM parameter names and reads both transformers' config.json
(model_type "mamba2") and state-spaces' (ssm_cfg.layer "Mamba2").

Everything runs in float64. The SSM is the token-by-token recurrence
    h_t = exp(dt_t * A_h) h_{t-1} + dt_t x_t B_t^T,   y_t = h_t C_t + D_h x_t
and ``ssd_chunked`` is the paper's block decomposition of the same map, used only to cross-check.

Note on n_groups > 1: the gated norm here normalises each group of d_inner / n_groups channels
(state-spaces' RMSNormGated with group_size); transformers' pure-PyTorch path normalises the
whole d_inner at once, which differs when n_groups > 1.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

from mamba_reference import cross_entropy_mean, linear, load_safetensors, rmsnorm, silu, softplus  # noqa: F401


class Mamba2Config:
    """The keys that shape the forward pass, from either published config.json layout."""

    def __init__(self, d):
        self.raw = dict(d)
        if "d_model" in d and "model_type" not in d:  # state-spaces layout
            s = d.get("ssm_cfg", {})
            assert s.get("layer") == "Mamba2"
            self.hidden_size = int(d["d_model"])
            self.num_hidden_layers = int(d["n_layer"])
            multiple = int(d.get("pad_vocab_size_multiple", 8))
            self.vocab_size = -(-int(d["vocab_size"]) // multiple) * multiple
            self.state_size = int(s.get("d_state", 128))
            self.conv_kernel = int(s.get("d_conv", 4))
            self.expand = int(s.get("expand", 2))
            self.head_dim = int(s.get("headdim", 64))
            self.n_groups = int(s.get("ngroups", 1))
            self.chunk_size = int(s.get("chunk_size", 256))
            self.use_bias = bool(s.get("bias", False))
            self.use_conv_bias = bool(s.get("conv_bias", True))
            self.time_step_limit = tuple(s.get("dt_limit", (0.0, math.inf)))
            self.layer_norm_epsilon = 1e-5
            self.tie_word_embeddings = bool(d.get("tie_embeddings", True))
            self.layout = "original"
        else:
            self.hidden_size = int(d["hidden_size"])
            self.num_hidden_layers = int(d["num_hidden_layers"])
            self.vocab_size = int(d["vocab_size"])
            self.state_size = int(d.get("state_size", 128))
            self.conv_kernel = int(d.get("conv_kernel", 4))
            self.expand = int(d.get("expand", 2))
            self.head_dim = int(d.get("head_dim", 64))
            self.n_groups = int(d.get("n_groups", 8))
            self.chunk_size = int(d.get("chunk_size", 256))
            self.use_bias = bool(d.get("use_bias", False))
            self.use_conv_bias = bool(d.get("use_conv_bias", True))
            self.time_step_limit = tuple(d.get("time_step_limit", (0.0, math.inf)))
            self.layer_norm_epsilon = float(d.get("layer_norm_epsilon", 1e-5))
            self.tie_word_embeddings = bool(d.get("tie_word_embeddings", False))
            self.layout = "hf"
        self.intermediate_size = self.expand * self.hidden_size
        self.num_heads = self.intermediate_size // self.head_dim
        assert self.num_heads * self.head_dim == self.intermediate_size
        assert self.num_heads % self.n_groups == 0
        self.conv_dim = self.intermediate_size + 2 * self.n_groups * self.state_size
        self.in_proj_dim = self.intermediate_size + self.conv_dim + self.num_heads

    @classmethod
    def from_file(cls, path):
        with open(path) as f:
            return cls(json.load(f))  # Python's json reads the bare Infinity transformers writes

    def param_shapes(self):
        D, ED, H, K = self.hidden_size, self.intermediate_size, self.num_heads, self.conv_kernel
        s = {"backbone.embeddings.weight": (self.vocab_size, D)}
        for i in range(self.num_hidden_layers):
            p = f"backbone.layers.{i}."
            s[p + "norm.weight"] = (D,)
            s[p + "mixer.in_proj.weight"] = (self.in_proj_dim, D)
            if self.use_bias:
                s[p + "mixer.in_proj.bias"] = (self.in_proj_dim,)
            s[p + "mixer.conv1d.weight"] = (self.conv_dim, 1, K)
            if self.use_conv_bias:
                s[p + "mixer.conv1d.bias"] = (self.conv_dim,)
            s[p + "mixer.dt_bias"] = (H,)
            s[p + "mixer.A_log"] = (H,)
            s[p + "mixer.D"] = (H,)
            s[p + "mixer.norm.weight"] = (ED,)
            s[p + "mixer.out_proj.weight"] = (D, ED)
            if self.use_bias:
                s[p + "mixer.out_proj.bias"] = (D,)
        s["backbone.norm_f.weight"] = (D,)
        if not self.tie_word_embeddings:
            s["lm_head.weight"] = (self.vocab_size, D)
        return s


def gated_group_rmsnorm(y, z, w, groups, eps):
    """RMSNorm of y * silu(z) over `groups` equal groups of the last dim, times w."""
    g = y * silu(z)
    shape = g.shape
    gg = g.reshape(*shape[:-1], groups, shape[-1] // groups)
    gg = gg * torch.rsqrt(torch.mean(gg * gg, dim=-1, keepdim=True) + eps)
    return gg.reshape(shape) * w


def ssd_recurrent(x, dt, A, Bm, Cm, h0=None):
    """x (B, L, H, P), dt (B, L, H), A (H), Bm/Cm (B, L, H, N) per head -> y (B, L, H, P), h (B, H, P, N)."""
    Bsz, L, H, P = x.shape
    N = Bm.shape[-1]
    h = torch.zeros(Bsz, H, P, N, dtype=x.dtype) if h0 is None else h0
    ys = []
    for t in range(L):
        decay = torch.exp(dt[:, t] * A)  # (B, H)
        h = decay[:, :, None, None] * h + (dt[:, t, :, None] * x[:, t])[..., None] * Bm[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, Cm[:, t]))
    return torch.stack(ys, 1), h


def ssd_chunked(x, dt, A, Bm, Cm, Q):
    """The same map by blocks of Q tokens (zero padding after discretisation): diagonal blocks as
    masked attention-like products, off-diagonal blocks through the states at chunk boundaries."""
    Bsz, L, H, P = x.shape
    pad = (-L) % Q
    a = F.pad(dt * A, (0, 0, 0, pad))                      # (B, L', H): discretised, then padded
    xd = F.pad(dt[..., None] * x, (0, 0, 0, 0, 0, pad))     # (B, L', H, P)
    Bp = F.pad(Bm, (0, 0, 0, 0, 0, pad))
    Cp = F.pad(Cm, (0, 0, 0, 0, 0, pad))
    C = (L + pad) // Q
    a, xd, Bp, Cp = [t.reshape(Bsz, C, Q, *t.shape[2:]) for t in (a, xd, Bp, Cp)]
    # segment sums a_{j+1} + ... + a_i summed term by term, -inf above the diagonal
    seg = torch.full((Bsz, C, H, Q, Q), -math.inf, dtype=x.dtype)
    for i in range(Q):
        seg[..., i, i] = 0
        for j in range(i - 1, -1, -1):
            seg[..., i, j] = seg[..., i, j + 1] + a[:, :, j + 1, :]
    Lm = torch.exp(seg)
    y_diag = torch.einsum("bcihn,bcjhn,bchij,bcjhp->bcihp", Cp, Bp, Lm, xd)
    cs = torch.cumsum(a, dim=2)                            # (B, C, Q, H)
    to_end = torch.exp(cs[:, :, -1:, :] - cs)              # decay from each token to the chunk end
    states = torch.einsum("bcjhn,bcjh,bcjhp->bchpn", Bp, to_end, xd)
    h = torch.zeros(Bsz, H, P, Bm.shape[-1], dtype=x.dtype)
    entering = []
    for c in range(C):
        entering.append(h)
        h = torch.exp(cs[:, c, -1, :])[:, :, None, None] * h + states[:, c]
    entering = torch.stack(entering, 1)                    # (B, C, H, P, N)
    y_off = torch.einsum("bcihn,bchpn,bcih->bcihp", Cp, entering, torch.exp(cs))
    y = (y_diag + y_off).reshape(Bsz, C * Q, H, P)[:, :L]
    return y, h


class Mamba2LM:
    """Mamba-2 LM with parameters held in a flat dict keyed by HF names."""

    def __init__(self, config, params, dtype=torch.float64):
        self.cfg = config
        expected = config.param_shapes()
        missing = sorted(set(expected) - set(params))
        extra = sorted(set(params) - set(expected))
        assert not missing and not extra, (missing, extra)
        self.params = {}
        for name, shape in expected.items():
            t = params[name]
            assert tuple(t.shape) == tuple(shape), (name, t.shape, shape)
            self.params[name] = t.detach().to(dtype).clone()

    @classmethod
    def from_pretrained(cls, directory, dtype=torch.float64):
        cfg = Mamba2Config.from_file(os.path.join(directory, "config.json"))
        if cfg.layout == "hf":
            tensors, _ = load_safetensors(os.path.join(directory, "model.safetensors"))
        else:
            tensors = dict(torch.load(os.path.join(directory, "pytorch_model.bin")))
            tensors["backbone.embeddings.weight"] = tensors.pop("backbone.embedding.weight")
            if cfg.tie_word_embeddings:
                tensors.pop("lm_head.weight", None)
        return cls(cfg, tensors, dtype)

    def p(self, name):
        return self.params.get(name)

    def head_weight(self):
        return self.params["backbone.embeddings.weight" if self.cfg.tie_word_embeddings else "lm_head.weight"]

    def requires_grad_(self, flag=True):
        for t in self.params.values():
            t.requires_grad_(flag)
        return self

    def _split(self, zxbcdt):
        c = self.cfg
        ED = c.intermediate_size
        return zxbcdt[..., :ED], zxbcdt[..., ED:ED + c.conv_dim], zxbcdt[..., ED + c.conv_dim:]

    def _ssm_inputs(self, i, xBC, dt):
        """Post-conv xBC (..., CD), raw dt (..., H) -> x (..., H, P), dt, A, B and C per head (..., H, N)."""
        c, pre = self.cfg, f"backbone.layers.{i}.mixer."
        ED, GN, H = c.intermediate_size, c.n_groups * c.state_size, c.num_heads
        x = xBC[..., :ED].reshape(*xBC.shape[:-1], H, c.head_dim)
        per_head = lambda t: t.reshape(*t.shape[:-1], c.n_groups, c.state_size).repeat_interleave(H // c.n_groups, dim=-2)
        Bm, Cm = per_head(xBC[..., ED:ED + GN]), per_head(xBC[..., ED + GN:])
        lo, hi = c.time_step_limit
        delta = torch.clamp(softplus(dt + self.params[pre + "dt_bias"]), min=lo, max=hi)
        A = -torch.exp(self.params[pre + "A_log"])
        return x, delta, A, Bm, Cm

    def _out(self, i, y, x, z):
        c, pre = self.cfg, f"backbone.layers.{i}.mixer."
        y = y + self.params[pre + "D"][:, None] * x
        y = y.reshape(*y.shape[:-2], c.intermediate_size)
        y = gated_group_rmsnorm(y, z, self.params[pre + "norm.weight"], c.n_groups, c.layer_norm_epsilon)
        return linear(y, self.params[pre + "out_proj.weight"], self.p(pre + "out_proj.bias"))

    def mixer(self, i, u, chunked=False):
        """u (B, L, D) -> out (B, L, D), conv_state (B, CD, K), ssm_state (B, H, P, N)."""
        c, pre = self.cfg, f"backbone.layers.{i}.mixer."
        K, L = c.conv_kernel, u.shape[1]
        z, xBC, dt = self._split(linear(u, self.params[pre + "in_proj.weight"], self.p(pre + "in_proj.bias")))
        xt = xBC.transpose(1, 2)  # (B, CD, L)
        conv = F.conv1d(xt, self.params[pre + "conv1d.weight"], self.p(pre + "conv1d.bias"), padding=K - 1, groups=c.conv_dim)[..., :L]
        conv_state = F.pad(xt, (max(K - L, 0), 0))[..., -K:]
        x, delta, A, Bm, Cm = self._ssm_inputs(i, silu(conv.transpose(1, 2)), dt)
        y, h = ssd_chunked(x, delta, A, Bm, Cm, c.chunk_size) if chunked else ssd_recurrent(x, delta, A, Bm, Cm)
        return self._out(i, y, x, z), conv_state, h

    def forward(self, ids, return_states=False, chunked=False):
        c, eps = self.cfg, self.cfg.layer_norm_epsilon
        h = self.params["backbone.embeddings.weight"][ids]
        states = []
        for i in range(c.num_hidden_layers):
            out, cs, ss = self.mixer(i, rmsnorm(h, self.params[f"backbone.layers.{i}.norm.weight"], eps), chunked)
            h = h + out
            states.append((cs, ss))
        logits = linear(rmsnorm(h, self.params["backbone.norm_f.weight"], eps), self.head_weight())
        return (logits, states) if return_states else logits

    __call__ = forward

    def init_state(self, batch):
        c = self.cfg
        return [(torch.zeros(batch, c.conv_dim, c.conv_kernel, dtype=torch.float64),
                 torch.zeros(batch, c.num_heads, c.head_dim, c.state_size, dtype=torch.float64))
                for _ in range(c.num_hidden_layers)]

    def step(self, ids_t, state):
        """One token per stream: ids_t (B,), state list of (conv (B, CD, K), ssm (B, H, P, N)) -> logits (B, V), new state."""
        c, eps = self.cfg, self.cfg.layer_norm_epsilon
        h = self.params["backbone.embeddings.weight"][ids_t]
        new_state = []
        for i in range(c.num_hidden_layers):
            pre = f"backbone.layers.{i}.mixer."
            conv_state, ssm_state = state[i]
            u = rmsnorm(h, self.params[f"backbone.layers.{i}.norm.weight"], eps)
            z, xBC, dt = self._split(linear(u, self.params[pre + "in_proj.weight"], self.p(pre + "in_proj.bias")))
            conv_state = torch.cat([conv_state[:, :, 1:], xBC[:, :, None]], dim=2)
            xc = (conv_state * self.params[pre + "conv1d.weight"][:, 0, :]).sum(-1)
            if self.p(pre + "conv1d.bias") is not None:
                xc = xc + self.params[pre + "conv1d.bias"]
            x, delta, A, Bm, Cm = self._ssm_inputs(i, silu(xc), dt)
            decay = torch.exp(delta * A)  # (B, H)
            ssm_state = decay[:, :, None, None] * ssm_state + (delta[..., None] * x)[..., None] * Bm[:, :, None, :]
            y = torch.einsum("bhpn,bhn->bhp", ssm_state, Cm)
            h = h + self._out(i, y, x, z)
            new_state.append((conv_state, ssm_state))
        return linear(rmsnorm(h, self.params["backbone.norm_f.weight"], eps), self.head_weight()), new_state

    def forward_by_steps(self, ids):
        state = self.init_state(ids.shape[0])
        outs = []
        for t in range(ids.shape[1]):
            logits, state = self.step(ids[:, t], state)
            outs.append(logits)
        return torch.stack(outs, 1), state
