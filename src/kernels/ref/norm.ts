import type { F } from './types.js';

/**
 * RMSNorm (Zhang & Sennrich 2019), as Mamba and Llama use it:
 *   out = x · rstd · w,  rstd = 1 / sqrt(mean(x²) + eps)
 * The forward saves rstd (rows) for the backward.
 */

/** out (rows, D), rstd (rows) <- x (rows, D), w (D) */
export function rmsnormForward(out: F, rstd: F, x: F, w: F, rows: number, D: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[o + i] * x[o + i];
    const rs = 1 / Math.sqrt(ss / D + eps);
    rstd[r] = rs;
    for (let i = 0; i < D; i++) out[o + i] = x[o + i] * rs * w[i];
  }
}

/**
 * dx (rows, D) += …, dw (D) += … <- dout (rows, D), x, w, rstd (rows)
 * With xhat = x·rstd:  dw += Σ_rows dout·xhat;
 *   dx = rstd · (dout·w − xhat · mean(dout·w·xhat))
 */
export function rmsnormBackward(dx: F, dw: F, dout: F, x: F, w: F, rstd: F, rows: number, D: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    const rs = rstd[r];
    let dot = 0;
    for (let i = 0; i < D; i++) dot += dout[o + i] * w[i] * x[o + i] * rs;
    const m = dot / D;
    for (let i = 0; i < D; i++) {
      const xhat = x[o + i] * rs;
      dw[i] += dout[o + i] * xhat;
      dx[o + i] += rs * (dout[o + i] * w[i] - xhat * m);
    }
  }
}

/**
 * The residual add fused with the next RMSNorm (one pass over the stream instead of two):
 *   hOut = h + delta;  out = RMSNorm(hOut)·w
 * hOut, out (rows, D), rstd (rows) <- h, delta (rows, D), w (D). hOut may alias h.
 */
export function addRmsnormForward(hOut: F, out: F, rstd: F, h: F, delta: F, w: F, rows: number, D: number, eps: number): void {
  for (let i = 0; i < rows * D; i++) hOut[i] = h[i] + delta[i];
  rmsnormForward(out, rstd, hOut, w, rows, D, eps);
}
