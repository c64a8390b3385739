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

/** What lockStep16 finishes its four exponentials into (a compile-time constant at each use). */
export const LS_SILU: i32 = 0, LS_SOFTPLUS: i32 = 1, LS_GATE: i32 = 2, LS_SILU_BWD: i32 = 3, LS_SOFTPLUS_BWD: i32 = 4,
  LS_SWIGLU: i32 = 5, LS_SWIGLU_BWD: i32 = 6, LS_DT_SOFTPLUS: i32 = 7, LS_DT_BWD: i32 = 8;

/**
 * Four whole vectors x0..x3 of an elementwise kernel: their e^−|x| in lock step (vmath enAbs …
 * enEnd), for the softplus kinds their log1p too (lpFirst … lpEnd), then the kernel's own finish
 * on each, vector i at byte 16·i of the pointers: LS_SILU a = silu(x); LS_SOFTPLUS a = softplus(x);
 * LS_GATE a = b ⊙ silu(x); LS_SILU_BWD a += b ⊙ silu′(x); LS_SOFTPLUS_BWD a += b ⊙ sigmoid(x);
 * LS_SWIGLU a = silu(x) ⊙ b; LS_SWIGLU_BWD swigluBackward's two outputs a, b from dout c and up d;
 * LS_DT_SOFTPLUS a = softplus(x) clamped to [lo, hi]; LS_DT_BWD a += c ⊙ sigmoid(x), b += the same.
 * Each finish is its one-vector kernel's arithmetic, so the same bits.
 */
@inline export function lockStep16(kind: i32, x0: v128, x1: v128, x2: v128, x3: v128, a: usize, b: usize, c: usize, d: usize,
  lo: v128, hi: v128): void {
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
  if (kind == LS_SOFTPLUS || kind == LS_DT_SOFTPLUS) {
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
    const v0 = f32x4.add(f32x4.pmax(x0, z), lpEnd(q0, e0)), v1 = f32x4.add(f32x4.pmax(x1, z), lpEnd(q1, e1));
    const v2 = f32x4.add(f32x4.pmax(x2, z), lpEnd(q2, e2)), v3 = f32x4.add(f32x4.pmax(x3, z), lpEnd(q3, e3));
    if (kind == LS_SOFTPLUS) {
      v128.store(a, v0); v128.store(a, v1, 16); v128.store(a, v2, 32); v128.store(a, v3, 48);
    } else {
      v128.store(a, f32x4.pmin(hi, f32x4.pmax(lo, v0)));
      v128.store(a, f32x4.pmin(hi, f32x4.pmax(lo, v1)), 16);
      v128.store(a, f32x4.pmin(hi, f32x4.pmax(lo, v2)), 32);
      v128.store(a, f32x4.pmin(hi, f32x4.pmax(lo, v3)), 48);
    }
    return;
  }
  finish(kind, x0, e0, a, b, c, d);
  finish(kind, x1, e1, a + 16, b + 16, c + 16, d + 16);
  finish(kind, x2, e2, a + 32, b + 32, c + 32, d + 32);
  finish(kind, x3, e3, a + 48, b + 48, c + 48, d + 48);
}

/** lockStep16's finish of one vector x with e = e^−|x| (the kinds without a logarithm). */
@inline function finish(kind: i32, x: v128, e: v128, a: usize, b: usize, c: usize, d: usize): void {
  if (kind == LS_SILU) v128.store(a, f32x4.mul(x, vsigmoidFromE(x, e)));
  else if (kind == LS_GATE) v128.store(a, f32x4.mul(v128.load(b), f32x4.mul(x, vsigmoidFromE(x, e))));
  else if (kind == LS_SWIGLU) v128.store(a, f32x4.mul(f32x4.mul(x, vsigmoidFromE(x, e)), v128.load(b)));
  else if (kind == LS_SOFTPLUS_BWD) v128.store(a, f32x4.add(v128.load(a), f32x4.mul(v128.load(b), vsigmoidFromE(x, e))));
  else if (kind == LS_DT_BWD) {
    const g = f32x4.mul(v128.load(c), vsigmoidFromE(x, e));
    v128.store(a, f32x4.add(v128.load(a), g));
    v128.store(b, f32x4.add(v128.load(b), g));
  } else {
    // LS_SILU_BWD and LS_SWIGLU_BWD: d = s + x·s·(1 − s)
    const s = vsigmoidFromE(x, e), oms = vOneMinusSigmoidFromE(x, e);
    if (kind == LS_SILU_BWD) {
      const dd = f32x4.add(s, f32x4.mul(f32x4.mul(x, s), oms));
      v128.store(a, f32x4.add(v128.load(a), f32x4.mul(v128.load(b), dd)));
    } else {
      const dy = v128.load(c), gs = f32x4.mul(x, s);
      const dd = f32x4.add(s, f32x4.mul(gs, oms));
      v128.store(a, f32x4.add(v128.load(a), f32x4.mul(f32x4.mul(dy, v128.load(d)), dd)));
      v128.store(b, f32x4.add(v128.load(b), f32x4.mul(dy, gs)));
    }
  }
}

/**
 * out (n) = silu(x) = x·sigmoid(x), four vectors a turn with their exponentials in lock step
 * (vmath enAbs): the same bits as silu4 on each.
 */
export function siluForward(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2, px = x + o;
    lockStep16(LS_SILU, v128.load(px), v128.load(px, 16), v128.load(px, 32), v128.load(px, 48), out + o, 0, 0, 0, f32x4.splat(0), f32x4.splat(0));
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
    const o = <usize>i << 2, px = x + o;
    lockStep16(LS_SILU_BWD, v128.load(px), v128.load(px, 16), v128.load(px, 32), v128.load(px, 48), dx + o, dout + o, 0, 0, f32x4.splat(0), f32x4.splat(0));
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

/** out (n) = softplus(x) = max(x,0) + log1p(exp(-|x|)), four vectors a turn in lock step (the same bits as vsoftplus) */
export function softplusForward(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2, px = x + o;
    lockStep16(LS_SOFTPLUS, v128.load(px), v128.load(px, 16), v128.load(px, 32), v128.load(px, 48), out + o, 0, 0, 0, f32x4.splat(0), f32x4.splat(0));
  }

  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(out + o, vsoftplus(ldN(x + o, c)), c);
  }
}

/** dx (n) += dout ⊙ sigmoid(x) */
export function softplusBackward(dx: usize, dout: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2, px = x + o;
    lockStep16(LS_SOFTPLUS_BWD, v128.load(px), v128.load(px, 16), v128.load(px, 32), v128.load(px, 48), dx + o, dout + o, 0, 0, f32x4.splat(0), f32x4.splat(0));
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
    const o = <usize>i << 2, pg = gate + o;
    lockStep16(LS_SWIGLU, v128.load(pg), v128.load(pg, 16), v128.load(pg, 32), v128.load(pg, 48), out + o, up + o, 0, 0, f32x4.splat(0), f32x4.splat(0));
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
    const o = <usize>i << 2, pg = gate + o;
    lockStep16(LS_SWIGLU_BWD, v128.load(pg), v128.load(pg, 16), v128.load(pg, 32), v128.load(pg, 48), dgate + o, dup + o, dout + o, up + o, f32x4.splat(0), f32x4.splat(0));
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
