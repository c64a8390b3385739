/**
 * Selective scan (Mamba-1), f32x4 over the state dimension N. Same contracts as
 * src/kernels/ref/scan.ts (read it for the math and the shapes); pointers are byte offsets,
 * `hck` = 0 / `dh0` = 0 skip those outputs.
 *
 * Per (batch, channel) the state is processed in groups of lanes whose running state lives in v128
 * locals across the whole time loop: 16 lanes (4 vectors) in the forward, 8 lanes (2 vectors) in
 * the backward, then groups of 4, the last one partial (N % 4 lanes, other lanes zero: A = B = C = 0
 * there, so those lanes stay exactly 0 and contribute nothing). The per-time-step outputs that
 * sum over n get one horizontal sum per group: for y the first group writes Σ + D·x and the others
 * add; dx and ddelta are accumulated by every group (the D·dy term of dx once). Over a prompt or a
 * training batch at N = 16 the forward instead runs four channels a vector (fwdT16, below).
 */
import { vexp2Neg, log2eTimes, ldN, stN, hsum, hsum2 } from './vmath';

// ================================================================ forward

@inline function fwd16(y: usize, ph: usize, pck: usize, ckStride: usize, x: usize, delta: usize, pA: usize,
  pB: usize, pC: usize, Dd: f32, first: bool, L: i32, chunk: i32, rowE: usize, rowN: usize): void {
  let h0 = v128.load(ph), h1 = v128.load(ph, 16), h2 = v128.load(ph, 32), h3 = v128.load(ph, 48);
  // A·log2 e once: the decay e^(Δ·A) is 2^(Δ·A·log2 e) (vexp2Neg)
  const A0 = log2eTimes(v128.load(pA)), A1 = log2eTimes(v128.load(pA, 16)), A2 = log2eTimes(v128.load(pA, 32)), A3 = log2eTimes(v128.load(pA, 48));
  let px = x, pd = delta, py = y, pb = pB, pc = pC, ck = pck;
  let tc = 0;
  for (let t = 0; t < L; t++) {
    if (pck != 0) {
      if (tc == 0) {
        v128.store(ck, h0); v128.store(ck, h1, 16); v128.store(ck, h2, 32); v128.store(ck, h3, 48);
        ck += ckStride;
      }
      if (++tc == chunk) tc = 0;
    }
    const dt = load<f32>(pd), xt = load<f32>(px);
    const dtv = f32x4.splat(dt), dtx = f32x4.splat(dt * xt);
    h0 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, A0)), h0), f32x4.mul(dtx, v128.load(pb)));
    h1 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, A1)), h1), f32x4.mul(dtx, v128.load(pb, 16)));
    h2 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, A2)), h2), f32x4.mul(dtx, v128.load(pb, 32)));
    h3 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, A3)), h3), f32x4.mul(dtx, v128.load(pb, 48)));
    const acc = f32x4.add(
      f32x4.add(f32x4.mul(v128.load(pc), h0), f32x4.mul(v128.load(pc, 16), h1)),
      f32x4.add(f32x4.mul(v128.load(pc, 32), h2), f32x4.mul(v128.load(pc, 48), h3)));
    const s = hsum(acc);
    if (first) store<f32>(py, s + Dd * xt);
    else store<f32>(py, load<f32>(py) + s);
    px += rowE; pd += rowE; py += rowE; pb += rowN; pc += rowN;
  }
  v128.store(ph, h0); v128.store(ph, h1, 16); v128.store(ph, h2, 32); v128.store(ph, h3, 48);
}

@inline function fwd4(y: usize, ph: usize, pck: usize, ckStride: usize, x: usize, delta: usize, pA: usize,
  pB: usize, pC: usize, Dd: f32, first: bool, L: i32, chunk: i32, rowE: usize, rowN: usize, cnt: i32): void {
  let h0 = ldN(ph, cnt);
  const A0 = log2eTimes(ldN(pA, cnt));
  let px = x, pd = delta, py = y, pb = pB, pc = pC, ck = pck;
  let tc = 0;
  for (let t = 0; t < L; t++) {
    if (pck != 0) {
      if (tc == 0) { stN(ck, h0, cnt); ck += ckStride; }
      if (++tc == chunk) tc = 0;
    }
    const dt = load<f32>(pd), xt = load<f32>(px);
    h0 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(f32x4.splat(dt), A0)), h0), f32x4.mul(f32x4.splat(dt * xt), ldN(pb, cnt)));
    const s = hsum(f32x4.mul(ldN(pc, cnt), h0));
    if (first) store<f32>(py, s + Dd * xt);
    else store<f32>(py, load<f32>(py) + s);
    px += rowE; pd += rowE; py += rowE; pb += rowN; pc += rowN;
  }
  stN(ph, h0, cnt);
}

// ---------------------------------------------------------------- forward, four channels a vector

/** The four channels' values at state n (floats n, N + n, 2N + n, 3N + n from p, N = 16) as one vector. */
@inline function gather4(p: usize): v128 {
  let v = v128.load32_zero(p);
  v = v128.load32_lane(p + 64, v, 1);
  v = v128.load32_lane(p + 128, v, 2);
  return v128.load32_lane(p + 192, v, 3);
}

/** gather4's inverse: lane i of v to float i·N of p. */
@inline function scatter4(p: usize, v: v128): void {
  v128.store32_lane(p, v, 0);
  v128.store32_lane(p + 64, v, 1);
  v128.store32_lane(p + 128, v, 2);
  v128.store32_lane(p + 192, v, 3);
}

/**
 * Eight of the 16 states (ph, pA, pck: at the first of them) of four consecutive channels d..d+3
 * of one stream at N = 16, the channels in the lanes: state n of the four is one vector (locals),
 * so a step needs no horizontal sum and y, Δ and x are one vector each; B and C (pB, pC: at the
 * first of the eight) are broadcast from the step's row. The eight rows of A·log2 e with the
 * channels in the lanes are formed once and kept, while the states live in locals, in those
 * states' own memory (2 rows in each channel's 8 floats), which the end rewrites with the states.
 * The first half (first) writes y = D·x + Σ C·h over its states, the second adds its own.
 * Checkpoints, when pck ≠ 0, as in fwd16.
 */
@inline function fwdT8(y: usize, ph: usize, pck: usize, ckStride: usize, x: usize, delta: usize, pA: usize,
  pB: usize, pC: usize, Dv: v128, first: bool, L: i32, chunk: i32, rowE: usize): void {
  let h0 = gather4(ph + 0);
  let h1 = gather4(ph + 4);
  let h2 = gather4(ph + 8);
  let h3 = gather4(ph + 12);
  let h4 = gather4(ph + 16);
  let h5 = gather4(ph + 20);
  let h6 = gather4(ph + 24);
  let h7 = gather4(ph + 28);
  const l2e = f32x4.splat(1.44269504088896341);
  v128.store(ph + 0, f32x4.mul(gather4(pA + 0), l2e));
  v128.store(ph + 16, f32x4.mul(gather4(pA + 4), l2e));
  v128.store(ph + 64, f32x4.mul(gather4(pA + 8), l2e));
  v128.store(ph + 80, f32x4.mul(gather4(pA + 12), l2e));
  v128.store(ph + 128, f32x4.mul(gather4(pA + 16), l2e));
  v128.store(ph + 144, f32x4.mul(gather4(pA + 20), l2e));
  v128.store(ph + 192, f32x4.mul(gather4(pA + 24), l2e));
  v128.store(ph + 208, f32x4.mul(gather4(pA + 28), l2e));
  let px = x, pd = delta, py = y, pb = pB, pc = pC, ck = pck;
  let tc = 0;
  for (let t = 0; t < L; t++) {
    if (pck != 0) {
      if (tc == 0) {
        scatter4(ck + 0, h0);
        scatter4(ck + 4, h1);
        scatter4(ck + 8, h2);
        scatter4(ck + 12, h3);
        scatter4(ck + 16, h4);
        scatter4(ck + 20, h5);
        scatter4(ck + 24, h6);
        scatter4(ck + 28, h7);
        ck += ckStride;
      }
      if (++tc == chunk) tc = 0;
    }
    const dtv = v128.load(pd), xv = v128.load(px);
    const dtx = f32x4.mul(dtv, xv);
    let y0 = first ? f32x4.mul(Dv, xv) : v128.load(py), y1 = f32x4.splat(0);
    h0 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 0))), h0), f32x4.mul(dtx, v128.load32_splat(pb, 0)));
    y0 = f32x4.add(y0, f32x4.mul(v128.load32_splat(pc, 0), h0));
    h1 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 16))), h1), f32x4.mul(dtx, v128.load32_splat(pb, 4)));
    y1 = f32x4.add(y1, f32x4.mul(v128.load32_splat(pc, 4), h1));
    h2 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 64))), h2), f32x4.mul(dtx, v128.load32_splat(pb, 8)));
    y0 = f32x4.add(y0, f32x4.mul(v128.load32_splat(pc, 8), h2));
    h3 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 80))), h3), f32x4.mul(dtx, v128.load32_splat(pb, 12)));
    y1 = f32x4.add(y1, f32x4.mul(v128.load32_splat(pc, 12), h3));
    h4 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 128))), h4), f32x4.mul(dtx, v128.load32_splat(pb, 16)));
    y0 = f32x4.add(y0, f32x4.mul(v128.load32_splat(pc, 16), h4));
    h5 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 144))), h5), f32x4.mul(dtx, v128.load32_splat(pb, 20)));
    y1 = f32x4.add(y1, f32x4.mul(v128.load32_splat(pc, 20), h5));
    h6 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 192))), h6), f32x4.mul(dtx, v128.load32_splat(pb, 24)));
    y0 = f32x4.add(y0, f32x4.mul(v128.load32_splat(pc, 24), h6));
    h7 = f32x4.add(f32x4.mul(vexp2Neg(f32x4.mul(dtv, v128.load(ph, 208))), h7), f32x4.mul(dtx, v128.load32_splat(pb, 28)));
    y1 = f32x4.add(y1, f32x4.mul(v128.load32_splat(pc, 28), h7));
    v128.store(py, f32x4.add(y0, y1));
    px += rowE; pd += rowE; py += rowE; pb += 64; pc += 64;
  }
  scatter4(ph + 0, h0);
  scatter4(ph + 4, h1);
  scatter4(ph + 8, h2);
  scatter4(ph + 12, h3);
  scatter4(ph + 16, h4);
  scatter4(ph + 20, h5);
  scatter4(ph + 24, h6);
  scatter4(ph + 28, h7);
}

/**
 * The forward of four consecutive channels d..d+3 of one stream at N = 16 as two halves of eight
 * states (fwdT8): about 90 operations a channel and step where fwd16 takes about 107, and eight
 * states live in registers at a time, not 16 (which spill).
 */
function fwdT16(y: usize, ph: usize, pck: usize, ckStride: usize, x: usize, delta: usize, pA: usize,
  pB: usize, pC: usize, pD: usize, L: i32, chunk: i32, rowE: usize): void {
  const Dv = v128.load(pD);
  fwdT8(y, ph, pck, ckStride, x, delta, pA, pB, pC, Dv, true, L, chunk, rowE);
  fwdT8(y, ph + 32, pck == 0 ? <usize>0 : pck + 32, ckStride, x, delta, pA + 32, pB + 32, pC + 32, Dv, false, L, chunk, rowE);
}

export function scanForward(y: usize, h: usize, hck: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize,
  D: usize, B: i32, L: i32, ED: i32, N: i32, chunk: i32): void {
  scanForwardRange(y, h, hck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk, 0, B * ED);
}

/**
 * scanForward over the (batch, channel) pairs c = b·ED + d in [c0, c1) only: each pair is
 * independent (outputs y[b,:,d], h[b,d,:], hck[b,:,d,:]), so threads split them freely.
 */
export function scanForwardRange(y: usize, h: usize, hck: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize,
  D: usize, B: i32, L: i32, ED: i32, N: i32, chunk: i32, c0: i32, c1: i32): void {
  if (chunk < 1) chunk = 1;
  const nChunks = (L + chunk - 1) / chunk;
  const rowE = <usize>ED << 2, rowN = <usize>N << 2;
  const ckStride = <usize>ED * rowN; // bytes between consecutive chunks of one (b, d)
  // four channels at a time where they are whole (a prompt or training at N = 16: fwdT16's setup
  // of some 200 operations a group pays from a few steps on), one at a time around them
  const quads = N == 16 && L >= 8 && (ED & 3) == 0;
  for (let c = c0; c < c1; c++) {
    const b = c / ED, d = c % ED;
    const bLE = <usize>b * <usize>L * rowE;
    const bLN = <usize>b * <usize>L * rowN;
    const dOff = <usize>d << 2;
    if (quads && (d & 3) == 0 && c + 4 <= c1) {
      fwdT16(y + bLE + dOff, h + (<usize>b * <usize>ED + <usize>d) * rowN,
        hck == 0 ? <usize>0 : hck + (<usize>b * <usize>nChunks * <usize>ED + <usize>d) * rowN, ckStride,
        x + bLE + dOff, delta + bLE + dOff, A + <usize>d * rowN, Bm + bLN, Cm + bLN, D + dOff, L, chunk, rowE);
      c += 3;
      continue;
    }
    scanChannel(y + bLE + dOff, h + (<usize>b * <usize>ED + <usize>d) * rowN,
      hck == 0 ? <usize>0 : hck + (<usize>b * <usize>nChunks * <usize>ED + <usize>d) * rowN, ckStride,
      x + bLE + dOff, delta + bLE + dOff, A + <usize>d * rowN, Bm + bLN, Cm + bLN, load<f32>(D + dOff), L, N, chunk, rowE, rowN);
  }
}

/**
 * The scan of one (batch, channel) pair over L steps: py, px, pd walk its column of y, x, delta
 * (rowE bytes a step), ph its state (N), pck its checkpoints (0: none), pA its row of A, pB and pC
 * the stream's rows of B and C (rowN bytes a step). The fused decoding step (mamba1.ts) runs it at
 * L = 1, so the two compute the same bits (a prompt's groups of four channels, fwdT16, sum y in
 * another order).
 */
@inline export function scanChannel(py: usize, ph: usize, pck: usize, ckStride: usize, px: usize, pd: usize, pA: usize,
  pB: usize, pC: usize, Dd: f32, L: i32, N: i32, chunk: i32, rowE: usize, rowN: usize): void {
  if (N <= 0) {
    for (let t = 0; t < L; t++) {
      const o = <usize>t * rowE;
      store<f32>(py + o, Dd * load<f32>(px + o));
    }
    return;
  }
  if (N == 16 && pck == 0) {
    // Mamba's usual state size without checkpoints (inference): the same fwd16, compiled with
    // those two known, so its time loop tests neither
    fwd16(py, ph, 0, 0, px, pd, pA, pB, pC, Dd, true, L, chunk, rowE, rowN);
    return;
  }
  let n0 = 0;
  let first = true;
  for (; n0 + 16 <= N; n0 += 16) {
    const no = <usize>n0 << 2;
    fwd16(py, ph + no, pck == 0 ? <usize>0 : pck + no, ckStride, px, pd, pA + no, pB + no, pC + no,
      Dd, first, L, chunk, rowE, rowN);
    first = false;
  }
  for (; n0 < N; n0 += 4) {
    const no = <usize>n0 << 2;
    fwd4(py, ph + no, pck == 0 ? <usize>0 : pck + no, ckStride, px, pd, pA + no, pB + no, pC + no,
      Dd, first, L, chunk, rowE, rowN, min<i32>(4, N - n0));
    first = false;
  }
}

/** One recurrent step (L = 1): y (B, ED), h (B, ED, N) updated. */
export function scanStep(y: usize, h: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize,
  B: i32, ED: i32, N: i32): void {
  scanForward(y, h, 0, x, delta, A, Bm, Cm, D, B, 1, ED, N, 1);
}

// ================================================================ backward

/**
 * Backward for one group of lanes (2 vectors, or 1 possibly partial vector when `two` is false).
 * Walks the chunks last to first: recomputes the group's states of the chunk into `work` (same
 * layout as the reference: work[s·N + n] = h_{t0+s-1}), then back-propagates through them.
 * `pa` ≠ 0 points at lanes of `work` that another group of the same channel owns (free while this
 * one runs): the recompute keeps each step's decay exp(Δ·A) there (row s: step t0 + s), so the
 * back-propagation reads it instead of evaluating the exponential a second time (same bits).
 */
@inline function bwdGroup(two: bool, cnt: i32, first: bool,
  dx: usize, ddelta: usize, pdA: usize, dB: usize, dC: usize, pdh0: usize,
  dy: usize, x: usize, delta: usize, pA: usize, Bm: usize, Cm: usize, Dd: f32, pck: usize, ckStride: usize,
  work: usize, pa: usize, L: i32, chunk: i32, nChunks: i32, rowE: usize, rowN: usize): void {
  const A0 = two ? v128.load(pA) : ldN(pA, cnt);
  const A1 = two ? v128.load(pA, 16) : f32x4.splat(0);
  const L0 = log2eTimes(A0), L1 = log2eTimes(A1); // the decay's argument, as the forward forms it
  let g0 = f32x4.splat(0), g1 = f32x4.splat(0);
  let dA0 = f32x4.splat(0), dA1 = f32x4.splat(0);
  for (let c = nChunks - 1; c >= 0; c--) {
    const t0 = c * chunk, t1 = min<i32>(L, t0 + chunk);
    // recompute the states of this chunk
    const pc0 = pck + <usize>c * ckStride;
    let h0 = two ? v128.load(pc0) : ldN(pc0, cnt);
    let h1 = two ? v128.load(pc0, 16) : f32x4.splat(0);
    let pw = work, pwa = pa;
    if (two) { v128.store(pw, h0); v128.store(pw, h1, 16); } else stN(pw, h0, cnt);
    for (let t = t0; t < t1; t++) {
      const ie = <usize>t * rowE, in_ = <usize>t * rowN;
      const dt = load<f32>(delta + ie), dtv = f32x4.splat(dt), dtx = f32x4.splat(dt * load<f32>(x + ie));
      pw += rowN;
      const a0 = vexp2Neg(f32x4.mul(dtv, L0));
      if (two) {
        const a1 = vexp2Neg(f32x4.mul(dtv, L1));
        h0 = f32x4.add(f32x4.mul(a0, h0), f32x4.mul(dtx, v128.load(Bm + in_)));
        h1 = f32x4.add(f32x4.mul(a1, h1), f32x4.mul(dtx, v128.load(Bm + in_, 16)));
        v128.store(pw, h0); v128.store(pw, h1, 16);
        if (pa != 0) { v128.store(pwa, a0); v128.store(pwa, a1, 16); }
      } else {
        h0 = f32x4.add(f32x4.mul(a0, h0), f32x4.mul(dtx, ldN(Bm + in_, cnt)));
        stN(pw, h0, cnt);
        if (pa != 0) v128.store(pwa, a0);
      }
      pwa += rowN;
    }
    // back-propagate through the chunk
    for (let t = t1 - 1; t >= t0; t--) {
      const ie = <usize>t * rowE, in_ = <usize>t * rowN;
      const dyt = load<f32>(dy + ie), dt = load<f32>(delta + ie), xt = load<f32>(x + ie);
      const dyv = f32x4.splat(dyt), dtv = f32x4.splat(dt), xtv = f32x4.splat(xt), dtxv = f32x4.splat(dt * xt);
      const pws = work + <usize>(t - t0 + 1) * rowN;
      const pwp = pws - rowN;
      let ddt: v128, dxv: v128;
      const pas = pa + <usize>(t - t0) * rowN;
      {
        const a = pa != 0 ? v128.load(pas) : vexp2Neg(f32x4.mul(dtv, L0));
        const hs = two ? v128.load(pws) : ldN(pws, cnt);
        const Bv = two ? v128.load(Bm + in_) : ldN(Bm + in_, cnt);
        const Cv = two ? v128.load(Cm + in_) : ldN(Cm + in_, cnt);
        const pdC = dC + in_, pdB = dB + in_;
        if (two) v128.store(pdC, f32x4.add(v128.load(pdC), f32x4.mul(dyv, hs)));
        else stN(pdC, f32x4.add(ldN(pdC, cnt), f32x4.mul(dyv, hs)), cnt);
        const gn = f32x4.add(g0, f32x4.mul(dyv, Cv));
        const hp = two ? v128.load(pwp) : ldN(pwp, cnt);
        const da = f32x4.mul(f32x4.mul(gn, hp), a);
        ddt = f32x4.add(f32x4.mul(da, A0), f32x4.mul(f32x4.mul(gn, xtv), Bv));
        dA0 = f32x4.add(dA0, f32x4.mul(da, dtv));
        if (two) v128.store(pdB, f32x4.add(v128.load(pdB), f32x4.mul(gn, dtxv)));
        else stN(pdB, f32x4.add(ldN(pdB, cnt), f32x4.mul(gn, dtxv)), cnt);
        dxv = f32x4.mul(f32x4.mul(gn, dtv), Bv);
        g0 = f32x4.mul(gn, a);
      }
      if (two) {
        const a = pa != 0 ? v128.load(pas, 16) : vexp2Neg(f32x4.mul(dtv, L1));
        const hs = v128.load(pws, 16);
        const Bv = v128.load(Bm + in_, 16);
        const Cv = v128.load(Cm + in_, 16);
        const pdC = dC + in_ + 16, pdB = dB + in_ + 16;
        v128.store(pdC, f32x4.add(v128.load(pdC), f32x4.mul(dyv, hs)));
        const gn = f32x4.add(g1, f32x4.mul(dyv, Cv));
        const da = f32x4.mul(f32x4.mul(gn, v128.load(pwp, 16)), a);
        ddt = f32x4.add(ddt, f32x4.add(f32x4.mul(da, A1), f32x4.mul(f32x4.mul(gn, xtv), Bv)));
        dA1 = f32x4.add(dA1, f32x4.mul(da, dtv));
        v128.store(pdB, f32x4.add(v128.load(pdB), f32x4.mul(gn, dtxv)));
        dxv = f32x4.add(dxv, f32x4.mul(f32x4.mul(gn, dtv), Bv));
        g1 = f32x4.mul(gn, a);
      }
      const pdx = dx + ie, pdd = ddelta + ie;
      let dxt = hsum(dxv);
      if (first) dxt += dyt * Dd;
      store<f32>(pdx, load<f32>(pdx) + dxt);
      store<f32>(pdd, load<f32>(pdd) + hsum(ddt));
    }
  }
  if (two) {
    v128.store(pdA, f32x4.add(v128.load(pdA), dA0));
    v128.store(pdA, f32x4.add(v128.load(pdA, 16), dA1), 16);
    if (pdh0 != 0) {
      v128.store(pdh0, f32x4.add(v128.load(pdh0), g0));
      v128.store(pdh0, f32x4.add(v128.load(pdh0, 16), g1), 16);
    }
  } else {
    stN(pdA, f32x4.add(ldN(pdA, cnt), dA0), cnt);
    if (pdh0 != 0) stN(pdh0, f32x4.add(ldN(pdh0, cnt), g0), cnt);
  }
}

/**
 * The backward of one (stream, channel) at N = 16 as one group of 16 lanes (4 vectors), where
 * bwdGroup runs two groups of 8: a step's scalar work (Δ, x, dy, their broadcasts, the pointers)
 * and its horizontal sums of dx and dΔ (one shuffle network for both) are paid once, not twice.
 * The recompute keeps each step's decay in `work` after the chunk's states (row s: step t0 + s),
 * so `work` holds (2·chunk + 1)·16 floats. dA is added to in memory at every step (16 fewer
 * vectors to keep live; 4% faster than summing in registers); the D·dy term of dx as in bwdGroup.
 */
@inline function bwd16(dx: usize, ddelta: usize, pdA: usize, dB: usize, dC: usize, pdh0: usize,
  dy: usize, x: usize, delta: usize, pA: usize, Bm: usize, Cm: usize, Dd: f32, pck: usize, ckStride: usize,
  work: usize, L: i32, chunk: i32, nChunks: i32, rowE: usize): void {
  const L0 = log2eTimes(v128.load(pA, 0));
  const L1 = log2eTimes(v128.load(pA, 16));
  const L2 = log2eTimes(v128.load(pA, 32));
  const L3 = log2eTimes(v128.load(pA, 48));
  let g0 = f32x4.splat(0), g1 = f32x4.splat(0), g2 = f32x4.splat(0), g3 = f32x4.splat(0);
  const pa = work + (<usize>(chunk + 1) << 6); // the decays, after the chunk's chunk + 1 states
  for (let c = nChunks - 1; c >= 0; c--) {
    const t0 = c * chunk, t1 = min<i32>(L, t0 + chunk);
    // recompute the states of this chunk
    const pc0 = pck + <usize>c * ckStride;
    let h0 = v128.load(pc0, 0), h1 = v128.load(pc0, 16), h2 = v128.load(pc0, 32), h3 = v128.load(pc0, 48);
    let pw = work, pwa = pa;
    v128.store(pw, h0, 0);
    v128.store(pw, h1, 16);
    v128.store(pw, h2, 32);
    v128.store(pw, h3, 48);
    for (let t = t0; t < t1; t++) {
      const ie = <usize>t * rowE, in_ = <usize>t << 6;
      const dt = load<f32>(delta + ie), dtv = f32x4.splat(dt), dtx = f32x4.splat(dt * load<f32>(x + ie));
      pw += 64;
      const a0 = vexp2Neg(f32x4.mul(dtv, L0));
      h0 = f32x4.add(f32x4.mul(a0, h0), f32x4.mul(dtx, v128.load(Bm + in_, 0)));
      v128.store(pw, h0, 0); v128.store(pwa, a0, 0);
      const a1 = vexp2Neg(f32x4.mul(dtv, L1));
      h1 = f32x4.add(f32x4.mul(a1, h1), f32x4.mul(dtx, v128.load(Bm + in_, 16)));
      v128.store(pw, h1, 16); v128.store(pwa, a1, 16);
      const a2 = vexp2Neg(f32x4.mul(dtv, L2));
      h2 = f32x4.add(f32x4.mul(a2, h2), f32x4.mul(dtx, v128.load(Bm + in_, 32)));
      v128.store(pw, h2, 32); v128.store(pwa, a2, 32);
      const a3 = vexp2Neg(f32x4.mul(dtv, L3));
      h3 = f32x4.add(f32x4.mul(a3, h3), f32x4.mul(dtx, v128.load(Bm + in_, 48)));
      v128.store(pw, h3, 48); v128.store(pwa, a3, 48);
      pwa += 64;
    }
    // back-propagate through the chunk
    for (let t = t1 - 1; t >= t0; t--) {
      const ie = <usize>t * rowE, in_ = <usize>t << 6;
      const dyt = load<f32>(dy + ie), dt = load<f32>(delta + ie), xt = load<f32>(x + ie);
      const dyv = f32x4.splat(dyt), dtv = f32x4.splat(dt), xtv = f32x4.splat(xt), dtxv = f32x4.splat(dt * xt);
      const pws = work + (<usize>(t - t0 + 1) << 6), pwp = pws - 64, pas = pa + (<usize>(t - t0) << 6);
      const pdC = dC + in_, pdB = dB + in_;
      let ddt = f32x4.splat(0), dxv = f32x4.splat(0);
      {
        const a = v128.load(pas, 0), Bv = v128.load(Bm + in_, 0);
        v128.store(pdC, f32x4.add(v128.load(pdC, 0), f32x4.mul(dyv, v128.load(pws, 0))), 0);
        const gn = f32x4.add(g0, f32x4.mul(dyv, v128.load(Cm + in_, 0)));
        const da = f32x4.mul(f32x4.mul(gn, v128.load(pwp, 0)), a);
        ddt = f32x4.add(ddt, f32x4.add(f32x4.mul(da, v128.load(pA, 0)), f32x4.mul(f32x4.mul(gn, xtv), Bv)));
        v128.store(pdA, f32x4.add(v128.load(pdA, 0), f32x4.mul(da, dtv)), 0);
        v128.store(pdB, f32x4.add(v128.load(pdB, 0), f32x4.mul(gn, dtxv)), 0);
        dxv = f32x4.add(dxv, f32x4.mul(f32x4.mul(gn, dtv), Bv));
        g0 = f32x4.mul(gn, a);
      }
      {
        const a = v128.load(pas, 16), Bv = v128.load(Bm + in_, 16);
        v128.store(pdC, f32x4.add(v128.load(pdC, 16), f32x4.mul(dyv, v128.load(pws, 16))), 16);
        const gn = f32x4.add(g1, f32x4.mul(dyv, v128.load(Cm + in_, 16)));
        const da = f32x4.mul(f32x4.mul(gn, v128.load(pwp, 16)), a);
        ddt = f32x4.add(ddt, f32x4.add(f32x4.mul(da, v128.load(pA, 16)), f32x4.mul(f32x4.mul(gn, xtv), Bv)));
        v128.store(pdA, f32x4.add(v128.load(pdA, 16), f32x4.mul(da, dtv)), 16);
        v128.store(pdB, f32x4.add(v128.load(pdB, 16), f32x4.mul(gn, dtxv)), 16);
        dxv = f32x4.add(dxv, f32x4.mul(f32x4.mul(gn, dtv), Bv));
        g1 = f32x4.mul(gn, a);
      }
      {
        const a = v128.load(pas, 32), Bv = v128.load(Bm + in_, 32);
        v128.store(pdC, f32x4.add(v128.load(pdC, 32), f32x4.mul(dyv, v128.load(pws, 32))), 32);
        const gn = f32x4.add(g2, f32x4.mul(dyv, v128.load(Cm + in_, 32)));
        const da = f32x4.mul(f32x4.mul(gn, v128.load(pwp, 32)), a);
        ddt = f32x4.add(ddt, f32x4.add(f32x4.mul(da, v128.load(pA, 32)), f32x4.mul(f32x4.mul(gn, xtv), Bv)));
        v128.store(pdA, f32x4.add(v128.load(pdA, 32), f32x4.mul(da, dtv)), 32);
        v128.store(pdB, f32x4.add(v128.load(pdB, 32), f32x4.mul(gn, dtxv)), 32);
        dxv = f32x4.add(dxv, f32x4.mul(f32x4.mul(gn, dtv), Bv));
        g2 = f32x4.mul(gn, a);
      }
      {
        const a = v128.load(pas, 48), Bv = v128.load(Bm + in_, 48);
        v128.store(pdC, f32x4.add(v128.load(pdC, 48), f32x4.mul(dyv, v128.load(pws, 48))), 48);
        const gn = f32x4.add(g3, f32x4.mul(dyv, v128.load(Cm + in_, 48)));
        const da = f32x4.mul(f32x4.mul(gn, v128.load(pwp, 48)), a);
        ddt = f32x4.add(ddt, f32x4.add(f32x4.mul(da, v128.load(pA, 48)), f32x4.mul(f32x4.mul(gn, xtv), Bv)));
        v128.store(pdA, f32x4.add(v128.load(pdA, 48), f32x4.mul(da, dtv)), 48);
        v128.store(pdB, f32x4.add(v128.load(pdB, 48), f32x4.mul(gn, dtxv)), 48);
        dxv = f32x4.add(dxv, f32x4.mul(f32x4.mul(gn, dtv), Bv));
        g3 = f32x4.mul(gn, a);
      }
      const s = hsum2(dxv, ddt);
      const pdx = dx + ie, pdd = ddelta + ie;
      store<f32>(pdx, load<f32>(pdx) + (f32x4.extract_lane(s, 0) + dyt * Dd));
      store<f32>(pdd, load<f32>(pdd) + f32x4.extract_lane(s, 2));
    }
  }
  if (pdh0 != 0) {
    v128.store(pdh0, f32x4.add(v128.load(pdh0, 0), g0), 0);
    v128.store(pdh0, f32x4.add(v128.load(pdh0, 16), g1), 16);
    v128.store(pdh0, f32x4.add(v128.load(pdh0, 32), g2), 32);
    v128.store(pdh0, f32x4.add(v128.load(pdh0, 48), g3), 48);
  }
}

export function scanBackward(dx: usize, ddelta: usize, dA: usize, dB: usize, dC: usize, dD: usize, dh0: usize,
  dy: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize, hck: usize, work: usize,
  B: i32, L: i32, ED: i32, N: i32, chunk: i32): void {
  scanBackwardRange(dx, ddelta, dA, dB, dC, dD, dh0, dy, x, delta, A, Bm, Cm, D, hck, work, B, L, ED, N, chunk, 0, ED);
}

/**
 * scanBackward for channels [d0, d1) of every batch element. dx, ddelta, dA, dD and dh0 of those
 * channels are this call's own outputs; dB and dC sum over channels, so threads give each channel
 * group its own dB/dC partial buffers and add them up in a fixed order afterwards.
 */
export function scanBackwardRange(dx: usize, ddelta: usize, dA: usize, dB: usize, dC: usize, dD: usize, dh0: usize,
  dy: usize, x: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize, hck: usize, work: usize,
  B: i32, L: i32, ED: i32, N: i32, chunk: i32, d0: i32, d1: i32): void {
  if (chunk < 1) chunk = 1;
  const nChunks = (L + chunk - 1) / chunk;
  const rowE = <usize>ED << 2, rowN = <usize>N << 2;
  const ckStride = <usize>ED * rowN;
  // streams outer, channels inner: neighbouring channels share the cache lines of x, delta, dy, dx
  // and ddelta, and one stream's rows of B, C, dB and dC (L·N each) stay in L2 across its channels.
  // Every sum still adds in the same order (over channels d ascending for each stream, over
  // streams b ascending for each channel), so the result is the same bit for bit as d outer.
  for (let b = 0; b < B; b++) {
    for (let d = d0; d < d1; d++) {
      const bLE = <usize>b * <usize>L * rowE;
      const bLN = <usize>b * <usize>L * rowN;
      const dOff = <usize>d << 2;
      const Dd = load<f32>(D + dOff);
      const pdy = dy + bLE + dOff, px = x + bLE + dOff, pdl = delta + bLE + dOff;
      const pdx = dx + bLE + dOff, pdd = ddelta + bLE + dOff;
      // dD and the D·x path of dx do not depend on the state
      let dDd: f64 = 0;
      for (let t = 0; t < L; t++) {
        const o = <usize>t * rowE;
        dDd += <f64>load<f32>(pdy + o) * <f64>load<f32>(px + o);
      }
      store<f32>(dD + dOff, load<f32>(dD + dOff) + <f32>dDd);
      if (N <= 0) {
        for (let t = 0; t < L; t++) {
          const o = <usize>t * rowE;
          store<f32>(pdx + o, load<f32>(pdx + o) + load<f32>(pdy + o) * Dd);
        }
        continue;
      }
      const pck = hck + (<usize>b * <usize>nChunks * <usize>ED + <usize>d) * rowN;
      const pA = A + <usize>d * rowN;
      const pdA = dA + <usize>d * rowN;
      const pdh = dh0 == 0 ? <usize>0 : dh0 + (<usize>b * <usize>ED + <usize>d) * rowN;
      if (N == 16) {
        bwd16(pdx, pdd, pdA, dB + bLN, dC + bLN, pdh, pdy, px, pdl, pA, Bm + bLN, Cm + bLN, Dd, pck, ckStride, work, L, chunk, nChunks, rowE);
        continue;
      }
      // with N ≥ 16 every group has the lanes of another group to keep its decays in: the first
      // group of 8 those of the second, every later group (of 8, or of 4 at the tail) lanes 0..7
      const cache = N >= 16;
      let n0 = 0;
      let first = true;
      for (; n0 + 8 <= N; n0 += 8) {
        const no = <usize>n0 << 2;
        const pa = cache ? work + (n0 == 0 ? <usize>32 : <usize>0) : <usize>0;
        bwdGroup(true, 4, first, pdx, pdd, pdA + no, dB + bLN + no, dC + bLN + no, pdh == 0 ? <usize>0 : pdh + no,
          pdy, px, pdl, pA + no, Bm + bLN + no, Cm + bLN + no, Dd, pck + no, ckStride, work + no, pa,
          L, chunk, nChunks, rowE, rowN);
        first = false;
      }
      for (; n0 < N; n0 += 4) {
        const no = <usize>n0 << 2;
        bwdGroup(false, min<i32>(4, N - n0), first, pdx, pdd, pdA + no, dB + bLN + no, dC + bLN + no,
          pdh == 0 ? <usize>0 : pdh + no, pdy, px, pdl, pA + no, Bm + bLN + no, Cm + bLN + no, Dd, pck + no, ckStride,
          work + no, cache ? work : <usize>0, L, chunk, nChunks, rowE, rowN);
        first = false;
      }
    }
  }
}
