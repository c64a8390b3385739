import type { F } from './types.js';

/**
 * Mamba-2's state-space dual (SSD, Dao & Gu 2024), per batch b and head h with scalar decay:
 *   h_t = exp(Δ_t·A_h)·h_{t−1} + Δ_t·x_t·B_tᵀ        (h_t ∈ R^{P×N}, x_t ∈ R^P, B_t ∈ R^N)
 *   y_t = h_t·C_t + D_h·x_t
 * Shapes: x, y (B, L, H, P) = (B, L, ED); delta (B, L, H); A, D (H); Bm, Cm (B, L, G, N); head h
 * reads group g = floor(h / (H/G)); states h (B, H, P, N).
 *
 * `ssdRecurrent` is that recurrence, token by token: the specification, and the decoding path.
 * `ssdChunkForward` / `ssdChunkBackward` compute the same thing in chunks of Q tokens as matrix
 * products (the paper's Listing 1), which is how training runs it. Per chunk of q ≤ Q tokens,
 * with a_i = Δ_i·A_h:
 *   S[i][j] = a_{j+1} + … + a_i for j ≤ i, −∞ for j > i   (summed directly, masked before exp)
 *   Lm = exp(S);  G = C·Bᵀ (q×q, one per group);  M = G ∘ Lm;  Xd = diag(Δ)·X (q×P)
 *   Y = M·Xd + diag(e_out)·(C·Hᵀ) + D·X,   e_out[i] = exp(a_0 + … + a_i)
 *   H' = e_out[q−1]·H + (diag(e_st)·Xd)ᵀ·B, e_st[j] = exp(a_{j+1} + … + a_{q−1}) = Lm[q−1][j]
 * Segment sums are summed term by term rather than as differences of one cumulative sum, which
 * would cancel catastrophically once the sums are large. A last chunk shorter than Q is computed
 * at its own length, which is exactly zero padding after discretisation (a = 0 and Δ·x = 0 on the
 * padding: decay 1, no input); padding dt before discretisation would decay the state by
 * exp(softplus(dt_bias)·A) per padded token.
 */

/** The group of head h: heads are split evenly over G groups. */
function groupOf(h: number, H: number, G: number): number {
  return Math.floor(h / (H / G));
}

/**
 * The recurrence, one token at a time. y (B, L, H, P) <- …; h (B, H, P, N) holds the initial state
 * on entry and the final state on exit.
 */
export function ssdRecurrent(
  y: F,
  h: F,
  x: F,
  delta: F,
  A: F,
  Bm: F,
  Cm: F,
  D: F,
  B: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      const g = groupOf(hh, H, G);
      for (let t = 0; t < L; t++) {
        const dt = delta[(b * L + t) * H + hh],
          decay = Math.exp(dt * A[hh]);
        const bo = ((b * L + t) * G + g) * N;
        for (let p = 0; p < P; p++) {
          const xi = ((b * L + t) * H + hh) * P + p,
            xv = x[xi],
            dtx = dt * xv,
            s0 = ((b * H + hh) * P + p) * N;
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const hn = decay * h[s0 + n] + dtx * Bm[bo + n];
            h[s0 + n] = hn;
            acc += hn * Cm[bo + n];
          }
          y[xi] = acc + D[hh] * xv;
        }
      }
    }
  }
}

/** Scratch of one chunk for one head, carved out of the caller's `work`. */
interface ChunkScratch {
  a: F;
  seg: F;
  eOut: F;
  eSt: F; // (Q) a = Δ·A, a row of segment sums, decays
  Lm: F;
  Gm: F;
  M: F; // (Q, Q) segment decays, C·Bᵀ, their product
  Xd: F;
  CH: F; // (Q, P) Δ·x, C·Hᵀ
}

/** Gradients of one head in one chunk, and the state gradients carried between chunks. */
interface ChunkGrads {
  dXd: F;
  dH: F;
  da: F;
  row: F;
  dHn: F;
}

function carve(work: F, B: number, H: number, P: number, N: number, Q: number): { s: ChunkScratch; gr: ChunkGrads } {
  let o = 0;
  const take = (n: number): F => {
    const v = work.subarray(o, o + n);
    o += n;
    return v;
  };
  const s = {
    a: take(Q),
    seg: take(Q),
    eOut: take(Q),
    eSt: take(Q),
    Lm: take(Q * Q),
    Gm: take(Q * Q),
    M: take(Q * Q),
    Xd: take(Q * P),
    CH: take(Q * P),
  };
  const gr = { dXd: take(Q * P), dH: take(P * N), da: take(Q), row: take(Q), dHn: take(B * H * P * N) };
  return { s, gr };
}

/**
 * Decays of one chunk of q tokens from a_i = Δ_i·A: Lm (q×q, row stride q) = exp of the masked
 * segment sums, eOut[i] = exp(a_0 + … + a_i), eSt[j] = exp(a_{j+1} + … + a_{q−1}). Row i of the
 * segment sums is row i−1 plus a_i (and 0 on the diagonal), so S[i][j] = a_{j+1} + … + a_i is
 * summed term by term in increasing r: the order the SIMD twin sums in, row by row.
 */
function chunkDecays(s: ChunkScratch, q: number): void {
  const { a, seg, Lm, eOut, eSt } = s;
  let run = 0;
  for (let i = 0; i < q; i++) {
    run += a[i];
    eOut[i] = Math.exp(run);
    for (let j = 0; j < i; j++) seg[j] += a[i];
    seg[i] = 0;
    for (let j = 0; j < q; j++) Lm[i * q + j] = Math.exp(j <= i ? seg[j] : -Infinity); // −∞ above the diagonal: exactly 0
  }
  for (let j = 0; j < q; j++) eSt[j] = Lm[(q - 1) * q + j];
}

/** Gm (q×q) = C·Bᵀ of group g over tokens t0 … t0+q−1 of stream b. */
function groupScores(Gm: F, Bm: F, Cm: F, b: number, t0: number, q: number, L: number, G: number, g: number, N: number): void {
  for (let i = 0; i < q; i++) {
    const ci = ((b * L + t0 + i) * G + g) * N;
    for (let j = 0; j < q; j++) {
      const bj = ((b * L + t0 + j) * G + g) * N;
      let s = 0;
      for (let n = 0; n < N; n++) s += Cm[ci + n] * Bm[bj + n];
      Gm[i * q + j] = s;
    }
  }
}

/** Per head of one chunk: a, decays, M = Gm ∘ Lm, Xd = Δ·X and CH = C·Hᵀ (H the state entering the chunk). */
function chunkHead(
  s: ChunkScratch,
  hs: F,
  h0: number,
  x: F,
  delta: F,
  A: F,
  Cm: F,
  b: number,
  hh: number,
  g: number,
  t0: number,
  q: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
): void {
  for (let i = 0; i < q; i++) s.a[i] = delta[(b * L + t0 + i) * H + hh] * A[hh];
  chunkDecays(s, q);
  for (let k = 0; k < q * q; k++) s.M[k] = s.Gm[k] * s.Lm[k];
  for (let i = 0; i < q; i++) {
    const dt = delta[(b * L + t0 + i) * H + hh],
      xo = ((b * L + t0 + i) * H + hh) * P,
      co = ((b * L + t0 + i) * G + g) * N;
    for (let p = 0; p < P; p++) {
      s.Xd[i * P + p] = dt * x[xo + p];
      let c = 0;
      for (let n = 0; n < N; n++) c += Cm[co + n] * hs[h0 + p * N + n];
      s.CH[i * P + p] = c;
    }
  }
}

/**
 * Chunked forward. y (B, L, H, P) <- …; h (B, H, P, N) holds the initial state on entry and the
 * final state on exit; hck (B, nChunks, H, P, N) receives the state entering each chunk (null to
 * skip), nChunks = ceil(L / Q). work: ssdWorkSize(B, H, P, N, Q) floats of scratch.
 */
export function ssdChunkForward(
  y: F,
  h: F,
  hck: F | null,
  x: F,
  delta: F,
  A: F,
  Bm: F,
  Cm: F,
  D: F,
  work: F,
  B: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
  Q: number,
): void {
  const nC = Math.ceil(L / Q),
    { s } = carve(work, B, H, P, N, Q),
    PN = P * N;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < nC; c++) {
      const t0 = c * Q,
        q = Math.min(Q, L - t0);
      for (let g = 0; g < G; g++) {
        groupScores(s.Gm, Bm, Cm, b, t0, q, L, G, g, N);
        for (let hh = g * (H / G); hh < (g + 1) * (H / G); hh++) {
          const h0 = (b * H + hh) * PN;
          if (hck !== null) for (let k = 0; k < PN; k++) hck[((b * nC + c) * H + hh) * PN + k] = h[h0 + k];
          chunkHead(s, h, h0, x, delta, A, Cm, b, hh, g, t0, q, L, H, P, G, N);
          for (let i = 0; i < q; i++) {
            const xo = ((b * L + t0 + i) * H + hh) * P;
            for (let p = 0; p < P; p++) {
              let acc = 0;
              for (let j = 0; j <= i; j++) acc += s.M[i * q + j] * s.Xd[j * P + p];
              y[xo + p] = acc + s.eOut[i] * s.CH[i * P + p] + D[hh] * x[xo + p];
            }
          }
          // H' = e_out[q−1]·H + Σ_j e_st[j]·Xd_j·B_jᵀ
          const tot = s.eOut[q - 1];
          for (let p = 0; p < P; p++) {
            for (let n = 0; n < N; n++) {
              let acc = 0;
              for (let j = 0; j < q; j++) acc += s.eSt[j] * s.Xd[j * P + p] * Bm[((b * L + t0 + j) * G + g) * N + n];
              h[h0 + p * N + n] = tot * h[h0 + p * N + n] + acc;
            }
          }
        }
      }
    }
  }
}

/**
 * Gradients, all ACCUMULATED: dx (B, L, H, P), ddelta (B, L, H), dA, dD (H), dB, dC (B, L, G, N);
 * dh0 (B, H, P, N) receives the gradient w.r.t. the initial state (null to skip). hck is the
 * forward's chunk-entry states. No gradient flows into the final state.
 *
 * Per chunk, from dY and dH' (the gradient of the state leaving it), with U = B·dH'ᵀ (q×P):
 *   dXd = Mᵀ·dY + diag(e_st)·U;    dH = e_out[q−1]·dH' + (diag(e_out)·dY)ᵀ·C
 *   dC += (dY·Xdᵀ ∘ Lm)·B + diag(e_out)·(dY·H);   dB += (dY·Xdᵀ ∘ Lm)ᵀ·C + diag(e_st)·(Xd·dH')
 *   dS = (dY·Xdᵀ) ∘ M, and a_r receives Σ_{i≥r, j<r} dS[i][j] plus the e_out, e_st and total terms.
 */
export function ssdChunkBackward(
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
  H: number,
  P: number,
  G: number,
  N: number,
  Q: number,
): void {
  const nC = Math.ceil(L / Q),
    { s, gr } = carve(work, B, H, P, N, Q),
    PN = P * N;
  const dHn = gr.dHn; // dL/d(state leaving the chunk being processed), per (b, h)
  dHn.fill(0);
  for (let b = 0; b < B; b++) {
    for (let c = nC - 1; c >= 0; c--) {
      const t0 = c * Q,
        q = Math.min(Q, L - t0);
      for (let g = 0; g < G; g++) {
        groupScores(s.Gm, Bm, Cm, b, t0, q, L, G, g, N);
        for (let hh = g * (H / G); hh < (g + 1) * (H / G); hh++) {
          const ck = ((b * nC + c) * H + hh) * PN,
            hn = (b * H + hh) * PN;
          chunkHead(s, hck, ck, x, delta, A, Cm, b, hh, g, t0, q, L, H, P, G, N);
          chunkHeadBackward(s, gr, hn, hck, ck, dy, dB, dC, Bm, Cm, b, hh, g, t0, q, L, H, P, G, N);
          // Xd = Δ·x and a = Δ·A back to x, Δ, A; the skip D·x
          let dAh = 0,
            dDh = 0;
          for (let i = 0; i < q; i++) {
            const ti = (b * L + t0 + i) * H + hh,
              xo = ti * P,
              dt = delta[ti];
            let dd = gr.da[i] * A[hh];
            for (let p = 0; p < P; p++) {
              dd += gr.dXd[i * P + p] * x[xo + p];
              dx[xo + p] += dt * gr.dXd[i * P + p] + D[hh] * dy[xo + p];
              dDh += dy[xo + p] * x[xo + p];
            }
            ddelta[ti] += dd;
            dAh += gr.da[i] * dt;
          }
          dA[hh] += dAh;
          dD[hh] += dDh;
          for (let k = 0; k < PN; k++) dHn[hn + k] = gr.dH[k];
        }
      }
    }
    if (dh0 !== null) for (let k = 0; k < H * PN; k++) dh0[b * H * PN + k] += dHn[b * H * PN + k];
  }
}

/** One head of one chunk: dXd, dH (the gradient of the state entering it), da, and its dB, dC. */
function chunkHeadBackward(
  s: ChunkScratch,
  gr: ChunkGrads,
  hn: number,
  hs: F,
  ck: number,
  dy: F,
  dB: F,
  dC: F,
  Bm: F,
  Cm: F,
  b: number,
  hh: number,
  g: number,
  t0: number,
  q: number,
  L: number,
  H: number,
  P: number,
  G: number,
  N: number,
): void {
  const { dXd, dH, da, dHn } = gr,
    tot = s.eOut[q - 1];
  const yo = (i: number) => ((b * L + t0 + i) * H + hh) * P,
    bo = (i: number) => ((b * L + t0 + i) * G + g) * N;
  // the total decay of the chunk and the state it received
  let dtot = 0;
  for (let k = 0; k < P * N; k++) {
    dtot += dHn[hn + k] * hs[ck + k];
    dH[k] = tot * dHn[hn + k];
  }
  da.fill(0);
  for (let i = 0; i < q; i++) {
    // off-diagonal output e_out[i]·(C_i·Hᵀ): dH, dC_i and e_out's gradient
    let dEo = 0;
    for (let p = 0; p < P; p++) dEo += dy[yo(i) + p] * s.CH[i * P + p];
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let p = 0; p < P; p++) {
        acc += dy[yo(i) + p] * hs[ck + p * N + n];
        dH[p * N + n] += s.eOut[i] * dy[yo(i) + p] * Cm[bo(i) + n];
      }
      dC[bo(i) + n] += s.eOut[i] * acc;
    }
    for (let r = 0; r <= i; r++) da[r] += dEo * s.eOut[i];
    // the state leaving the chunk: e_st[i]·Xd_i·B_iᵀ
    let dEs = 0;
    for (let p = 0; p < P; p++) {
      let u = 0;
      for (let n = 0; n < N; n++) u += Bm[bo(i) + n] * dHn[hn + p * N + n];
      dXd[i * P + p] = s.eSt[i] * u;
      dEs += s.Xd[i * P + p] * u;
    }
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let p = 0; p < P; p++) acc += s.Xd[i * P + p] * dHn[hn + p * N + n];
      dB[bo(i) + n] += s.eSt[i] * acc;
    }
    for (let r = i + 1; r < q; r++) da[r] += dEs * s.eSt[i];
  }
  for (let r = 0; r < q; r++) da[r] += dtot * tot;
  diagonalBlockBackward(s, gr, dy, dB, dC, Bm, Cm, yo, bo, q, P, N);
}

/** The diagonal block Y = (G ∘ Lm)·Xd: dXd, dB, dC, and the segment sums' share of da. */
function diagonalBlockBackward(
  s: ChunkScratch,
  gr: ChunkGrads,
  dy: F,
  dB: F,
  dC: F,
  Bm: F,
  Cm: F,
  yo: (i: number) => number,
  bo: (i: number) => number,
  q: number,
  P: number,
  N: number,
): void {
  const { dXd, da, row } = gr;
  for (let i = 0; i < q; i++) {
    for (let j = 0; j <= i; j++) {
      let dM = 0; // dM[i][j] = dY_i · Xd_j
      for (let p = 0; p < P; p++) dM += dy[yo(i) + p] * s.Xd[j * P + p];
      for (let p = 0; p < P; p++) dXd[j * P + p] += s.M[i * q + j] * dy[yo(i) + p];
      const dG = dM * s.Lm[i * q + j];
      for (let n = 0; n < N; n++) {
        dC[bo(i) + n] += dG * Bm[bo(j) + n];
        dB[bo(j) + n] += dG * Cm[bo(i) + n];
      }
      row[j] = dM * s.M[i * q + j]; // dS[i][j]
    }
    // S[i][j] = a_{j+1} + … + a_i: a_r (j < r ≤ i) receives Σ_{j<r} dS[i][j]
    let prefix = 0;
    for (let r = 1; r <= i; r++) {
      prefix += row[r - 1];
      da[r] += prefix;
    }
  }
}
