import type { F } from './types.js';
import { sigmoid, softplus1 } from './elementwise.js';

/**
 * The Mamba-1 mixer's decoding step (one token per stream), fused around its products:
 *   [x | z] = xz (B, 2ED);  xc = silu(conv step of x)              (mambaConvStep)
 *   [dt | B | C] = xdbl (B, R + 2N) = x_proj(xc)                     (a product, outside)
 *   Δ = softplus(dt·dtWᵀ + dtBias);  h = exp(Δ·A) ⊙ h + Δ·x·B;  y = C·h + D·x;  out = y ⊙ silu(z)
 *                                                                     (mambaScanStep)
 * The same as conv1dStep, siluForward, sliceColumns, matmulNT, addBias, softplusForward, scanStep,
 * siluForward and mul in a row, without the intermediate copies.
 */

/**
 * xc (B, ED) = silu(bias + Σ_k w[d,k]·window[b,d,k]) after the window state (B, ED, K) is shifted
 * left with x = xz[:, :ED] appended. xz (B, 2ED), w (ED, K), bias (ED).
 */
export function mambaConvStep(xc: F, state: F, xz: F, w: F, bias: F, B: number, ED: number, K: number): void {
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < ED; d++) {
      const s0 = (b * ED + d) * K;
      for (let k = 0; k < K - 1; k++) state[s0 + k] = state[s0 + k + 1];
      if (K > 0) state[s0 + K - 1] = xz[b * 2 * ED + d];
      let s = bias[d];
      for (let k = 0; k < K; k++) s += w[d * K + k] * state[s0 + k];
      xc[b * ED + d] = s * sigmoid(s);
    }
  }
}

/**
 * out (B, ED) = y ⊙ silu(z), delta (B, ED) = Δ; h (B, ED, N) advanced. xc (B, ED), xdbl (B, R + 2N),
 * xz (B, 2ED), dtW (ED, R), dtBias (ED), A (ED, N) = −exp(A_log), D (ED).
 */
export function mambaScanStep(
  out: F,
  delta: F,
  h: F,
  xc: F,
  xdbl: F,
  xz: F,
  dtW: F,
  dtBias: F,
  A: F,
  D: F,
  B: number,
  ED: number,
  N: number,
  R: number,
): void {
  mambaScanStepRange(out, delta, h, xc, xdbl, xz, dtW, dtBias, A, D, B, ED, N, R, 0, B * ED);
}

/** mambaScanStep restricted to the (stream, channel) pairs c = b·ED + d in [c0, c1). */
export function mambaScanStepRange(
  out: F,
  delta: F,
  h: F,
  xc: F,
  xdbl: F,
  xz: F,
  dtW: F,
  dtBias: F,
  A: F,
  D: F,
  _B: number, // the range says which streams
  ED: number,
  N: number,
  R: number,
  c0: number,
  c1: number,
): void {
  const S = R + 2 * N;
  for (let c = c0; c < c1; c++) {
    const b = Math.floor(c / ED),
      d = c % ED,
      row = b * S;
    let dt = dtBias[d];
    for (let r = 0; r < R; r++) dt += xdbl[row + r] * dtW[d * R + r];
    const dl = softplus1(dt),
      xt = xc[c];
    delta[c] = dl;
    let acc = 0;
    for (let n = 0; n < N; n++) {
      const hn = Math.exp(dl * A[d * N + n]) * h[c * N + n] + dl * xt * xdbl[row + R + n];
      h[c * N + n] = hn;
      acc += xdbl[row + R + N + n] * hn;
    }
    const z = xz[b * 2 * ED + ED + d];
    out[c] = (acc + D[d] * xt) * z * sigmoid(z);
  }
}

/** delta (M, ED) = softplus(dtp + bias), bias (ED) broadcast over the rows (prefill: dt_proj's bias and softplus at once). */
export function mambaDeltaPrefill(delta: F, dtp: F, bias: F, M: number, ED: number): void {
  for (let r = 0; r < M; r++) for (let c = 0; c < ED; c++) delta[r * ED + c] = softplus1(dtp[r * ED + c] + bias[c]);
}

/** out (M, ED) = y ⊙ silu(z) with z = xz[:, ED:] (xz (M, 2ED)): the prefill's gate, z read in place. */
export function mambaGatePrefill(out: F, y: F, xz: F, M: number, ED: number): void {
  for (let r = 0; r < M; r++) {
    for (let c = 0; c < ED; c++) {
      const z = xz[r * 2 * ED + ED + c];
      out[r * ED + c] = y[r * ED + c] * z * sigmoid(z);
    }
  }
}
