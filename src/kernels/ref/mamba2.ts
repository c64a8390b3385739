import type { F } from './types.js';
import { sigmoid, softplus1 } from './elementwise.js';

/**
 * The elementwise kernels around Mamba-2's SSD (state-spaces mamba2.py, layernorm_gated.py).
 * Backward kernels ACCUMULATE into their gradients, like every backward in frugal.
 */

/**
 * Step sizes Δ = clamp(softplus(dt + dt_bias), lo, hi), the bias broadcast over rows; the clamp is
 * the checkpoint's time_step_limit ((0, ∞) by default, which softplus never leaves).
 * out, dt (rows, H); bias (H)
 */
export function dtSoftplusForward(out: F, dt: F, bias: F, rows: number, H: number, lo: number, hi: number): void {
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < H; h++) out[r * H + h] = Math.min(hi, Math.max(lo, softplus1(dt[r * H + h] + bias[h])));
  }
}

/**
 * ddt (rows, H) += dout·sigmoid(dt + bias), dbias (H) += its column sums; zero where the clamp
 * bites (a value strictly outside [lo, hi] before clamping, as torch.clamp's gradient).
 */
export function dtSoftplusBackward(ddt: F, dbias: F, dout: F, dt: F, bias: F, rows: number, H: number, lo: number, hi: number): void {
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < H; h++) {
      const v = dt[r * H + h] + bias[h],
        sp = softplus1(v);
      const g = sp < lo || sp > hi ? 0 : dout[r * H + h] * sigmoid(v);
      ddt[r * H + h] += g;
      dbias[h] += g;
    }
  }
}

/**
 * Gated RMSNorm with the gate first (norm_before_gate = False): g = y ⊙ silu(z), normalised over
 * groups of gs consecutive channels, times the weight:
 *   out = g · rstd_group · w,   rstd = 1 / sqrt(mean_group(g²) + eps)
 * out, y, z (rows, D); w (D); rstd (rows, D/gs) saved for the backward.
 */
export function gatedRmsnormForward(out: F, rstd: F, y: F, z: F, w: F, rows: number, D: number, gs: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < D / gs; k++) {
      const o = r * D + k * gs;
      let ss = 0;
      for (let i = 0; i < gs; i++) {
        const gv = y[o + i] * z[o + i] * sigmoid(z[o + i]);
        ss += gv * gv;
      }
      const rs = 1 / Math.sqrt(ss / gs + eps);
      rstd[r * (D / gs) + k] = rs;
      for (let i = 0; i < gs; i++) out[o + i] = y[o + i] * z[o + i] * sigmoid(z[o + i]) * rs * w[k * gs + i];
    }
  }
}

/**
 * dy, dz (rows, D) += …, dw (D) += … <- dout (rows, D), y, z, w, rstd (rows, D/gs). With
 * ĝ = g·rstd: dw += Σ_rows dout·ĝ; dg = rstd·(dout·w − ĝ·mean_group(dout·w·ĝ)); then
 * dy += dg·silu(z), dz += dg·y·silu'(z).
 */
export function gatedRmsnormBackward(dy: F, dz: F, dw: F, dout: F, y: F, z: F, w: F, rstd: F, rows: number, D: number, gs: number): void {
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < D / gs; k++) {
      const o = r * D + k * gs,
        rs = rstd[r * (D / gs) + k];
      let dot = 0;
      for (let i = 0; i < gs; i++) dot += dout[o + i] * w[k * gs + i] * y[o + i] * z[o + i] * sigmoid(z[o + i]) * rs;
      const m = dot / gs;
      for (let i = 0; i < gs; i++) {
        const zi = z[o + i],
          s = sigmoid(zi),
          silu = zi * s,
          ghat = y[o + i] * silu * rs;
        dw[k * gs + i] += dout[o + i] * ghat;
        const dg = rs * (dout[o + i] * w[k * gs + i] - ghat * m);
        dy[o + i] += dg * silu;
        dz[o + i] += dg * y[o + i] * (s + zi * s * (1 - s));
      }
    }
  }
}
