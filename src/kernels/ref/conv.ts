import type { F } from './types.js';

/**
 * Causal depthwise 1-D convolution over time (Mamba's conv1d with padding K-1, truncated to L):
 *   out[b,t,c] = bias[c] + Σ_{k<K} w[c,k] · x[b, t-(K-1)+k, c]     (x = 0 before t = 0)
 * Channels last: x and out are (B, L, C); w is (C, K) (PyTorch's (C, 1, K)); bias is (C).
 */

/** out (B, L, C) <- x (B, L, C), w (C, K), bias (C): conv1dPrefill from an empty state */
export function conv1dForward(out: F, x: F, w: F, bias: F, B: number, L: number, C: number, K: number): void {
  conv1dPrefill(out, x, null, w, bias, B, L, C, K);
}

/** dx (B, L, C) += …, dw (C, K) += …, dbias (C) += … <- dout (B, L, C), x, w */
export function conv1dBackward(dx: F, dw: F, dbias: F, dout: F, x: F, w: F, B: number, L: number, C: number, K: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const o = (b * L + t) * C;
      for (let c = 0; c < C; c++) {
        const g = dout[o + c];
        dbias[c] += g;
        for (let k = 0; k < K; k++) {
          const tt = t - (K - 1) + k;
          if (tt >= 0) {
            const xi = (b * L + tt) * C + c;
            dw[c * K + k] += g * x[xi];
            dx[xi] += g * w[c * K + k];
          }
        }
      }
    }
  }
}

/**
 * One recurrent step. state (B, C, K) holds the last K inputs, oldest first; it is shifted left
 * and x appended, then out = bias + Σ_k w[c,k]·state[b,c,k].
 * out (B, C) <- x (B, C), state (B, C, K) updated in place, w (C, K), bias (C)
 */
export function conv1dStep(out: F, state: F, x: F, w: F, bias: F, B: number, C: number, K: number): void {
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const s0 = (b * C + c) * K;
      for (let k = 0; k < K - 1; k++) state[s0 + k] = state[s0 + k + 1];
      state[s0 + K - 1] = x[b * C + c];
      let s = bias[c];
      for (let k = 0; k < K; k++) s += w[c * K + k] * state[s0 + k];
      out[b * C + c] = s;
    }
  }
}

/**
 * After a parallel pass over L tokens, the state a step would have: the last K inputs (zero-padded
 * on the left when L < K), appended to the previous state when prefilling from a non-empty state.
 * state (B, C, K) updated <- x (B, L, C)
 */
export function conv1dFillState(state: F, x: F, B: number, L: number, C: number, K: number): void {
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const s0 = (b * C + c) * K;
      for (let k = 0; k < K; k++) {
        const t = L - K + k; // input index that lands at slot k
        if (t >= 0) state[s0 + k] = x[(b * L + t) * C + c];
        else state[s0 + k] = state[s0 + k + L] ?? 0; // shifted-in older value (k + L < K here)
      }
    }
  }
}

/**
 * The parallel conv of a prefill that continues from a recurrent state: inputs before t = 0 come
 * from state (B, C, K) (slot K-1 is the newest) instead of zeros; a null state means zeros (the
 * training forward, conv1dForward).
 * out (B, L, C) <- x (B, L, C), state (B, C, K) or null, w (C, K), bias (C)
 */
export function conv1dPrefill(out: F, x: F, state: F | null, w: F, bias: F, B: number, L: number, C: number, K: number): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const o = (b * L + t) * C;
      for (let c = 0; c < C; c++) {
        let s = bias[c];
        for (let k = 0; k < K; k++) {
          const tt = t - (K - 1) + k;
          if (tt >= 0) s += w[c * K + k] * x[(b * L + tt) * C + c];
          else if (state !== null) s += w[c * K + k] * state[(b * C + c) * K + K + tt];
        }
        out[o + c] = s;
      }
    }
  }
}
