import type { Tensor } from '../tensor/index.js';
import type { Engine } from './engine.js';

/**
 * Causal attention for training composed from the matrix kernels, so that its products run on the
 * WebAssembly SIMD matmuls instead of the scalar reference loops (kernels/ref/attention.ts, which
 * stays the spec and the twin these are tested against). Per stream b, query head h (kv head g)
 * and tile of T queries at positions i0 .. i0+T-1, only the n = i0 + T keys a causal row can see:
 *   S = (Q_t / sqrt(hd)) K[0:n]ᵀ → mask, shift by the row max → P = exp(S) / z → O_t = P V[0:n]
 * The backward recomputes P from the saved log-sum-exp (no (L, L) matrix is kept):
 *   dP = dO_t V[0:n]ᵀ;  dS = P ⊙ (dP − rowsum(dO_t ⊙ O_t));  dQ_t = dS K[0:n] / sqrt(hd)
 *   dK[0:n] += dSᵀ (Q_t / sqrt(hd));  dV[0:n] += Pᵀ dO_t
 * Layouts as the reference: q, out (B, L, H, hd); k, v (B, L, Hkv, hd); lse (B, H, L).
 */

/** Queries per tile: the score block is TILE × n floats, and the causal half of the work is skipped tile by tile. */
export const ATTENTION_TILE = 64;

interface Dims {
  B: number;
  L: number;
  H: number;
  Hkv: number;
  hd: number;
}

/**
 * Gather: buf (rows, hd) = scale · x (…, H, hd)[row0 .. row0+rows, h, :]; or, with scatterAdd,
 * the reverse: x[row0 .. row0+rows, h, :] += scale · buf.
 */
function headRows(
  buf: Float32Array | Float64Array,
  x: Float32Array | Float64Array,
  row0: number,
  rows: number,
  H: number,
  hd: number,
  h: number,
  scale: number,
  scatterAdd: boolean,
): void {
  for (let r = 0; r < rows; r++) {
    const xo = ((row0 + r) * H + h) * hd,
      b0 = r * hd;
    if (scatterAdd) for (let d = 0; d < hd; d++) x[xo + d] += scale * buf[b0 + d];
    else for (let d = 0; d < hd; d++) buf[b0 + d] = scale * x[xo + d];
  }
}

/**
 * Scores of one tile in place, s (rows, n): row r (position i0 + r) keeps keys j ≤ i0 + r.
 * With `lse` null: shift by the row max and return the maxima (forward); else subtract the saved
 * log-sum-exp of each row, so that exp gives the normalised probabilities (backward). The rest −∞.
 */
function maskShift(
  s: Float32Array | Float64Array,
  rows: number,
  n: number,
  i0: number,
  lse: Float32Array | Float64Array | null,
  lse0: number,
  maxima: Float64Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n,
      valid = i0 + r + 1;
    let m = -Infinity;
    if (lse) m = lse[lse0 + r];
    else for (let j = 0; j < valid; j++) if (s[o + j] > m) m = s[o + j];
    for (let j = 0; j < valid; j++) s[o + j] -= m;
    for (let j = valid; j < n; j++) s[o + j] = -Infinity;
    maxima[r] = m;
  }
}

/** out (B, L, H, hd), lse (B, H, L) <- q, k, v: the forward, as kernels/ref/attention.ts attentionForward. */
export function attentionForwardBlocked(e: Engine, out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, d: Dims): void {
  const { B, L, H, Hkv, hd } = d,
    kk = e.k,
    scale = 1 / Math.sqrt(hd),
    group = H / Hkv,
    T = Math.min(L, ATTENTION_TILE);
  e.scope(() => {
    const Kg = e.zeros([L, hd]),
      Vg = e.zeros([L, hd]),
      Qt = e.zeros([T, hd]),
      Ot = e.zeros([T, hd]);
    const S = e.zeros([T, L]),
      z = e.zeros([T]),
      ones = e.zeros([L]);
    const maxima = new Float64Array(T);
    ones.data().fill(1);
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < Hkv; g++) {
        headRows(Kg.floats(), k.floats(), b * L, L, Hkv, hd, g, 1, false);
        headRows(Vg.floats(), v.floats(), b * L, L, Hkv, hd, g, 1, false);
        for (let h = g * group; h < (g + 1) * group; h++) {
          for (let i0 = 0; i0 < L; i0 += T) {
            const rows = Math.min(T, L - i0),
              n = i0 + rows;
            headRows(Qt.floats(), q.floats(), b * L + i0, rows, H, hd, h, scale, false);
            kk.matmulNT(S, Qt, Kg, rows, n, hd, 0); // (rows, n) scores
            maskShift(S.floats(), rows, n, i0, null, 0, maxima);
            kk.expForward(S, S, rows * n);
            kk.matmulNT(z, S, ones, rows, 1, n, 0); // (rows) row sums
            kk.matmulNN(Ot, S, Vg, rows, hd, n, 0); // (rows, hd) unnormalised
            const zv = z.floats(),
              lv = lse.floats(),
              ov = Ot.floats(),
              outv = out.floats();
            for (let r = 0; r < rows; r++) {
              lv[(b * H + h) * L + i0 + r] = maxima[r] + Math.log(zv[r]);
              const inv = 1 / zv[r],
                oo = ((b * L + i0 + r) * H + h) * hd;
              for (let c = 0; c < hd; c++) outv[oo + c] = ov[r * hd + c] * inv;
            }
          }
        }
      }
    }
  });
}

/** dq, dk, dv += … <- dout, q, k, v, out, lse: the backward, as kernels/ref/attention.ts attentionBackward. */
export function attentionBackwardBlocked(
  e: Engine,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  d: Dims,
): void {
  const { B, L, H, Hkv, hd } = d,
    kk = e.k,
    scale = 1 / Math.sqrt(hd),
    group = H / Hkv,
    T = Math.min(L, ATTENTION_TILE);
  e.scope(() => {
    const Kg = e.zeros([L, hd]),
      Vg = e.zeros([L, hd]),
      dKg = e.zeros([L, hd]),
      dVg = e.zeros([L, hd]);
    const Qt = e.zeros([T, hd]),
      dOt = e.zeros([T, hd]),
      dQt = e.zeros([T, hd]);
    const P = e.zeros([T, L]),
      dS = e.zeros([T, L]);
    const Dr = new Float64Array(T),
      unused = new Float64Array(T);
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < Hkv; g++) {
        headRows(Kg.floats(), k.floats(), b * L, L, Hkv, hd, g, 1, false);
        headRows(Vg.floats(), v.floats(), b * L, L, Hkv, hd, g, 1, false);
        dKg.zero();
        dVg.zero();
        for (let h = g * group; h < (g + 1) * group; h++) {
          for (let i0 = 0; i0 < L; i0 += T) {
            const rows = Math.min(T, L - i0),
              n = i0 + rows;
            headRows(Qt.floats(), q.floats(), b * L + i0, rows, H, hd, h, scale, false);
            headRows(dOt.floats(), dout.floats(), b * L + i0, rows, H, hd, h, 1, false);
            kk.matmulNT(P, Qt, Kg, rows, n, hd, 0); // (rows, n) scores
            maskShift(P.floats(), rows, n, i0, lse.floats(), (b * H + h) * L + i0, unused);
            kk.expForward(P, P, rows * n); // probabilities
            kk.matmulNT(dS, dOt, Vg, rows, n, hd, 0); // dP (rows, n)
            const pv = P.floats(),
              sv = dS.floats(),
              dov = dOt.floats(),
              outv = out.floats();
            for (let r = 0; r < rows; r++) {
              let s = 0;
              const oo = ((b * L + i0 + r) * H + h) * hd;
              for (let c = 0; c < hd; c++) s += dov[r * hd + c] * outv[oo + c];
              Dr[r] = s;
            }
            for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) sv[r * n + j] = pv[r * n + j] * (sv[r * n + j] - Dr[r]);
            kk.matmulTN(dVg, P, dOt, n, hd, rows, 1); // dV[0:n] += Pᵀ dO
            kk.matmulTN(dKg, dS, Qt, n, hd, rows, 1); // dK[0:n] += dSᵀ Q/sqrt(hd)
            kk.matmulNN(dQt, dS, Kg, rows, hd, n, 0); // (rows, hd)
            headRows(dQt.floats(), dq.floats(), b * L + i0, rows, H, hd, h, scale, true);
          }
        }
        headRows(dKg.floats(), dk.floats(), b * L, L, Hkv, hd, g, 1, true);
        headRows(dVg.floats(), dv.floats(), b * L, L, Hkv, hd, g, 1, true);
      }
    }
  });
}
