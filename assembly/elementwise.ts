/**
 * Elementwise kernels, f32x4 with a partial last vector. Same contracts as
 * src/kernels/ref/elementwise.ts: backward kernels accumulate into dx. sigmoid, silu and softplus
 * only ever evaluate exp(-|x|) ≤ 1, so nothing overflows for any finite input.
 */
import {
  ldN, stN, vexp, vexpNegAbs, vsoftplus, vsigmoidFromE, vOneMinusSigmoidFromE,
  enAbs, enRound, enRest, enFirst, enHorner, enEnd, lpFirst, lpHorner, lpEnd,
} from './vmath';

/** out (n) = x + y */
export function add(out: usize, x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(out + o, f32x4.add(ldN(x + o, c), ldN(y + o, c)), c);
  }
}

/** out (n) = x ⊙ y */
export function mul(out: usize, x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(out + o, f32x4.mul(ldN(x + o, c), ldN(y + o, c)), c);
  }
}

/** out (n) = 0: the heap's zero-fill of a new block (memory.fill, a native memset). */
export function fillZero(out: usize, n: i32): void {
  memory.fill(out, 0, <usize>n << 2);
}

/** dst (n) += src */
export function accumulate(dst: usize, src: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(dst + o, f32x4.add(ldN(dst + o, c), ldN(src + o, c)), c);
  }
}

/** dst (n) += x ⊙ y */
export function mulAccumulate(dst: usize, x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(dst + o, f32x4.add(ldN(dst + o, c), f32x4.mul(ldN(x + o, c), ldN(y + o, c))), c);
  }
}

/** silu of four lanes: x·sigmoid(x) */
@inline export function silu4(x: v128): v128 {
  return f32x4.mul(x, vsigmoidFromE(x, vexpNegAbs(x)));
}

/**
 * out (n) = silu(x) = x·sigmoid(x), four vectors a turn with their exponentials in lock step
 * (vmath enAbs): the same bits as silu4 on each.
 */
export function siluForward(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const x0 = v128.load(x + o), x1 = v128.load(x + o, 16), x2 = v128.load(x + o, 32), x3 = v128.load(x + o, 48);
    const s0 = enAbs(x0), s1 = enAbs(x1), s2 = enAbs(x2), s3 = enAbs(x3);
    const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
    const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
    const p = enFirst();
    let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
    p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
    p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
    p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
    p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
    const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
    v128.store(out + o, f32x4.mul(x0, vsigmoidFromE(x0, e0)));
    v128.store(out + o, f32x4.mul(x1, vsigmoidFromE(x1, e1)), 16);
    v128.store(out + o, f32x4.mul(x2, vsigmoidFromE(x2, e2)), 32);
    v128.store(out + o, f32x4.mul(x3, vsigmoidFromE(x3, e3)), 48);
  }
  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(out + o, silu4(ldN(x + o, c)), c);
  }
}

/** dx (n) += dout ⊙ (s + x·s·(1-s)), s = sigmoid(x) */
export function siluBackward(dx: usize, dout: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    // four vectors a turn, their exponentials in lock step (vmath enAbs): the same bits
    const o = <usize>i << 2, px = x + o, pd = dx + o, py = dout + o;
    const x0 = v128.load(px), x1 = v128.load(px, 16), x2 = v128.load(px, 32), x3 = v128.load(px, 48);
    const s0 = enAbs(x0), s1 = enAbs(x1), s2 = enAbs(x2), s3 = enAbs(x3);
    const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
    const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
    const p = enFirst();
    let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
    p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
    p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
    p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
    p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
    const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
    siluGrad(pd, py, x0, e0);
    siluGrad(pd + 16, py + 16, x1, e1);
    siluGrad(pd + 32, py + 32, x2, e2);
    siluGrad(pd + 48, py + 48, x3, e3);
  }
  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const xv = ldN(x + o, c);
    const e = vexpNegAbs(xv);
    const s = vsigmoidFromE(xv, e), oms = vOneMinusSigmoidFromE(xv, e);
    const d = f32x4.add(s, f32x4.mul(f32x4.mul(xv, s), oms));
    stN(dx + o, f32x4.add(ldN(dx + o, c), f32x4.mul(ldN(dout + o, c), d)), c);
  }
}

/** siluBackward on one whole vector, given e = e^−|x|. */
@inline function siluGrad(pdx: usize, pdout: usize, xv: v128, e: v128): void {
  const s = vsigmoidFromE(xv, e), oms = vOneMinusSigmoidFromE(xv, e);
  const d = f32x4.add(s, f32x4.mul(f32x4.mul(xv, s), oms));
  v128.store(pdx, f32x4.add(v128.load(pdx), f32x4.mul(v128.load(pdout), d)));
}

/** out (n) = softplus(x) = max(x,0) + log1p(exp(-|x|)), four vectors a turn in lock step (the same bits as vsoftplus) */
export function softplusForward(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    softplus16(out + o, v128.load(x + o), v128.load(x + o, 16), v128.load(x + o, 32), v128.load(x + o, 48));
  }
  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(out + o, vsoftplus(ldN(x + o, c)), c);
  }
}

/** out[0..16) = softplus of x0..x3, their exponentials and logarithms in lock step (vmath enAbs): vsoftplus's bits. */
@inline export function softplus16(out: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const s0 = enAbs(x0), s1 = enAbs(x1), s2 = enAbs(x2), s3 = enAbs(x3);
  const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
  const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
  const p = enFirst();
  let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
  p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
  p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
  p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
  p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
  const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
  const q = lpFirst();
  let q0 = lpHorner(q, e0, 0), q1 = lpHorner(q, e1, 0), q2 = lpHorner(q, e2, 0), q3 = lpHorner(q, e3, 0);
  q0 = lpHorner(q0, e0, 1); q1 = lpHorner(q1, e1, 1); q2 = lpHorner(q2, e2, 1); q3 = lpHorner(q3, e3, 1);
  q0 = lpHorner(q0, e0, 2); q1 = lpHorner(q1, e1, 2); q2 = lpHorner(q2, e2, 2); q3 = lpHorner(q3, e3, 2);
  q0 = lpHorner(q0, e0, 3); q1 = lpHorner(q1, e1, 3); q2 = lpHorner(q2, e2, 3); q3 = lpHorner(q3, e3, 3);
  q0 = lpHorner(q0, e0, 4); q1 = lpHorner(q1, e1, 4); q2 = lpHorner(q2, e2, 4); q3 = lpHorner(q3, e3, 4);
  q0 = lpHorner(q0, e0, 5); q1 = lpHorner(q1, e1, 5); q2 = lpHorner(q2, e2, 5); q3 = lpHorner(q3, e3, 5);
  q0 = lpHorner(q0, e0, 6); q1 = lpHorner(q1, e1, 6); q2 = lpHorner(q2, e2, 6); q3 = lpHorner(q3, e3, 6);
  q0 = lpHorner(q0, e0, 7); q1 = lpHorner(q1, e1, 7); q2 = lpHorner(q2, e2, 7); q3 = lpHorner(q3, e3, 7);
  const z = f32x4.splat(0);
  v128.store(out, f32x4.add(f32x4.pmax(x0, z), lpEnd(q0, e0)));
  v128.store(out, f32x4.add(f32x4.pmax(x1, z), lpEnd(q1, e1)), 16);
  v128.store(out, f32x4.add(f32x4.pmax(x2, z), lpEnd(q2, e2)), 32);
  v128.store(out, f32x4.add(f32x4.pmax(x3, z), lpEnd(q3, e3)), 48);
}

/** out[0..16) = y ⊙ silu(z) of four vectors each, the exponentials in lock step: silu4's bits. */
@inline export function gate16(out: usize, y: usize, z0: v128, z1: v128, z2: v128, z3: v128): void {
  const s0 = enAbs(z0), s1 = enAbs(z1), s2 = enAbs(z2), s3 = enAbs(z3);
  const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
  const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
  const p = enFirst();
  let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
  p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
  p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
  p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
  p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
  const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
  v128.store(out, f32x4.mul(v128.load(y), f32x4.mul(z0, vsigmoidFromE(z0, e0))));
  v128.store(out, f32x4.mul(v128.load(y, 16), f32x4.mul(z1, vsigmoidFromE(z1, e1))), 16);
  v128.store(out, f32x4.mul(v128.load(y, 32), f32x4.mul(z2, vsigmoidFromE(z2, e2))), 32);
  v128.store(out, f32x4.mul(v128.load(y, 48), f32x4.mul(z3, vsigmoidFromE(z3, e3))), 48);
}

/** dx (n) += dout ⊙ sigmoid(x) */
export function softplusBackward(dx: usize, dout: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    // four vectors a turn, their exponentials in lock step: the same bits
    const o = <usize>i << 2, px = x + o, pd = dx + o, py = dout + o;
    const x0 = v128.load(px), x1 = v128.load(px, 16), x2 = v128.load(px, 32), x3 = v128.load(px, 48);
    const s0 = enAbs(x0), s1 = enAbs(x1), s2 = enAbs(x2), s3 = enAbs(x3);
    const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
    const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
    const p = enFirst();
    let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
    p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
    p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
    p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
    p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
    const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
    v128.store(pd, f32x4.add(v128.load(pd), f32x4.mul(v128.load(py), vsigmoidFromE(x0, e0))));
    v128.store(pd, f32x4.add(v128.load(pd, 16), f32x4.mul(v128.load(py, 16), vsigmoidFromE(x1, e1))), 16);
    v128.store(pd, f32x4.add(v128.load(pd, 32), f32x4.mul(v128.load(py, 32), vsigmoidFromE(x2, e2))), 32);
    v128.store(pd, f32x4.add(v128.load(pd, 48), f32x4.mul(v128.load(py, 48), vsigmoidFromE(x3, e3))), 48);
  }
  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const xv = ldN(x + o, c);
    const s = vsigmoidFromE(xv, vexpNegAbs(xv));
    stN(dx + o, f32x4.add(ldN(dx + o, c), f32x4.mul(ldN(dout + o, c), s)), c);
  }
}

/** out (n) = silu(gate) ⊙ up: the gate of Mamba-1's output (up = y) and of Llama's MLP */
export function swigluForward(out: usize, gate: usize, up: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    // four vectors a turn, their exponentials in lock step: the same bits
    const o = <usize>i << 2, pg = gate + o, pu = up + o, po = out + o;
    const g0 = v128.load(pg), g1 = v128.load(pg, 16), g2 = v128.load(pg, 32), g3 = v128.load(pg, 48);
    const s0 = enAbs(g0), s1 = enAbs(g1), s2 = enAbs(g2), s3 = enAbs(g3);
    const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
    const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
    const p = enFirst();
    let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
    p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
    p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
    p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
    p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
    const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
    v128.store(po, f32x4.mul(f32x4.mul(g0, vsigmoidFromE(g0, e0)), v128.load(pu)));
    v128.store(po, f32x4.mul(f32x4.mul(g1, vsigmoidFromE(g1, e1)), v128.load(pu, 16)), 16);
    v128.store(po, f32x4.mul(f32x4.mul(g2, vsigmoidFromE(g2, e2)), v128.load(pu, 32)), 32);
    v128.store(po, f32x4.mul(f32x4.mul(g3, vsigmoidFromE(g3, e3)), v128.load(pu, 48)), 48);
  }
  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const g = ldN(gate + o, c);
    stN(out + o, f32x4.mul(f32x4.mul(g, vsigmoidFromE(g, vexpNegAbs(g))), ldN(up + o, c)), c);
  }
}

/**
 * dgate (n) += dout·up·(s + g·s·(1-s));  dup (n) += dout·g·s;  s = sigmoid(gate). One pass where
 * silu, mul and their three backward kernels took five; the same arithmetic as those, lane for lane.
 */
export function swigluBackward(dgate: usize, dup: usize, dout: usize, gate: usize, up: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    // four vectors a turn, their exponentials in lock step: the same bits
    const o = <usize>i << 2, pg = gate + o;
    const g0 = v128.load(pg), g1 = v128.load(pg, 16), g2 = v128.load(pg, 32), g3 = v128.load(pg, 48);
    const s0 = enAbs(g0), s1 = enAbs(g1), s2 = enAbs(g2), s3 = enAbs(g3);
    const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
    const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
    const p = enFirst();
    let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
    p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
    p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
    p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
    p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
    const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
    swigluGrad(dgate + o, dup + o, dout + o, up + o, g0, e0);
    swigluGrad(dgate + o + 16, dup + o + 16, dout + o + 16, up + o + 16, g1, e1);
    swigluGrad(dgate + o + 32, dup + o + 32, dout + o + 32, up + o + 32, g2, e2);
    swigluGrad(dgate + o + 48, dup + o + 48, dout + o + 48, up + o + 48, g3, e3);
  }
  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const g = ldN(gate + o, c), dy = ldN(dout + o, c);
    const e = vexpNegAbs(g);
    const s = vsigmoidFromE(g, e), oms = vOneMinusSigmoidFromE(g, e);
    const gs = f32x4.mul(g, s);
    const d = f32x4.add(s, f32x4.mul(gs, oms));
    stN(dgate + o, f32x4.add(ldN(dgate + o, c), f32x4.mul(f32x4.mul(dy, ldN(up + o, c)), d)), c);
    stN(dup + o, f32x4.add(ldN(dup + o, c), f32x4.mul(dy, gs)), c);
  }
}

/** swigluBackward on one whole vector, given e = e^−|g|. */
@inline function swigluGrad(pdg: usize, pdu: usize, pdy: usize, pup: usize, g: v128, e: v128): void {
  const dy = v128.load(pdy);
  const s = vsigmoidFromE(g, e), oms = vOneMinusSigmoidFromE(g, e);
  const gs = f32x4.mul(g, s);
  const d = f32x4.add(s, f32x4.mul(gs, oms));
  v128.store(pdg, f32x4.add(v128.load(pdg), f32x4.mul(f32x4.mul(dy, v128.load(pup)), d)));
  v128.store(pdu, f32x4.add(v128.load(pdu), f32x4.mul(dy, gs)));
}

/** out (n) = exp(x): exposes the vector exp (tests compare it with Math.exp). */
export function expForward(out: usize, x: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(out + o, vexp(ldN(x + o, c)), c);
  }
}

/**
 * dst (n) += p_0 + p_1 + … + p_{G-1}, partial g starting `ld` floats after partial g-1, added in
 * the fixed order g = 0, 1, … so the result does not depend on how threads split anything.
 */
export function accumulatePartials(dst: usize, partials: usize, G: i32, n: i32, ld: i32): void {
  const stride = <usize>ld << 2;
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    let s = v128.load(dst + o);
    for (let g = 0; g < G; g++) s = f32x4.add(s, v128.load(partials + <usize>g * stride + o));
    v128.store(dst + o, s);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let s = load<f32>(dst + o);
    for (let g = 0; g < G; g++) s += load<f32>(partials + <usize>g * stride + o);
    store<f32>(dst + o, s);
  }
}

/** Copy columns [c0, c0+w) of x (rows, C) into out (rows, w): one bulk copy per row. */
export function sliceColumns(out: usize, x: usize, rows: i32, C: i32, c0: i32, w: i32): void {
  const rowW = <usize>w << 2, rowC = <usize>C << 2;
  let src = x + (<usize>c0 << 2), dst = out;
  for (let r = 0; r < rows; r++) {
    memory.copy(dst, src, rowW);
    src += rowC;
    dst += rowW;
  }
}

/** dx (rows, C) columns [c0, c0+w) += dout (rows, w): the gradient of sliceColumns */
export function sliceColumnsBackward(dx: usize, dout: usize, rows: i32, C: i32, c0: i32, w: i32): void {
  const rowC = <usize>C << 2, rowW = <usize>w << 2;
  for (let r = 0; r < rows; r++) accumulate(dx + <usize>r * rowC + (<usize>c0 << 2), dout + <usize>r * rowW, w);
}
