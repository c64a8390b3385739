import type { F } from './types.js';

/**
 * Mamba-3 MIMO's per-head rank projections (state-spaces mamba3.py's mimo_x, mimo_z, mimo_o, each
 * (H, R, P)): the input and the gate go up from one channel vector per head to R of them, the
 * scan's R outputs come down to one, each channel weighted per head and rank. Each one's input
 * gradient is the other one's product with the same weights, accumulated.
 */

/** out (M, H, R, P) (=, or += with acc) x (M, H, P) ⊙ w (H, R, P), broadcast over the ranks. */
function up(out: F, x: F, w: F, M: number, H: number, R: number, P: number, acc: boolean): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++)
      for (let r = 0; r < R; r++) {
        const o = ((m * H + h) * R + r) * P,
          xo = (m * H + h) * P,
          wo = (h * R + r) * P;
        for (let p = 0; p < P; p++) out[o + p] = (acc ? out[o + p] : 0) + x[xo + p] * w[wo + p];
      }
}

/** out (M, H, P) (=, or += with acc) Σ_r o (M, H, R, P) ⊙ w (H, R, P). */
function down(out: F, o: F, w: F, M: number, H: number, R: number, P: number, acc: boolean): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++) {
      const yo = (m * H + h) * P;
      if (!acc) for (let p = 0; p < P; p++) out[yo + p] = 0;
      for (let r = 0; r < R; r++) {
        const oo = ((m * H + h) * R + r) * P,
          wo = (h * R + r) * P;
        for (let p = 0; p < P; p++) out[yo + p] += o[oo + p] * w[wo + p];
      }
    }
}

/** dw (H, R, P) += Σ_m ranked (M, H, R, P) ⊙ plain (M, H, P): the weights' gradient of either projection. */
function weightGrad(dw: F, ranked: F, plain: F, M: number, H: number, R: number, P: number): void {
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++)
      for (let r = 0; r < R; r++) {
        const o = ((m * H + h) * R + r) * P,
          xo = (m * H + h) * P,
          wo = (h * R + r) * P;
        for (let p = 0; p < P; p++) dw[wo + p] += ranked[o + p] * plain[xo + p];
      }
}

/** MIMO's up-projection: out (M, H, R, P) = x (M, H, P) ⊙ w (H, R, P), broadcast over the ranks. */
export function mimoUpForward(out: F, x: F, w: F, M: number, H: number, R: number, P: number): void {
  up(out, x, w, M, H, R, P, false);
}

/** dx (M, H, P) += Σ_r dout ⊙ w; dw (H, R, P) += Σ_m dout ⊙ x (either may be null). */
export function mimoUpBackward(dx: F | null, dw: F | null, dout: F, x: F, w: F, M: number, H: number, R: number, P: number): void {
  if (dx) down(dx, dout, w, M, H, R, P, true);
  if (dw) weightGrad(dw, dout, x, M, H, R, P);
}

/** MIMO's down-projection: out (M, H, P) = Σ_r o (M, H, R, P) ⊙ w (H, R, P). */
export function mimoDownForward(out: F, o: F, w: F, M: number, H: number, R: number, P: number): void {
  down(out, o, w, M, H, R, P, false);
}

/** dO (M, H, R, P) += dout ⊙ w; dw (H, R, P) += Σ_m dout ⊙ o (either may be null). */
export function mimoDownBackward(dO: F | null, dw: F | null, dout: F, o: F, w: F, M: number, H: number, R: number, P: number): void {
  if (dO) up(dO, dout, w, M, H, R, P, true);
  if (dw) weightGrad(dw, o, dout, M, H, R, P);
}
