import type { F } from './types.js';

/**
 * Selective scan (Mamba-1, Gu & Dao 2023, Algorithm 2), per batch b and channel d, state size N:
 *   h_t = exp(Δ_t·A_d) ⊙ h_{t-1} + Δ_t·x_t·B_t          (h_t ∈ R^N)
 *   y_t = C_t · h_t + D_d·x_t
 * Shapes: x, delta, y (B, L, ED); Bm, Cm (B, L, N); A (ED, N); D (ED); h (B, ED, N);
 * hck (B, nChunks, ED, N) with nChunks = ceil(L / chunk).
 *
 * The forward saves h at the start of every `chunk` steps (hck). The backward walks the chunks
 * from last to first, recomputes the states inside a chunk forward from its checkpoint, then
 * back-propagates through them. It never recovers h_{t-1} by dividing by exp(Δ·A), which would
 * overflow or lose all precision when Δ·A is very negative.
 */

/**
 * y (B, L, ED) <- …; h (B, ED, N) holds the initial state on entry and the final state on exit;
 * hck (B, nChunks, ED, N) receives the state at the start of each chunk (pass null to skip).
 */
export function scanForward(
  y: F,
  h: F,
  hck: F | null,
  x: F,
  delta: F,
  A: F,
  Bm: F,
  Cm: F,
  D: F,
  B: number,
  L: number,
  ED: number,
  N: number,
  chunk: number,
): void {
  const nChunks = Math.ceil(L / chunk);
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < ED; d++) {
      const h0 = (b * ED + d) * N;
      for (let t = 0; t < L; t++) {
        if (hck !== null && t % chunk === 0) {
          const c0 = ((b * nChunks + t / chunk) * ED + d) * N;
          for (let n = 0; n < N; n++) hck[c0 + n] = h[h0 + n];
        }
        const i = (b * L + t) * ED + d;
        const dt = delta[i],
          xt = x[i],
          dtx = dt * xt;
        const bt = (b * L + t) * N;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const hn = Math.exp(dt * A[d * N + n]) * h[h0 + n] + dtx * Bm[bt + n];
          h[h0 + n] = hn;
          acc += Cm[bt + n] * hn;
        }
        y[i] = acc + D[d] * xt;
      }
    }
  }
}

/**
 * Gradients, all ACCUMULATED: dx, ddelta (B, L, ED); dA (ED, N); dB, dC (B, L, N); dD (ED).
 * dh0 (B, ED, N) receives the gradient w.r.t. the initial state (pass null to skip).
 * work (2·chunk + 1) · N scratch: the recomputed states (chunk + 1 rows; the SIMD kernel keeps the
 * decays in the other chunk rows). No gradient flows into the final state.
 */
export function scanBackward(
  dx: F,
  ddelta: F,
  dA: F,
  dB: F,
  dC: F,
  dD: F,
  dh0: F | null,
  dy: F,
  x: F,
  delta: F,
  A: F,
  Bm: F,
  Cm: F,
  D: F,
  hck: F,
  work: F,
  B: number,
  L: number,
  ED: number,
  N: number,
  chunk: number,
): void {
  const nChunks = Math.ceil(L / chunk);
  const g = new (dx.constructor as { new (n: number): F })(N); // dL/dh_t, carried backwards
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < ED; d++) {
      g.fill(0);
      let dDd = 0;
      for (let c = nChunks - 1; c >= 0; c--) {
        const t0 = c * chunk,
          t1 = Math.min(L, t0 + chunk);
        // recompute states: work[s*N + n] = h_{t0+s-1} for s = 0..(t1-t0)
        const c0 = ((b * nChunks + c) * ED + d) * N;
        for (let n = 0; n < N; n++) work[n] = hck[c0 + n];
        for (let t = t0; t < t1; t++) {
          const i = (b * L + t) * ED + d,
            bt = (b * L + t) * N,
            s = (t - t0 + 1) * N;
          const dtx = delta[i] * x[i];
          for (let n = 0; n < N; n++) work[s + n] = Math.exp(delta[i] * A[d * N + n]) * work[s - N + n] + dtx * Bm[bt + n];
        }
        for (let t = t1 - 1; t >= t0; t--) {
          const i = (b * L + t) * ED + d,
            bt = (b * L + t) * N,
            s = (t - t0 + 1) * N;
          const dyt = dy[i],
            dt = delta[i],
            xt = x[i];
          dDd += dyt * xt;
          let dxt = dyt * D[d],
            ddt = 0;
          for (let n = 0; n < N; n++) {
            const a = Math.exp(dt * A[d * N + n]);
            dC[bt + n] += dyt * work[s + n];
            const gn = g[n] + dyt * Cm[bt + n]; // total dL/dh_t
            const da = gn * work[s - N + n] * a; // dL/d(Δ·A) through exp
            ddt += da * A[d * N + n] + gn * xt * Bm[bt + n];
            dA[d * N + n] += da * dt;
            dB[bt + n] += gn * dt * xt;
            dxt += gn * dt * Bm[bt + n];
            g[n] = gn * a; // dL/dh_{t-1}
          }
          dx[i] += dxt;
          ddelta[i] += ddt;
        }
      }
      dD[d] += dDd;
      if (dh0 !== null) for (let n = 0; n < N; n++) dh0[(b * ED + d) * N + n] += g[n];
    }
  }
}

/**
 * One recurrent step (L = 1): y (B, ED) <- x, delta (B, ED), A, Bm, Cm (B, N), D; h (B, ED, N) updated.
 */
export function scanStep(y: F, h: F, x: F, delta: F, A: F, Bm: F, Cm: F, D: F, B: number, ED: number, N: number): void {
  scanForward(y, h, null, x, delta, A, Bm, Cm, D, B, 1, ED, N, 1);
}
