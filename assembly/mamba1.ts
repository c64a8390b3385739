/**
 * The Mamba-1 mixer's decoding step (one token per stream) fused into two kernels around its
 * products, so a layer costs in_proj, mambaConvStep, x_proj, mambaScanStep, out_proj instead of a
 * dozen small calls. Same contracts as src/kernels/ref/mamba1.ts. Each kernel runs the very
 * per-channel code of the unfused kernels (convChannelStep, dot1, scanChannel and the lane-wise
 * softplus and silu), so the fused step computes the same bits as the unfused one.
 */
import { convChannelStep } from './conv';
import { dot1, dot4 } from './matmul';
import { scanChannel } from './scan';
import { silu4, siluForward, lockStep16, LS_SOFTPLUS, LS_GATE } from './elementwise';
import { hsum4, ldN, stN, vexpNegAbs, vsoftplus, vsigmoidFromE } from './vmath';

/** v with lane j (0..3) set to x. */
@inline function setLane(v: v128, j: i32, x: f32): v128 {
  if (j == 0) return f32x4.replace_lane(v, 0, x);
  if (j == 1) return f32x4.replace_lane(v, 1, x);
  if (j == 2) return f32x4.replace_lane(v, 2, x);
  return f32x4.replace_lane(v, 3, x);
}

/** xc (B, ED) = silu(conv step of x = xz[:, :ED]) over the window state (B, ED, K), advanced. */
export function mambaConvStep(xc: usize, state: usize, xz: usize, w: usize, bias: usize, B: i32, ED: i32, K: i32): void {
  const rowK = <usize>K << 2, rowXZ = <usize>ED << 3;
  for (let b = 0; b < B; b++) {
    const px = xz + <usize>b * rowXZ, po = xc + <usize>b * (<usize>ED << 2), ps = state + <usize>b * <usize>ED * rowK;
    let d0 = 0;
    if (K == 4) for (; d0 + 4 <= ED; d0 += 4) convStep4(po, ps, w, px, bias, d0);
    for (let d = d0; d < ED; d++) {
      const o = <usize>d << 2, bd = load<f32>(bias + o);
      if (K <= 0) store<f32>(po + o, bd);
      else convChannelStep(po + o, ps + <usize>d * rowK, w + <usize>d * rowK, load<f32>(px + o), bd, K);
    }
  }
  siluForward(xc, xc, B * ED);
}

/**
 * Four channels d0..d0+3 of one stream at K = 4: each window (one vector) shifted with its x
 * appended, and bias + its 4 products summed as convChannelStep sums them ((p0 + p2) + (p1 + p3)),
 * so the same bits, with one transpose-add for the four sums.
 */
@inline function convStep4(po: usize, ps: usize, w: usize, px: usize, bias: usize, d0: i32): void {
  const o = <usize>d0 << 2, so = <usize>d0 << 4;
  const xv = v128.load(px + o);
  const s0 = f32x4.shuffle(v128.load(ps + so), xv, 1, 2, 3, 4);
  const s1 = f32x4.shuffle(v128.load(ps + so, 16), xv, 1, 2, 3, 5);
  const s2 = f32x4.shuffle(v128.load(ps + so, 32), xv, 1, 2, 3, 6);
  const s3 = f32x4.shuffle(v128.load(ps + so, 48), xv, 1, 2, 3, 7);
  v128.store(ps + so, s0); v128.store(ps + so, s1, 16); v128.store(ps + so, s2, 32); v128.store(ps + so, s3, 48);
  const sums = hsum4(f32x4.mul(s0, v128.load(w + so)), f32x4.mul(s1, v128.load(w + so, 16)),
    f32x4.mul(s2, v128.load(w + so, 32)), f32x4.mul(s3, v128.load(w + so, 48)));
  v128.store(po + o, f32x4.add(v128.load(bias + o), sums));
}

export function mambaScanStep(out: usize, delta: usize, h: usize, xc: usize, xdbl: usize, xz: usize, dtW: usize,
  dtBias: usize, A: usize, D: usize, B: i32, ED: i32, N: i32, R: i32): void {
  mambaScanStepRange(out, delta, h, xc, xdbl, xz, dtW, dtBias, A, D, B, ED, N, R, 0, B * ED);
}

/**
 * mambaScanStep over the (stream, channel) pairs c = b·ED + d in [c0, c1) only (threads split
 * them): Δ = softplus(dt_proj(dt) + bias), the scan step with B, C read in place from
 * xdbl = [dt | B | C] (B, R + 2N), y + D·x, then out = y ⊙ silu(z) with z = xz[:, ED:].
 */
export function mambaScanStepRange(out: usize, delta: usize, h: usize, xc: usize, xdbl: usize, xz: usize, dtW: usize,
  dtBias: usize, A: usize, D: usize, B: i32, ED: i32, N: i32, R: i32, c0: i32, c1: i32): void {
  const rowN = <usize>N << 2, rowR = <usize>R << 2, rowX = <usize>(R + 2 * N) << 2, rowXZ = <usize>ED << 3;
  // Δ and the gate four channels at a time (lane-wise, so any grouping gives the same bits), the
  // scan one channel at a time as in scanForwardRange; (b, d) advance without dividing
  const b0 = c0 / ED, d0 = c0 % ED;
  let b = b0, d = d0;
  for (let c = c0; c < c1; c += 4) {
    const cnt = min<i32>(4, c1 - c);
    let v = f32x4.splat(0);
    if (cnt == 4 && d + 4 <= ED && (R & 3) == 0) {
      // four channels of one stream: one pass over its dt row (dot4 gives dot1's bits)
      v = f32x4.add(dot4(xdbl + <usize>b * rowX, dtW + <usize>d * rowR, rowR, R), v128.load(dtBias + (<usize>d << 2)));
      d += 4;
      if (d == ED) { d = 0; b++; }
    } else {
      for (let j = 0; j < cnt; j++) {
        v = setLane(v, j, dot1(xdbl + <usize>b * rowX, dtW + <usize>d * rowR, R) + load<f32>(dtBias + (<usize>d << 2)));
        if (++d == ED) { d = 0; b++; }
      }
    }
    stN(delta + (<usize>c << 2), vsoftplus(v), cnt);
  }
  b = b0; d = d0;
  for (let c = c0; c < c1; c++) {
    const i = <usize>c << 2, xrow = xdbl + <usize>b * rowX;
    scanChannel(out + i, h + <usize>c * rowN, 0, 0, xc + i, delta + i, A + <usize>d * rowN, xrow + rowR, xrow + rowR + rowN,
      load<f32>(D + (<usize>d << 2)), 1, N, 1, 0, 0);
    if (++d == ED) { d = 0; b++; }
  }
  b = b0; d = d0;
  for (let c = c0; c < c1; c += 4) {
    const cnt = min<i32>(4, c1 - c);
    let z = f32x4.splat(0);
    for (let j = 0; j < cnt; j++) {
      z = setLane(z, j, load<f32>(xz + <usize>b * rowXZ + (<usize>(ED + d) << 2)));
      if (++d == ED) { d = 0; b++; }
    }
    const po = out + (<usize>c << 2);
    stN(po, f32x4.mul(ldN(po, cnt), f32x4.mul(z, vsigmoidFromE(z, vexpNegAbs(z)))), cnt);
  }
}

// ---------------------------------------------------------------- prefill (M = B·L rows at once)

/**
 * delta (M, ED) = softplus(dtp + bias), bias (ED) broadcast over the rows: dt_proj's bias add and
 * the softplus in one pass, the same lane-wise arithmetic as addBias then softplusForward.
 */
export function mambaDeltaPrefill(delta: usize, dtp: usize, bias: usize, M: i32, ED: i32): void {
  const row = <usize>ED << 2;
  for (let r = 0; r < M; r++) {
    const pi = dtp + <usize>r * row, po = delta + <usize>r * row;
    let c = 0;
    // four vectors a turn, their softplus in lock step (elementwise lockStep16)
    for (; c + 16 <= ED; c += 16) {
      const o = <usize>c << 2, pb = bias + o, pd = pi + o;
      const no = f32x4.splat(0);
      lockStep16(LS_SOFTPLUS, f32x4.add(v128.load(pd), v128.load(pb)), f32x4.add(v128.load(pd, 16), v128.load(pb, 16)),
        f32x4.add(v128.load(pd, 32), v128.load(pb, 32)), f32x4.add(v128.load(pd, 48), v128.load(pb, 48)), po + o, 0, 0, 0, no, no);
    }
    for (; c < ED; c += 4) {
      const o = <usize>c << 2, cnt = min<i32>(4, ED - c);
      stN(po + o, vsoftplus(f32x4.add(ldN(pi + o, cnt), ldN(bias + o, cnt))), cnt);
    }
  }
}

/**
 * out (M, ED) = y ⊙ silu(z), z = xz[:, ED:] read in place (xz (M, 2ED)): the gate without slicing
 * z out, the same lane-wise arithmetic as siluForward then mul (and as mambaScanStep's gate).
 */
export function mambaGatePrefill(out: usize, y: usize, xz: usize, M: i32, ED: i32): void {
  const row = <usize>ED << 2;
  for (let r = 0; r < M; r++) {
    const py = y + <usize>r * row, pz = xz + <usize>r * (row << 1) + row, po = out + <usize>r * row;
    let c = 0;
    for (; c + 16 <= ED; c += 16) {
      const o = <usize>c << 2, z = pz + o; // four vectors a turn in lock step, as in mambaDeltaPrefill
      lockStep16(LS_GATE, v128.load(z), v128.load(z, 16), v128.load(z, 32), v128.load(z, 48), po + o, py + o, 0, 0, f32x4.splat(0), f32x4.splat(0));
    }
    for (; c < ED; c += 4) {
      const o = <usize>c << 2, cnt = min<i32>(4, ED - c);
      stN(po + o, f32x4.mul(ldN(py + o, cnt), silu4(ldN(pz + o, cnt))), cnt);
    }
  }
}
