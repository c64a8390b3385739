#!/usr/bin/python3
"""Plain PyTorch float64 reference of a Mamba-3 language model (SISO or MIMO), state-spaces' layout.

Written from the Mamba-3 block's description (no conv; in_proj -> [z | x | B | C | dt | a | trap |
angles]; B and C RMS-normalised then biased per head; Delta = softplus(dt + dt_bias);
A = -max(heavy_tail(a), A_floor) with heavy_tail(a) = 1 + a (a >= 0), 1 / (1 - a) (a < 0);
lambda = sigmoid(trap); rotary angles theta_t = theta_{t-1} + pi * tanh(angles_t) * Delta_t turning the
pairs (2i, 2i+1) of B and C; the trapezoidal update

    h_t = exp(A Delta_t) h_{t-1} + (1 - lambda_t) Delta_t exp(A Delta_t) v_{t-1} k_{t-1}^T + lambda_t Delta_t v_t k_t^T
    y_t = h_t q_t + D v_t,   out = out_proj(y * silu(z))

), not from the reference kernels' code. ``forward`` runs that recurrence; ``closed_form`` is the
same map written as attention, y_t = sum_{s<=t} c(t, s) (q_t . k_s) v_s + D v_t with
c(t, t) = lambda_t Delta_t and c(t, s) = prod_{r=s+1..t} exp(A_r Delta_r) (lambda_s Delta_s + (1 - lambda_{s+1}) Delta_{s+1}) for s < t,
used only to cross-check. Parameters are held under frugal's (Hugging Face style) names.

MIMO (ssm_cfg.is_mimo, R = mimo_rank): B and C hold R * G * N values per token, (rank, group, state);
each head has R keys k_{t,r} and queries q_{t,r} (biases B_bias, C_bias of shape (H, R, N)), its input
goes up to R values v_{t,r} = x_t * mimo_x[h, r], the state sums the ranks' outer products

    h_t = a_t h_{t-1} + b_t sum_r v_{t-1,r} k_{t-1,r}^T + g_t sum_r v_{t,r} k_{t,r}^T,   o_{t,r} = h_t q_{t,r} + D v_{t,r}

and the ranks come down after their own gates: y_t = sum_r o_{t,r} * silu(z_t * mimo_z[h, r]) * mimo_o[h, r],
out = out_proj(y). MIMO's kernels turn channel i with channel i + N/2 (SISO: 2i with 2i + 1).
"""

import json
import math
import os

import torch

from mamba_reference import linear, rmsnorm, silu, softplus

TWO_PI = 2 * math.pi


class Mamba3Config:
    def __init__(self, d):
        s = d.get("ssm_cfg", {})
        assert s.get("layer") == "Mamba3"
        self.hidden_size = int(d["d_model"])
        self.num_hidden_layers = int(d["n_layer"])
        multiple = int(d.get("pad_vocab_size_multiple", 8))
        self.vocab_size = -(-int(d["vocab_size"]) // multiple) * multiple
        self.tie = bool(d.get("tie_embeddings", True))
        self.d_state = int(s.get("d_state", 128))
        self.d_inner = int(s.get("expand", 2)) * self.hidden_size
        self.head_dim = int(s.get("headdim", 64))
        self.n_heads = self.d_inner // self.head_dim
        self.n_groups = int(s.get("ngroups", 1))
        split = int(self.d_state * float(s.get("rope_fraction", 0.5)))
        split -= split % 2
        self.n_angles = split // 2
        self.a_floor = float(s.get("A_floor", 1e-4))
        self.is_mimo = bool(s.get("is_mimo", False))
        self.rank = int(s.get("mimo_rank", 4)) if self.is_mimo else 1
        self.in_proj_dim = 2 * self.d_inner + 2 * self.rank * self.n_groups * self.d_state + 3 * self.n_heads + self.n_angles

    def param_shapes(self):
        D, N, H, R = self.hidden_size, self.d_state, self.n_heads, self.rank
        s = {"backbone.embeddings.weight": (self.vocab_size, D)}
        for i in range(self.num_hidden_layers):
            p = f"backbone.layers.{i}."
            s[p + "norm.weight"] = (D,)
            s[p + "mixer.in_proj.weight"] = (self.in_proj_dim, D)
            s[p + "mixer.dt_bias"] = (H,)
            s[p + "mixer.B_bias"] = (H, R, N)
            s[p + "mixer.C_bias"] = (H, R, N)
            if self.is_mimo:
                for w in ("mimo_x", "mimo_z", "mimo_o"):
                    s[p + "mixer." + w] = (H, R, self.head_dim)
            s[p + "mixer.B_norm.weight"] = (N,)
            s[p + "mixer.C_norm.weight"] = (N,)
            s[p + "mixer.D"] = (H,)
            s[p + "mixer.out_proj.weight"] = (D, self.d_inner)
        s["backbone.norm_f.weight"] = (D,)
        if not self.tie:
            s["lm_head.weight"] = (self.vocab_size, D)
        return s


def turn(x, theta, halves=False):
    """Rotate pairs of x (..., N) by theta (..., S): (2i, 2i+1), or (i, i + N/2) with halves; other channels are unchanged."""
    S, N = theta.shape[-1], x.shape[-1]
    c, s = torch.cos(theta), torch.sin(theta)
    if halves:
        h = N // 2
        a, b = x[..., :S], x[..., h:h + S]
        return torch.cat([a * c - b * s, x[..., S:h], a * s + b * c, x[..., h + S:]], dim=-1)
    a, b = x[..., 0:2 * S:2], x[..., 1:2 * S:2]
    turned = torch.stack([a * c - b * s, a * s + b * c], dim=-1).reshape(*x.shape[:-1], 2 * S)
    return torch.cat([turned, x[..., 2 * S:]], dim=-1)


class Mamba3LM:
    def __init__(self, cfg, params):
        self.cfg = cfg
        expected = cfg.param_shapes()
        assert set(expected) == set(params), (sorted(set(expected) ^ set(params)))
        self.params = {k: params[k].detach().to(torch.float64).clone() for k in expected}

    @classmethod
    def from_pretrained(cls, directory):
        with open(os.path.join(directory, "config.json")) as f:
            cfg = Mamba3Config(json.load(f))
        t = dict(torch.load(os.path.join(directory, "pytorch_model.bin")))
        t["backbone.embeddings.weight"] = t.pop("backbone.embedding.weight")
        if cfg.tie:
            t.pop("lm_head.weight", None)
        return cls(cfg, t)

    def requires_grad_(self, flag=True):
        for t in self.params.values():
            t.requires_grad_(flag)
        return self

    def inputs(self, i, u):
        """u (..., D) -> z, x (..., H, P), q0, k0 (..., R, H, N) before rotation, dt, adt, lam (..., H), angles (..., S)."""
        c, m = self.cfg, f"backbone.layers.{i}.mixer."
        ED, GN, H, N, R = c.d_inner, c.rank * c.n_groups * c.d_state, c.n_heads, c.d_state, c.rank
        pr = linear(u, self.params[m + "in_proj.weight"])
        o = [0, ED, 2 * ED, 2 * ED + GN, 2 * ED + 2 * GN, 2 * ED + 2 * GN + H, 2 * ED + 2 * GN + 2 * H, 2 * ED + 2 * GN + 3 * H, c.in_proj_dim]
        z, x, Bp, Cp, dt, a, tr, ang = [pr[..., o[j]:o[j + 1]] for j in range(8)]
        # (..., R, G, N) normalised over N, then each group's heads take its values: (..., R, H, N)
        per_head = lambda t, w: rmsnorm(t.reshape(*t.shape[:-1], R, c.n_groups, N), w, 1e-5).repeat_interleave(H // c.n_groups, dim=-2)
        Bn = per_head(Bp, self.params[m + "B_norm.weight"])
        Cn = per_head(Cp, self.params[m + "C_norm.weight"])
        q0 = Cn + self.params[m + "C_bias"].transpose(0, 1)
        k0 = Bn + self.params[m + "B_bias"].transpose(0, 1)
        delta = softplus(dt + self.params[m + "dt_bias"])
        heavy = torch.where(a >= 0, 1 + a, 1 / (1 - a))
        A = -torch.clamp(heavy, min=c.a_floor)
        return z, x.reshape(*x.shape[:-1], H, c.head_dim), q0, k0, delta, A * delta, torch.sigmoid(tr), torch.tanh(ang) * math.pi

    def ranks_in(self, i, x):
        """x (..., H, P) -> v (..., R, H, P): MIMO's inputs per rank (SISO: x itself, one rank)."""
        if not self.cfg.is_mimo:
            return x.unsqueeze(-3)
        return x.unsqueeze(-3) * self.params[f"backbone.layers.{i}.mixer.mimo_x"].transpose(0, 1)

    def ranks_out(self, i, o, z):
        """o (..., R, H, P), z (..., H * P) -> out_proj of the gated, gathered output."""
        c, m = self.cfg, f"backbone.layers.{i}.mixer."
        if c.is_mimo:
            zr = z.reshape(*z.shape[:-1], c.n_heads, c.head_dim).unsqueeze(-3) * self.params[m + "mimo_z"].transpose(0, 1)
            y = (o * silu(zr) * self.params[m + "mimo_o"].transpose(0, 1)).sum(-3)
            return linear(y.reshape(*y.shape[:-2], -1), self.params[m + "out_proj.weight"])
        return linear(o.squeeze(-3).reshape(*z.shape) * silu(z), self.params[m + "out_proj.weight"])

    def step_mixer(self, i, u, st):
        """One token: u (B, D), st = (theta (B,H,S), h (B,H,P,N), k_prev (B,R,H,N), v_prev (B,R,H,P))."""
        c, m = self.cfg, f"backbone.layers.{i}.mixer."
        theta, h, kp, vp = st
        z, x, q0, k0, dt, adt, lam, ang = self.inputs(i, u)
        theta = theta + ang[:, None, :] * dt[..., None]
        theta = theta - TWO_PI * torch.floor(theta / TWO_PI)
        q, k = turn(q0, theta[:, None], c.is_mimo), turn(k0, theta[:, None], c.is_mimo)   # (B, R, H, N)
        v = self.ranks_in(i, x)                                                             # (B, R, H, P)
        al = torch.exp(adt)
        be, ga = (1 - lam) * dt * al, lam * dt
        h = (al[..., None, None] * h + be[..., None, None] * torch.einsum("brhp,brhn->bhpn", vp, kp)
             + ga[..., None, None] * torch.einsum("brhp,brhn->bhpn", v, k))
        o = torch.einsum("bhpn,brhn->brhp", h, q) + self.params[m + "D"][:, None] * v
        return self.ranks_out(i, o, z), (theta, h, k, v)

    def closed_form_mixer(self, i, u):
        """The same layer on u (B, L, D) as causal attention with the trapezoid's weights."""
        c, m = self.cfg, f"backbone.layers.{i}.mixer."
        z, x, q0, k0, dt, adt, lam, ang = self.inputs(i, u)
        theta = torch.cumsum(ang[:, :, None, :] * dt[..., None], dim=1)[:, :, None]   # (B, L, 1, H, S), unreduced: same cos/sin
        q, k = turn(q0, theta, c.is_mimo), turn(k0, theta, c.is_mimo)                 # (B, L, R, H, N)
        v = self.ranks_in(i, x)                                                          # (B, L, R, H, P)
        L = u.shape[1]
        o = self.params[m + "D"][:, None] * v
        for t in range(L):
            for s in range(t + 1):
                if s == t:
                    w = lam[:, t] * dt[:, t]
                else:
                    w = torch.exp(adt[:, s + 1:t + 1].sum(1)) * (lam[:, s] * dt[:, s] + (1 - lam[:, s + 1]) * dt[:, s + 1])
                # every query rank R' of token t meets every key rank r of token s
                score = torch.einsum("bRhn,brhn->bRrh", q[:, t], k[:, s]) * w[:, None, None, :]
                o[:, t] = o[:, t] + torch.einsum("bRrh,brhp->bRhp", score, v[:, s])
        return self.ranks_out(i, o, z)

    def init_state(self, batch):
        c = self.cfg
        z = lambda *s: torch.zeros(batch, *s, dtype=torch.float64)
        return [(z(c.n_heads, c.n_angles), z(c.n_heads, c.head_dim, c.d_state), z(c.rank, c.n_heads, c.d_state), z(c.rank, c.n_heads, c.head_dim))
                for _ in range(c.num_hidden_layers)]

    def head(self):
        return self.params["backbone.embeddings.weight" if self.cfg.tie else "lm_head.weight"]

    def step(self, ids_t, state):
        h = self.params["backbone.embeddings.weight"][ids_t]
        new = []
        for i in range(self.cfg.num_hidden_layers):
            out, st = self.step_mixer(i, rmsnorm(h, self.params[f"backbone.layers.{i}.norm.weight"], 1e-5), state[i])
            h = h + out
            new.append(st)
        return linear(rmsnorm(h, self.params["backbone.norm_f.weight"], 1e-5), self.head()), new

    def forward_by_steps(self, ids):
        state, outs = self.init_state(ids.shape[0]), []
        for t in range(ids.shape[1]):
            logits, state = self.step(ids[:, t], state)
            outs.append(logits)
        return torch.stack(outs, 1), state

    def forward(self, ids):
        """The parallel form: every layer as closed_form_mixer."""
        h = self.params["backbone.embeddings.weight"][ids]
        for i in range(self.cfg.num_hidden_layers):
            h = h + self.closed_form_mixer(i, rmsnorm(h, self.params[f"backbone.layers.{i}.norm.weight"], 1e-5))
        return linear(rmsnorm(h, self.params["backbone.norm_f.weight"], 1e-5), self.head())

    __call__ = forward
