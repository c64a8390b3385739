/**
 * The elementwise kernels around Mamba-2's SSD, f32x4: twins of src/kernels/ref/mamba2.ts (read it
 * for the math and the shapes). Backward kernels accumulate.
 */
import {
  ldN, stN, hsum, vexpNegAbs, vlog1pUnit, vsoftplus, vsigmoidFromE, vOneMinusSigmoidFromE,
  enAbs, enRound, enRest, enFirst, enHorner, enEnd, lpFirst, lpHorner, lpEnd,
} from './vmath';

/** out (rows, H) = clamp(softplus(dt + bias), lo, hi) */
export function dtSoftplusForward(out: usize, dt: usize, bias: usize, rows: i32, H: i32, lo: f32, hi: f32): void {
  const rowH = <usize>H << 2, lv = f32x4.splat(lo), hv = f32x4.splat(hi);
  for (let r = 0; r < rows; r++) {
    let h = 0;
    for (; h + 16 <= H; h += 16) {
      // four vectors a turn, their exponentials and logarithms in lock step: vsoftplus's bits
      const o = <usize>r * rowH + (<usize>h << 2), pd = dt + o, pb = bias + (<usize>h << 2), po = out + o;
      const v0 = f32x4.add(v128.load(pd), v128.load(pb)), v1 = f32x4.add(v128.load(pd, 16), v128.load(pb, 16));
      const v2 = f32x4.add(v128.load(pd, 32), v128.load(pb, 32)), v3 = f32x4.add(v128.load(pd, 48), v128.load(pb, 48));
      const s0 = enAbs(v0), s1 = enAbs(v1), s2 = enAbs(v2), s3 = enAbs(v3);
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
      v128.store(po, f32x4.pmin(hv, f32x4.pmax(lv, f32x4.add(f32x4.pmax(v0, z), lpEnd(q0, e0)))));
      v128.store(po, f32x4.pmin(hv, f32x4.pmax(lv, f32x4.add(f32x4.pmax(v1, z), lpEnd(q1, e1)))), 16);
      v128.store(po, f32x4.pmin(hv, f32x4.pmax(lv, f32x4.add(f32x4.pmax(v2, z), lpEnd(q2, e2)))), 32);
      v128.store(po, f32x4.pmin(hv, f32x4.pmax(lv, f32x4.add(f32x4.pmax(v3, z), lpEnd(q3, e3)))), 48);
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
        // four vectors a turn, their exponentials in lock step: the same bits
        const o = <usize>r * rowH + (<usize>h << 2), ob = <usize>h << 2, pd = dt + o, pb = bias + ob;
        const v0 = f32x4.add(v128.load(pd), v128.load(pb)), v1 = f32x4.add(v128.load(pd, 16), v128.load(pb, 16));
        const v2 = f32x4.add(v128.load(pd, 32), v128.load(pb, 32)), v3 = f32x4.add(v128.load(pd, 48), v128.load(pb, 48));
        const s0 = enAbs(v0), s1 = enAbs(v1), s2 = enAbs(v2), s3 = enAbs(v3);
        const t0 = enRound(s0), t1 = enRound(s1), t2 = enRound(s2), t3 = enRound(s3);
        const r0 = enRest(s0, t0), r1 = enRest(s1, t1), r2 = enRest(s2, t2), r3 = enRest(s3, t3);
        const p = enFirst();
        let p0 = enHorner(p, r0, 0), p1 = enHorner(p, r1, 0), p2 = enHorner(p, r2, 0), p3 = enHorner(p, r3, 0);
        p0 = enHorner(p0, r0, 1); p1 = enHorner(p1, r1, 1); p2 = enHorner(p2, r2, 1); p3 = enHorner(p3, r3, 1);
        p0 = enHorner(p0, r0, 2); p1 = enHorner(p1, r1, 2); p2 = enHorner(p2, r2, 2); p3 = enHorner(p3, r3, 2);
        p0 = enHorner(p0, r0, 3); p1 = enHorner(p1, r1, 3); p2 = enHorner(p2, r2, 3); p3 = enHorner(p3, r3, 3);
        p0 = enHorner(p0, r0, 4); p1 = enHorner(p1, r1, 4); p2 = enHorner(p2, r2, 4); p3 = enHorner(p3, r3, 4);
        const e0 = enEnd(p0, r0, t0), e1 = enEnd(p1, r1, t1), e2 = enEnd(p2, r2, t2), e3 = enEnd(p3, r3, t3);
        dtGrad(ddt + o, dbias + ob, dout + o, v0, e0);
        dtGrad(ddt + o + 16, dbias + ob + 16, dout + o + 16, v1, e1);
        dtGrad(ddt + o + 32, dbias + ob + 32, dout + o + 32, v2, e2);
        dtGrad(ddt + o + 48, dbias + ob + 48, dout + o + 48, v3, e3);
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

/** dtSoftplusBackward without a clamp on one whole vector, given e = e^−|v|. */
@inline function dtGrad(pddt: usize, pdb: usize, pdout: usize, v: v128, e: v128): void {
  const g = f32x4.mul(v128.load(pdout), vsigmoidFromE(v, e));
  v128.store(pddt, f32x4.add(v128.load(pddt), g));
  v128.store(pdb, f32x4.add(v128.load(pdb), g));
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
