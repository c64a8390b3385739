/**
 * The elementwise kernels around Mamba-2's SSD, f32x4: twins of src/kernels/ref/mamba2.ts (read it
 * for the math and the shapes). Backward kernels accumulate.
 */
import { ldN, stN, hsum, vexpNegAbs, vlog1pUnit, vsoftplus, vsigmoidFromE, vOneMinusSigmoidFromE } from './vmath';
import { lockStep16, LS_DT_SOFTPLUS, LS_DT_BWD } from './elementwise';

/** out (rows, H) = clamp(softplus(dt + bias), lo, hi) */
export function dtSoftplusForward(out: usize, dt: usize, bias: usize, rows: i32, H: i32, lo: f32, hi: f32): void {
  const rowH = <usize>H << 2, lv = f32x4.splat(lo), hv = f32x4.splat(hi);
  for (let r = 0; r < rows; r++) {
    let h = 0;
    for (; h + 16 <= H; h += 16) {
      // four vectors a turn, their exponentials and logarithms in lock step (elementwise lockStep16): vsoftplus's bits
      const o = <usize>r * rowH + (<usize>h << 2), pd = dt + o, pb = bias + (<usize>h << 2);
      lockStep16(LS_DT_SOFTPLUS, f32x4.add(v128.load(pd), v128.load(pb)), f32x4.add(v128.load(pd, 16), v128.load(pb, 16)),
        f32x4.add(v128.load(pd, 32), v128.load(pb, 32)), f32x4.add(v128.load(pd, 48), v128.load(pb, 48)), out + o, 0, 0, 0, lv, hv);
    }
    for (; h < H; h += 4) {
      const o = <usize>r * rowH + (<usize>h << 2), c = H - h;
      const v = f32x4.add(ldN(dt + o, c), ldN(bias + (<usize>h << 2), c));
      const sp = vsoftplus(v);
      stN(out + o, f32x4.pmin(hv, f32x4.pmax(lv, sp)), c);
    }
  }
}

/**
 * ddt (rows, H) += dout·sigmoid(dt + bias) where the clamp does not bite, dbias (H) += column sums.
 * With no clamp (lo ≤ 0, hi = +∞: Mamba-1, and Mamba-2's default) softplus ≥ 0 never leaves the
 * range, so the softplus itself (a log1p per element) is not recomputed.
 */
export function dtSoftplusBackward(ddt: usize, dbias: usize, dout: usize, dt: usize, bias: usize, rows: i32, H: i32, lo: f32, hi: f32): void {
  const rowH = <usize>H << 2, lv = f32x4.splat(lo), hv = f32x4.splat(hi);
  const clamps = lo > 0 || hi < Infinity;
  for (let r = 0; r < rows; r++) {
    let h = 0;
    if (!clamps) {
      for (; h + 16 <= H; h += 16) {
        // four vectors a turn, their exponentials in lock step (elementwise lockStep16): the same bits
        const o = <usize>r * rowH + (<usize>h << 2), ob = <usize>h << 2, pd = dt + o, pb = bias + ob;
        lockStep16(LS_DT_BWD, f32x4.add(v128.load(pd), v128.load(pb)), f32x4.add(v128.load(pd, 16), v128.load(pb, 16)),
          f32x4.add(v128.load(pd, 32), v128.load(pb, 32)), f32x4.add(v128.load(pd, 48), v128.load(pb, 48)), ddt + o, dbias + ob, dout + o, 0, f32x4.splat(0), f32x4.splat(0));
      }
    }
    for (; h < H; h += 4) {
      const o = <usize>r * rowH + (<usize>h << 2), ob = <usize>h << 2, c = H - h;
      const v = f32x4.add(ldN(dt + o, c), ldN(bias + ob, c));
      const e = vexpNegAbs(v);
      let g = f32x4.mul(ldN(dout + o, c), vsigmoidFromE(v, e));
      if (clamps) {
        const sp = f32x4.add(f32x4.pmax(v, f32x4.splat(0)), vlog1pUnit(e));
        g = v128.and(g, v128.and(f32x4.ge(sp, lv), f32x4.le(sp, hv)));
      }
      stN(ddt + o, f32x4.add(ldN(ddt + o, c), g), c);
      stN(dbias + ob, f32x4.add(ldN(dbias + ob, c), g), c);
    }
  }
}

/** silu(z) and silu'(z) lane-wise. */
@inline function siluOf(z: v128): v128 { return f32x4.mul(z, vsigmoidFromE(z, vexpNegAbs(z))); }

/** out (rows, D) = RMSNorm over groups of gs of (y ⊙ silu(z)), times w; rstd (rows, D/gs) */
export function gatedRmsnormForward(out: usize, rstd: usize, y: usize, z: usize, w: usize, rows: i32, D: i32, gs: i32, eps: f32): void {
  const ng = D / gs;
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < ng; k++) {
      const o = (<usize>(r * D + k * gs)) << 2, ow = (<usize>(k * gs)) << 2;
      let ss = f32x4.splat(0);
      for (let i = 0; i < gs; i += 4) {
        const oi = <usize>i << 2, c = gs - i;
        const g = f32x4.mul(ldN(y + o + oi, c), siluOf(ldN(z + o + oi, c)));
        ss = f32x4.add(ss, f32x4.mul(g, g));
      }
      const rs = <f32>(1.0 / Math.sqrt(<f64>hsum(ss) / <f64>gs + <f64>eps));
      store<f32>(rstd + (<usize>(r * ng + k) << 2), rs);
      const rv = f32x4.splat(rs);
      for (let i = 0; i < gs; i += 4) {
        const oi = <usize>i << 2, c = gs - i;
        const g = f32x4.mul(ldN(y + o + oi, c), siluOf(ldN(z + o + oi, c)));
        stN(out + o + oi, f32x4.mul(f32x4.mul(g, rv), ldN(w + ow + oi, c)), c);
      }
    }
  }
}

/** dy, dz (rows, D) += …, dw (D) += …: see gatedRmsnormBackward in the reference */
export function gatedRmsnormBackward(dy: usize, dz: usize, dw: usize, dout: usize, y: usize, z: usize, w: usize, rstd: usize,
  rows: i32, D: i32, gs: i32): void {
  const ng = D / gs;
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < ng; k++) {
      const o = (<usize>(r * D + k * gs)) << 2, ow = (<usize>(k * gs)) << 2;
      const rs = load<f32>(rstd + (<usize>(r * ng + k) << 2)), rv = f32x4.splat(rs);
      let dotv = f32x4.splat(0);
      for (let i = 0; i < gs; i += 4) {
        const oi = <usize>i << 2, c = gs - i;
        const g = f32x4.mul(ldN(y + o + oi, c), siluOf(ldN(z + o + oi, c)));
        dotv = f32x4.add(dotv, f32x4.mul(f32x4.mul(ldN(dout + o + oi, c), ldN(w + ow + oi, c)), f32x4.mul(g, rv)));
      }
      const mv = f32x4.splat(hsum(dotv) / <f32>gs);
      for (let i = 0; i < gs; i += 4) {
        const oi = <usize>i << 2, c = gs - i;
        const zv = ldN(z + o + oi, c), yv = ldN(y + o + oi, c), gv = ldN(dout + o + oi, c);
        const e = vexpNegAbs(zv), s = vsigmoidFromE(zv, e), oms = vOneMinusSigmoidFromE(zv, e);
        const silu = f32x4.mul(zv, s), ghat = f32x4.mul(f32x4.mul(yv, silu), rv);
        stN(dw + ow + oi, f32x4.add(ldN(dw + ow + oi, c), f32x4.mul(gv, ghat)), c);
        const dg = f32x4.mul(rv, f32x4.sub(f32x4.mul(gv, ldN(w + ow + oi, c)), f32x4.mul(ghat, mv)));
        stN(dy + o + oi, f32x4.add(ldN(dy + o + oi, c), f32x4.mul(dg, silu)), c);
        const dsilu = f32x4.add(s, f32x4.mul(f32x4.mul(zv, s), oms));
        stN(dz + o + oi, f32x4.add(ldN(dz + o + oi, c), f32x4.mul(f32x4.mul(dg, yv), dsilu)), c);
      }
    }
  }
}
