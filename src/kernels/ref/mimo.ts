import type { F } from './types.js';

/**
 * Mamba-3 MIMO's per-head rank projections (state-spaces mamba3.py's mimo_x, mimo_z, mimo_o, each
 * (H, R, P)): the input and the gate go up from one channel vector per head to R of them, the
 * scan's R outputs come down to one, each channel weighted per head and rank.
 */

/**
 * MIMO's up-projection: out (M, H, R, P) = x (M, H, P) ⊙ w (H, R, P), broadcast over the ranks.
 */
export function mimoUpForward(out: F, x: F, w: F, M: number, H: number, R: number, P: number): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++)
      for (let r = 0; r < R; r++) {
        const o = ((m * H + h) * R + r) * P,
          xo = (m * H + h) * P,
          wo = (h * R + r) * P;
        for (let p = 0; p < P; p++) out[o + p] = x[xo + p] * w[wo + p];
      }
}

/** dx (M, H, P) += Σ_r dout ⊙ w; dw (H, R, P) += Σ_m dout ⊙ x (either may be null). */
export function mimoUpBackward(dx: F | null, dw: F | null, dout: F, x: F, w: F, M: number, H: number, R: number, P: number): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++)
      for (let r = 0; r < R; r++) {
        const o = ((m * H + h) * R + r) * P,
          xo = (m * H + h) * P,
          wo = (h * R + r) * P;
        for (let p = 0; p < P; p++) {
          if (dx) dx[xo + p] += dout[o + p] * w[wo + p];
          if (dw) dw[wo + p] += dout[o + p] * x[xo + p];
        }
      }
}

/** MIMO's down-projection: out (M, H, P) = Σ_r o (M, H, R, P) ⊙ w (H, R, P). */
export function mimoDownForward(out: F, o: F, w: F, M: number, H: number, R: number, P: number): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++) {
      const yo = (m * H + h) * P;
      for (let p = 0; p < P; p++) out[yo + p] = 0;
      for (let r = 0; r < R; r++) {
        const oo = ((m * H + h) * R + r) * P,
          wo = (h * R + r) * P;
        for (let p = 0; p < P; p++) out[yo + p] += o[oo + p] * w[wo + p];
      }
    }
}

/** do (M, H, R, P) += dout ⊙ w; dw (H, R, P) += Σ_m dout ⊙ o (either may be null). */
export function mimoDownBackward(dO: F | null, dw: F | null, dout: F, o: F, w: F, M: number, H: number, R: number, P: number): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++)
      for (let r = 0; r < R; r++) {
        const oo = ((m * H + h) * R + r) * P,
          yo = (m * H + h) * P,
          wo = (h * R + r) * P;
        for (let p = 0; p < P; p++) {
          if (dO) dO[oo + p] += dout[yo + p] * w[wo + p];
          if (dw) dw[wo + p] += dout[yo + p] * o[oo + p];
        }
      }
}
