/**
 * Elementwise kernels, f32x4 with a partial last vector. Same contracts as
 * src/kernels/ref/elementwise.ts: backward kernels accumulate into dx. sigmoid, silu and softplus
 * only ever evaluate exp(-|x|) ≤ 1, so nothing overflows for any finite input.
 */
import {
  ldN, stN, vexp, vexpNegAbs, vsoftplus, vsigmoidFromE, vOneMinusSigmoidFromE,
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
 * out (n) = silu(x) = x·sigmoid(x), two vectors a turn: V8 rebuilds each v128 constant at its uses
 * in a loop body (three instructions each), so two vectors share one build of them.
 */
export function siluForward(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    v128.store(out + o, silu4(v128.load(x + o)));
    v128.store(out + o, silu4(v128.load(x + o, 16)), 16);
  }
  for (; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    stN(out + o, silu4(ldN(x + o, c)), c);
  }
}

/** dx (n) += dout ⊙ (s + x·s·(1-s)), s = sigmoid(x) */
export function siluBackward(dx: usize, dout: usize, x: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const xv = ldN(x + o, c);
    const e = vexpNegAbs(xv);
    const s = vsigmoidFromE(xv, e), oms = vOneMinusSigmoidFromE(xv, e);
    const d = f32x4.add(s, f32x4.mul(f32x4.mul(xv, s), oms));
    stN(dx + o, f32x4.add(ldN(dx + o, c), f32x4.mul(ldN(dout + o, c), d)), c);
  }
}

/** out (n) = softplus(x) = max(x,0) + log1p(exp(-|x|)) */
export function softplusForward(out: usize, x: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const xv = ldN(x + o, c);
    stN(out + o, vsoftplus(xv), c);
  }
}

/** dx (n) += dout ⊙ sigmoid(x) */
export function softplusBackward(dx: usize, dout: usize, x: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2, c = n - i;
    const xv = ldN(x + o, c);
    const s = vsigmoidFromE(xv, vexpNegAbs(xv));
    stN(dx + o, f32x4.add(ldN(dx + o, c), f32x4.mul(ldN(dout + o, c), s)), c);
  }
}

/** out (n) = silu(gate) ⊙ up: the gate of Mamba-1's output (up = y) and of Llama's MLP */
export function swigluForward(out: usize, gate: usize, up: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) {
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
  for (let i = 0; i < n; i += 4) {
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
