/**
 * Mamba-2's chunked SSD on the register-tiled GEMMs of matmul.ts: the f32 twins of
 * ssdChunkForward / ssdChunkBackward in src/kernels/ref/ssd.ts (read it for the math and the
 * shapes). Pointers are byte offsets; `hck` = 0 / `dh0` = 0 skip those outputs; `work` holds
 * ssdWorkSize(B, H, P, N, Q) floats (src/kernels/ssd-work.ts).
 *
 * Per (stream, chunk, group) the group's B and C rows are copied contiguous and G = C·Bᵀ is one
 * product; per head the decays are built row by row with the vector exp (row i of the segment
 * sums is row i−1 plus a_i, −∞ above the diagonal so exp gives exactly 0), and every other
 * O(q²·P), O(q·P·N) term is a GEMM call. The backward sums the diagonal-block gradients of a
 * group's heads before the two products that take them to dB and dC.
 */
import { matmulNN, matmulNT, matmulTN } from './matmul';
import { vexp, sexp, ldN, stN, hsum } from './vmath';

// The work buffer's parts, floats counted as ssdWorkSize does: 6 vectors of Q (a, segment row,
// e_out, e_st, da, spare), 5 matrices (Q, Q) with row stride q (Lm, Gm, M, dM, dGs), 5 of (Q, P)
// (Xd, CH, dXd, dYc, U), 5 of (Q, N) (Cc, Bc, dCc, dBc, T), 2 of (P, N) (dH, spare), then the
// (B, H, P, N) state gradients. Offsets are recomputed from (work, Q, P, N) where needed: the
// module keeps no globals and no data of its own.
@inline function vecAt(w: usize, Q: i32, k: i32): usize { return w + (<usize>(k * Q) << 2); }
@inline function matAt(w: usize, Q: i32, k: i32): usize { return w + (<usize>(6 * Q + k * Q * Q) << 2); }
@inline function qpAt(w: usize, Q: i32, P: i32, k: i32): usize { return w + (<usize>(6 * Q + 5 * Q * Q + k * Q * P) << 2); }
@inline function qnAt(w: usize, Q: i32, P: i32, N: i32, k: i32): usize { return w + (<usize>(6 * Q + 5 * Q * Q + 5 * Q * P + k * Q * N) << 2); }
@inline function pnAt(w: usize, Q: i32, P: i32, N: i32, k: i32): usize { return w + (<usize>(6 * Q + 5 * Q * Q + 5 * Q * P + 5 * Q * N + k * P * N) << 2); }

/** dst (rows, w) contiguous <- rows of w floats, `stride` bytes apart from src. */
@inline function gather(dst: usize, src: usize, rows: i32, w: i32, stride: usize): void {
  const rb = <usize>w << 2;
  for (let r = 0; r < rows; r++) memory.copy(dst + <usize>r * rb, src + <usize>r * stride, rb);
}

/** rows of dst, `stride` bytes apart, += src (rows, w) contiguous. */
@inline function scatterAdd(dst: usize, src: usize, rows: i32, w: i32, stride: usize): void {
  for (let r = 0; r < rows; r++) {
    const pd = dst + <usize>r * stride, ps = src + (<usize>r * <usize>w << 2);
    for (let k = 0; k < w; k += 4) {
      const o = <usize>k << 2, c = w - k;
      stN(pd + o, f32x4.add(ldN(pd + o, c), ldN(ps + o, c)), c);
    }
  }
}

/** Fill n floats at p with v. */
@inline function fill(p: usize, v: f32, n: i32): void {
  const vv = f32x4.splat(v);
  for (let k = 0; k < n; k += 4) stN(p + (<usize>k << 2), vv, n - k);
}

/** dst (n) = s · src (n); dst may alias src. */
@inline function scale(dst: usize, src: usize, s: f32, n: i32): void {
  const sv = f32x4.splat(s);
  for (let k = 0; k < n; k += 4) { const o = <usize>k << 2, c = n - k; stN(dst + o, f32x4.mul(sv, ldN(src + o, c)), c); }
}

/** Σ a·b over n floats. */
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let v = f32x4.splat(0);
  for (let k = 0; k < n; k += 4) { const o = <usize>k << 2, c = n - k; v = f32x4.add(v, f32x4.mul(ldN(a + o, c), ldN(b + o, c))); }
  return hsum(v);
}

/** Lm (q×q), eOut, eSt (q) from a (q): see chunkDecays in the reference. */
function decays(w: usize, Q: i32, P: i32, N: i32, q: i32): void {
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);

  let run: f32 = 0;
  const rowB = <usize>q << 2;
  for (let i = 0; i < q; i++) {
    const ai = load<f32>(wa + (<usize>i << 2));
    run += ai;
    store<f32>(weOut + (<usize>i << 2), sexp(run));
    const av = f32x4.splat(ai);
    for (let j = 0; j < i; j += 4) { const o = <usize>j << 2, c = i - j; stN(wseg + o, f32x4.add(ldN(wseg + o, c), av), c); }
    store<f32>(wseg + (<usize>i << 2), 0);
    const pl = wLm + <usize>i * rowB;
    for (let j = 0; j <= i; j += 4) { const o = <usize>j << 2, c = min(4, i + 1 - j); stN(pl + o, vexp(ldN(wseg + o, c)), c); }
    for (let j = i + 1; j < q; j++) store<f32>(pl + (<usize>j << 2), 0); // exp(−∞)
  }
  memory.copy(weSt, wLm + <usize>(q - 1) * rowB, rowB);
}

/** a = Δ·A_h, the decays, M = Gm ∘ Lm, Xd = Δ·x and CH = C·Hᵀ for one head of one chunk. */
function chunkHead(w: usize, Q: i32, P: i32, N: i32, hs: usize, x: usize, delta: usize, Ah: f32, rowX: usize, rowD: usize, q: i32): void {
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);

  for (let i = 0; i < q; i++) store<f32>(wa + (<usize>i << 2), load<f32>(delta + <usize>i * rowD) * Ah);
  decays(w, Q, P, N, q);
  const qq = q * q;
  for (let k = 0; k < qq; k += 4) { const o = <usize>k << 2, c = qq - k; stN(wM + o, f32x4.mul(ldN(wGm + o, c), ldN(wLm + o, c)), c); }
  for (let i = 0; i < q; i++) scale(wXd + (<usize>(i * P) << 2), x + <usize>i * rowX, load<f32>(delta + <usize>i * rowD), P);
  matmulNT(wCH, wCc, hs, q, P, N, 0);                                    // (q, P) = C·Hᵀ
}

/** The group's C and B rows of one chunk, contiguous, and Gm = C·Bᵀ. */
function groupRows(w: usize, Q: i32, P: i32, N: i32, Bm: usize, Cm: usize, b: i32, t0: i32, q: i32, L: i32, G: i32, g: i32): void {
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);

  const off = (<usize>((b * L + t0) * G + g) * <usize>N) << 2, stride = <usize>(G * N) << 2;
  gather(wCc, Cm + off, q, N, stride);
  gather(wBc, Bm + off, q, N, stride);
  matmulNT(wGm, wCc, wBc, q, q, N, 0);
}

export function ssdChunkForward(y: usize, h: usize, hck: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize,
  work: usize, B: i32, L: i32, H: i32, P: i32, G: i32, N: i32, Q: i32): void {
  const w = work;
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);
  const nC = (L + Q - 1) / Q, hpg = H / G, PN = P * N;
  const rowX = <usize>(H * P) << 2, rowD = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < nC; c++) {
      const t0 = c * Q, q = min(Q, L - t0);
      for (let g = 0; g < G; g++) {
        groupRows(w, Q, P, N, Bm, Cm, b, t0, q, L, G, g);
        for (let hh = g * hpg; hh < (g + 1) * hpg; hh++) {
          const hs = h + (<usize>((b * H + hh) * PN) << 2);
          if (hck != 0) memory.copy(hck + (<usize>(((b * nC + c) * H + hh) * PN) << 2), hs, <usize>PN << 2);
          const px = x + (<usize>((b * L + t0) * H + hh) * <usize>P << 2), pd = delta + (<usize>((b * L + t0) * H + hh) << 2);
          chunkHead(w, Q, P, N, hs, px, pd, load<f32>(A + (<usize>hh << 2)), rowX, rowD, q);
          matmulNN(wdXd, wM, wXd, q, P, q, 0);                          // (q, P) diagonal block, in dXd's room
          const Dh = f32x4.splat(load<f32>(D + (<usize>hh << 2)));
          for (let i = 0; i < q; i++) {
            const py = y + (<usize>((b * L + t0) * H + hh) * <usize>P << 2) + <usize>i * rowX, xi = px + <usize>i * rowX;
            const eo = f32x4.splat(load<f32>(weOut + (<usize>i << 2)));
            const yd = wdXd + (<usize>(i * P) << 2), ch = wCH + (<usize>(i * P) << 2);
            for (let p = 0; p < P; p += 4) {
              const o = <usize>p << 2, cnt = P - p;
              stN(py + o, f32x4.add(f32x4.add(ldN(yd + o, cnt), f32x4.mul(eo, ldN(ch + o, cnt))), f32x4.mul(Dh, ldN(xi + o, cnt))), cnt);
            }
          }
          // H' = e_out[q−1]·H + (e_st ∘ Xd)ᵀ·B
          scale(hs, hs, load<f32>(weOut + (<usize>(q - 1) << 2)), PN);
          for (let i = 0; i < q; i++) { const pr = wXd + (<usize>(i * P) << 2); scale(pr, pr, load<f32>(weSt + (<usize>i << 2)), P); }
          matmulTN(hs, wXd, wBc, P, N, q, 1);
        }
      }
    }
  }
}

/** da (q) of one head: e_out, e_st and total terms, then the diagonal block's segment sums (dS = dM ∘ M). */
function decayGrads(w: usize, Q: i32, P: i32, N: i32, q: i32, dtot: f32): void {
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);

  // e_out[i] = exp(a_0 + … + a_i): a_r gets Σ_{i≥r} dEo_i·e_out_i, summed from the end
  let suffix: f32 = 0;
  for (let i = q - 1; i >= 0; i--) {
    const io = <usize>i << 2;
    suffix += dot(wdYc + (<usize>(i * P) << 2), wCH + (<usize>(i * P) << 2), P) * load<f32>(weOut + io);
    store<f32>(wda + io, suffix);
  }
  // e_st[i] = exp(a_{i+1} + … + a_{q−1}): a_r gets Σ_{i<r} dEs_i·e_st_i; the total decay: every a_r
  const tot = load<f32>(weOut + (<usize>(q - 1) << 2));
  let prefix: f32 = 0;
  for (let i = 0; i < q; i++) {
    const io = <usize>i << 2;
    store<f32>(wda + io, load<f32>(wda + io) + prefix + dtot * tot);
    prefix += dot(wXd + (<usize>(i * P) << 2), wU + (<usize>(i * P) << 2), P) * load<f32>(weSt + io);
  }
  // S[i][j] = a_{j+1} + … + a_i: a_r (j < r ≤ i) gets Σ_{j<r} dM[i][j]·M[i][j]
  const rowB = <usize>q << 2;
  for (let i = 1; i < q; i++) {
    let run: f32 = 0;
    const pm = wdM + <usize>i * rowB, mm = wM + <usize>i * rowB;
    for (let r = 1; r <= i; r++) {
      const o = <usize>(r - 1) << 2;
      run += load<f32>(pm + o) * load<f32>(mm + o);
      store<f32>(wda + (<usize>r << 2), load<f32>(wda + (<usize>r << 2)) + run);
    }
  }
}

export function ssdChunkBackward(dx: usize, ddelta: usize, dA: usize, dB: usize, dC: usize, dD: usize, dh0: usize,
  dy: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize, hck: usize, work: usize,
  B: i32, L: i32, H: i32, P: i32, G: i32, N: i32, Q: i32): void {
  const w = work;
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);
  const nC = (L + Q - 1) / Q, hpg = H / G, PN = P * N, pnB = <usize>PN << 2;
  const rowX = <usize>(H * P) << 2, rowD = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    fill(wdHn + <usize>(b * H) * pnB, 0, H * PN);               // no gradient flows into the final state
    for (let c = nC - 1; c >= 0; c--) {
      const t0 = c * Q, q = min(Q, L - t0);
      for (let g = 0; g < G; g++) {
        groupRows(w, Q, P, N, Bm, Cm, b, t0, q, L, G, g);
        fill(wdCc, 0, q * N); fill(wdBc, 0, q * N); fill(wdGs, 0, q * q);
        for (let hh = g * hpg; hh < (g + 1) * hpg; hh++) {
          const hs = hck + (<usize>(((b * nC + c) * H + hh) * PN) << 2), dHn = wdHn + <usize>(b * H + hh) * pnB;
          const first = (<usize>((b * L + t0) * H + hh) * <usize>P) << 2, pd = delta + (<usize>((b * L + t0) * H + hh) << 2);
          chunkHead(w, Q, P, N, hs, x + first, pd, load<f32>(A + (<usize>hh << 2)), rowX, rowD, q);
          gather(wdYc, dy + first, q, P, rowX);
          headBackward(w, Q, P, N, hs, dHn, q);
          inputGrads(w, Q, P, N, dx + first, ddelta + (<usize>((b * L + t0) * H + hh) << 2), dA + (<usize>hh << 2), dD + (<usize>hh << 2),
            x + first, pd, load<f32>(A + (<usize>hh << 2)), load<f32>(D + (<usize>hh << 2)), rowX, rowD, q);
          memory.copy(dHn, wdH, pnB);
        }
        // the heads' diagonal blocks together: dC += dGs·B, dB += dGsᵀ·C
        matmulNN(wdCc, wdGs, wBc, q, N, q, 1);
        matmulTN(wdBc, wdGs, wCc, q, N, q, 1);
        const off = (<usize>((b * L + t0) * G + g) * <usize>N) << 2, stride = <usize>(G * N) << 2;
        scatterAdd(dC + off, wdCc, q, N, stride);
        scatterAdd(dB + off, wdBc, q, N, stride);
      }
    }
    if (dh0 != 0) scatterAdd(dh0 + <usize>(b * H) * pnB, wdHn + <usize>(b * H) * pnB, 1, H * PN, 0);
  }
}

/**
 * One head of one chunk, from dY (wdYc) and dH' (dHn): dXd, dH (the state entering the chunk),
 * the head's dB and dC terms (into wdBc, wdCc), its diagonal-block gradient (into wdGs) and da.
 */
function headBackward(w: usize, Q: i32, P: i32, N: i32, hs: usize, dHn: usize, q: i32): void {
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);

  const PN = P * N, tot = load<f32>(weOut + (<usize>(q - 1) << 2));
  const dtot = dot(dHn, hs, PN);
  scale(wdH, dHn, tot, PN);
  // off-diagonal output e_out ∘ (C·Hᵀ): dC += e_out ∘ (dY·H); dH += (e_out ∘ dY)ᵀ·C
  matmulNN(wT, wdYc, hs, q, N, P, 0);
  for (let i = 0; i < q; i++) {
    const eo = load<f32>(weOut + (<usize>i << 2));
    axpy(wdCc + (<usize>(i * N) << 2), wT + (<usize>(i * N) << 2), eo, N);
    scale(wU + (<usize>(i * P) << 2), wdYc + (<usize>(i * P) << 2), eo, P);
  }
  matmulTN(wdH, wU, wCc, P, N, q, 1);
  // the state leaving the chunk, e_st ∘ Xdᵀ·B: U = B·dH'ᵀ, dXd = e_st ∘ U, dB += e_st ∘ (Xd·dH')
  matmulNT(wU, wBc, dHn, q, P, N, 0);
  matmulNN(wT, wXd, dHn, q, N, P, 0);
  for (let i = 0; i < q; i++) {
    const es = load<f32>(weSt + (<usize>i << 2));
    scale(wdXd + (<usize>(i * P) << 2), wU + (<usize>(i * P) << 2), es, P);
    axpy(wdBc + (<usize>(i * N) << 2), wT + (<usize>(i * N) << 2), es, N);
  }
  // the diagonal block (Gm ∘ Lm)·Xd: dM = dY·Xdᵀ, dXd += Mᵀ·dY, dGs += dM ∘ Lm
  matmulNT(wdM, wdYc, wXd, q, q, P, 0);
  matmulTN(wdXd, wM, wdYc, q, P, q, 1);
  const qq = q * q;
  for (let k = 0; k < qq; k += 4) {
    const o = <usize>k << 2, cnt = qq - k;
    stN(wdGs + o, f32x4.add(ldN(wdGs + o, cnt), f32x4.mul(ldN(wdM + o, cnt), ldN(wLm + o, cnt))), cnt);
  }
  decayGrads(w, Q, P, N, q, dtot);
}

/** dst (n) += s · src (n) */
@inline function axpy(dst: usize, src: usize, s: f32, n: i32): void {
  const sv = f32x4.splat(s);
  for (let k = 0; k < n; k += 4) { const o = <usize>k << 2, c = n - k; stN(dst + o, f32x4.add(ldN(dst + o, c), f32x4.mul(sv, ldN(src + o, c))), c); }
}

/** Xd = Δ·x and a = Δ·A back to x, Δ and A; the skip D·x to x and D. Rows of x, dx, dy are rowX bytes apart. */
function inputGrads(w: usize, Q: i32, P: i32, N: i32, dx: usize, ddelta: usize, dA: usize, dD: usize, x: usize, delta: usize, Ah: f32, Dh: f32,
  rowX: usize, rowD: usize, q: i32): void {
  const wa = vecAt(w, Q, 0), wseg = vecAt(w, Q, 1), weOut = vecAt(w, Q, 2), weSt = vecAt(w, Q, 3), wda = vecAt(w, Q, 4);
  const wLm = matAt(w, Q, 0), wGm = matAt(w, Q, 1), wM = matAt(w, Q, 2), wdM = matAt(w, Q, 3), wdGs = matAt(w, Q, 4);
  const wXd = qpAt(w, Q, P, 0), wCH = qpAt(w, Q, P, 1), wdXd = qpAt(w, Q, P, 2), wdYc = qpAt(w, Q, P, 3), wU = qpAt(w, Q, P, 4);
  const wCc = qnAt(w, Q, P, N, 0), wBc = qnAt(w, Q, P, N, 1), wdCc = qnAt(w, Q, P, N, 2), wdBc = qnAt(w, Q, P, N, 3), wT = qnAt(w, Q, P, N, 4);
  const wdH = pnAt(w, Q, P, N, 0), wdHn = pnAt(w, Q, P, N, 2);

  let dAh: f32 = 0, dDh: f32 = 0;
  for (let i = 0; i < q; i++) {
    const xi = x + <usize>i * rowX, gi = dx + <usize>i * rowX, yi = wdYc + (<usize>(i * P) << 2), di = wdXd + (<usize>(i * P) << 2);
    const dt = load<f32>(delta + <usize>i * rowD), da = load<f32>(wda + (<usize>i << 2));
    const dtv = f32x4.splat(dt), Dv = f32x4.splat(Dh);
    let dd = f32x4.splat(0), dDv = f32x4.splat(0);
    for (let p = 0; p < P; p += 4) {
      const o = <usize>p << 2, c = P - p;
      const xv = ldN(xi + o, c), gv = ldN(di + o, c), yv = ldN(yi + o, c);
      dd = f32x4.add(dd, f32x4.mul(gv, xv));
      dDv = f32x4.add(dDv, f32x4.mul(yv, xv));
      stN(gi + o, f32x4.add(ldN(gi + o, c), f32x4.add(f32x4.mul(dtv, gv), f32x4.mul(Dv, yv))), c);
    }
    const pdd = ddelta + <usize>i * rowD;
    store<f32>(pdd, load<f32>(pdd) + hsum(dd) + da * Ah);
    dAh += da * dt;
    dDh += hsum(dDv);
  }
  store<f32>(dA, load<f32>(dA) + dAh);
  store<f32>(dD, load<f32>(dD) + dDh);
}

/**
 * The recurrence, one token at a time (decoding): the twin of ssdRecurrent. Per (stream, head,
 * channel p) the state row h[p, :] is updated and dotted with C in one pass over N.
 */
export function ssdRecurrent(y: usize, h: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize,
  B: i32, L: i32, H: i32, P: i32, G: i32, N: i32): void {
  const hpg = H / G;
  for (let b = 0; b < B; b++) {
    for (let hh = 0; hh < H; hh++) {
      const g = hh / hpg, Ah = load<f32>(A + (<usize>hh << 2)), Dh = load<f32>(D + (<usize>hh << 2));
      for (let t = 0; t < L; t++) {
        const dt = load<f32>(delta + (<usize>((b * L + t) * H + hh) << 2));
        const dv = f32x4.splat(sexp(dt * Ah));
        const bo = (<usize>((b * L + t) * G + g) * <usize>N) << 2, pb = Bm + bo, pc = Cm + bo;
        for (let p = 0; p < P; p++) {
          const xi = x + (<usize>(((b * L + t) * H + hh) * P + p) << 2), xv = load<f32>(xi), dtx = f32x4.splat(dt * xv);
          const ph = h + (<usize>(((b * H + hh) * P + p) * N) << 2);
          let acc = f32x4.splat(0);
          for (let n = 0; n < N; n += 4) {
            const o = <usize>n << 2, c = N - n;
            const hn = f32x4.add(f32x4.mul(dv, ldN(ph + o, c)), f32x4.mul(dtx, ldN(pb + o, c)));
            stN(ph + o, hn, c);
            acc = f32x4.add(acc, f32x4.mul(hn, ldN(pc + o, c)));
          }
          store<f32>(y + (xi - x), hsum(acc) + Dh * xv);
        }
      }
    }
  }
}
