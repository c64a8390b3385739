import type { F } from './types.js';
import { sigmoid } from './elementwise.js';

/**
 * The transformer baseline's differentiable kernels: rotary position embeddings, causal softmax
 * attention, and the SwiGLU gate. Layouts are the linear layers' natural outputs:
 *   q (B, L, H, hd), k and v (B, L, Hkv, hd), out (B, L, H, hd); query head h reads kv head
 *   g = floor(h / (H / Hkv)) (grouped-query attention; Hkv = H is plain multi-head attention).
 * Backward kernels ACCUMULATE into the input gradients (dx += …), like every backward in frugal.
 */

/** inv_freq[i] = theta^(-2i / hd), i < hd/2: the per-pair rotation frequencies of RoPE. */
function inverseFrequencies(hd: number, theta: number): Float64Array {
  const half = hd >> 1,
    f = new Float64Array(half);
  for (let i = 0; i < half; i++) f[i] = theta ** ((-2 * i) / hd);
  return f;
}

/**
 * RoPE (Su et al. 2021) in Hugging Face Llama's `rotate_half` convention: the two halves of each
 * head, not interleaved pairs, are rotated together:
 *   out[i]        = x[i]·cos(p·f_i) − x[i + hd/2]·sin(p·f_i)
 *   out[i + hd/2] = x[i + hd/2]·cos(p·f_i) + x[i]·sin(p·f_i)
 * for the position p = pos0 + t of row t. Angles are computed in float64 (transformers computes
 * them in float32, which drifts by ~p·2^-24 rad at large p). out may alias x.
 * out, x (B, L, H, hd)
 */
export function ropeForward(out: F, x: F, B: number, L: number, H: number, hd: number, pos0: number, theta: number): void {
  rotate(out, x, B, L, H, hd, pos0, theta, 1, false);
}

/** dx (B, L, H, hd) += Rᵀ·dout: the rotation's transpose is the rotation by −angle. */
export function ropeBackward(dx: F, dout: F, B: number, L: number, H: number, hd: number, pos0: number, theta: number): void {
  rotate(dx, dout, B, L, H, hd, pos0, theta, -1, true);
}

/** out = R(sign·angle)·x in the rotate_half layout, overwriting or (acc) accumulating; out may alias x when overwriting. */
function rotate(out: F, x: F, B: number, L: number, H: number, hd: number, pos0: number, theta: number, sign: 1 | -1, acc: boolean): void {
  const half = hd >> 1,
    f = inverseFrequencies(hd, theta);
  for (let t = 0; t < L; t++) {
    const p = pos0 + t;
    for (let i = 0; i < half; i++) {
      const c = Math.cos(p * f[i]),
        s = sign * Math.sin(p * f[i]);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          const o = ((b * L + t) * H + h) * hd + i;
          const x1 = x[o],
            x2 = x[o + half];
          const y1 = x1 * c - x2 * s,
            y2 = x2 * c + x1 * s;
          if (acc) {
            out[o] += y1;
            out[o + half] += y2;
          } else {
            out[o] = y1;
            out[o + half] = y2;
          }
        }
      }
    }
  }
}

/**
 * Causal scaled dot-product attention over positions 0..L-1 of each stream (the training path):
 *   s_ij = q_i·k_j / sqrt(hd) for j ≤ i;  p_ij = softmax_j(s_ij);  out_i = Σ_j p_ij v_j
 * The softmax is max-shifted (no overflow for any finite scores). lse_i = log Σ_j exp(s_ij) is
 * saved so the backward recomputes p without storing the (L, L) matrix (as FlashAttention does).
 * out (B, L, H, hd), lse (B, H, L) <- q (B, L, H, hd), k, v (B, L, Hkv, hd)
 */
export function attentionForward(out: F, lse: F, q: F, k: F, v: F, B: number, L: number, H: number, Hkv: number, hd: number): void {
  const scale = 1 / Math.sqrt(hd),
    group = H / Hkv;
  const s = new Float64Array(L); // one score row, reused
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < L; i++) {
        const qo = ((b * L + i) * H + h) * hd;
        let m = -Infinity;
        for (let j = 0; j <= i; j++) {
          const ko = ((b * L + j) * Hkv + g) * hd;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qo + d] * k[ko + d];
          s[j] = dot * scale;
          if (s[j] > m) m = s[j];
        }
        let z = 0;
        for (let j = 0; j <= i; j++) {
          s[j] = Math.exp(s[j] - m);
          z += s[j];
        }
        for (let d = 0; d < hd; d++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += s[j] * v[((b * L + j) * Hkv + g) * hd + d];
          out[qo + d] = acc / z;
        }
        lse[(b * H + h) * L + i] = m + Math.log(z);
      }
    }
  }
}

/**
 * dq (B, L, H, hd), dk, dv (B, L, Hkv, hd) += … <- dout, q, k, v, out, lse (from the forward).
 * With p_ij = exp(s_ij − lse_i) and D_i = dout_i·out_i:
 *   dv_j += p_ij·dout_i;  ds_ij = p_ij·(dout_i·v_j − D_i);
 *   dq_i += ds_ij·k_j / sqrt(hd);  dk_j += ds_ij·q_i / sqrt(hd)
 */
export function attentionBackward(
  dq: F,
  dk: F,
  dv: F,
  dout: F,
  q: F,
  k: F,
  v: F,
  out: F,
  lse: F,
  B: number,
  L: number,
  H: number,
  Hkv: number,
  hd: number,
): void {
  const scale = 1 / Math.sqrt(hd),
    group = H / Hkv;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < L; i++) {
        const qo = ((b * L + i) * H + h) * hd,
          l = lse[(b * H + h) * L + i];
        let Di = 0;
        for (let d = 0; d < hd; d++) Di += dout[qo + d] * out[qo + d];
        for (let j = 0; j <= i; j++) {
          const ko = ((b * L + j) * Hkv + g) * hd;
          let dot = 0,
            dp = 0;
          for (let d = 0; d < hd; d++) {
            dot += q[qo + d] * k[ko + d];
            dp += dout[qo + d] * v[ko + d];
          }
          const p = Math.exp(dot * scale - l);
          const ds = p * (dp - Di) * scale;
          for (let d = 0; d < hd; d++) {
            dv[ko + d] += p * dout[qo + d];
            dq[qo + d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
  }
}

/** SwiGLU (Shazeer 2020), Llama's MLP gate: out (n) = silu(gate) ⊙ up */
export function swigluForward(out: F, gate: F, up: F, n: number): void {
  for (let i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

/** dgate (n) += dout·up·silu'(gate);  dup (n) += dout·silu(gate);  silu'(x) = s(1 + x(1 − s)) */
export function swigluBackward(dgate: F, dup: F, dout: F, gate: F, up: F, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = gate[i],
      s = sigmoid(x);
    dgate[i] += dout[i] * up[i] * s * (1 + x * (1 - s));
    dup[i] += dout[i] * x * s;
  }
}
