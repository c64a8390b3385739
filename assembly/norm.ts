/**
 * RMSNorm, f32x4 over the feature dimension. Same contracts as src/kernels/ref/norm.ts
 * (the backward accumulates into dx and dw).
 */
import { ldN, stN, hsum } from './vmath';

/** One row: rstd = 1/sqrt(Σx²/D + eps) from the lane sums ss, then out = x·rstd·w. */
@inline function normRow(po: usize, prstd: usize, px: usize, w: usize, ss: v128, D: i32, eps: f32): void {
  const rs = <f32>(1.0 / Math.sqrt(<f64>hsum(ss) / <f64>D + <f64>eps));
  store<f32>(prstd, rs);
  const rv = f32x4.splat(rs);
  for (let i = 0; i < D; i += 4) {
    const o = <usize>i << 2, c = D - i;
    stN(po + o, f32x4.mul(f32x4.mul(ldN(px + o, c), rv), ldN(w + o, c)), c);
  }
}

/** out (rows, D), rstd (rows) <- x (rows, D), w (D) */
export function rmsnormForward(out: usize, rstd: usize, x: usize, w: usize, rows: i32, D: i32, eps: f32): void {
  const rowD = <usize>D << 2;
  for (let r = 0; r < rows; r++) {
    const px = x + <usize>r * rowD, po = out + <usize>r * rowD;
    let ss = f32x4.splat(0);
    for (let i = 0; i < D; i += 4) {
      const v = ldN(px + (<usize>i << 2), D - i);
      ss = f32x4.add(ss, f32x4.mul(v, v));
    }
    normRow(po, rstd + (<usize>r << 2), px, w, ss, D, eps);
  }
}

/**
 * dx (rows, D) += rstd·(dout·w − xhat·mean(dout·w·xhat)), dw (D) += Σ_rows dout·xhat, xhat = x·rstd
 */
export function rmsnormBackward(dx: usize, dw: usize, dout: usize, x: usize, w: usize, rstd: usize, rows: i32, D: i32): void {
  const rowD = <usize>D << 2;
  for (let r = 0; r < rows; r++) {
    const o0 = <usize>r * rowD;
    const px = x + o0, pg = dout + o0, pdx = dx + o0;
    const rs = load<f32>(rstd + (<usize>r << 2));
    const rv = f32x4.splat(rs);
    let dot = f32x4.splat(0);
    for (let i = 0; i < D; i += 4) {
      const o = <usize>i << 2, c = D - i;
      dot = f32x4.add(dot, f32x4.mul(f32x4.mul(ldN(pg + o, c), ldN(w + o, c)), ldN(px + o, c)));
    }
    const mv = f32x4.splat(hsum(dot) * rs / <f32>D);
    for (let i = 0; i < D; i += 4) {
      const o = <usize>i << 2, c = D - i;
      const g = ldN(pg + o, c);
      const xhat = f32x4.mul(ldN(px + o, c), rv);
      stN(dw + o, f32x4.add(ldN(dw + o, c), f32x4.mul(g, xhat)), c);
      const t = f32x4.sub(f32x4.mul(g, ldN(w + o, c)), f32x4.mul(xhat, mv));
      stN(pdx + o, f32x4.add(ldN(pdx + o, c), f32x4.mul(rv, t)), c);
    }
  }
}

/**
 * hOut = h + delta, then out = RMSNorm(hOut)·w, in one pass that also sums the squares (twin of
 * addRmsnormForward in src/kernels/ref/norm.ts; hOut may alias h).
 */
export function addRmsnormForward(hOut: usize, out: usize, rstd: usize, h: usize, delta: usize, w: usize, rows: i32, D: i32, eps: f32): void {
  const rowD = <usize>D << 2;
  for (let r = 0; r < rows; r++) {
    const ph = h + <usize>r * rowD, pd = delta + <usize>r * rowD, pho = hOut + <usize>r * rowD, po = out + <usize>r * rowD;
    let ss = f32x4.splat(0);
    for (let i = 0; i < D; i += 4) {
      const o = <usize>i << 2, c = D - i;
      const v = f32x4.add(ldN(ph + o, c), ldN(pd + o, c));
      stN(pho + o, v, c);
      ss = f32x4.add(ss, f32x4.mul(v, v));
    }
    normRow(po, rstd + (<usize>r << 2), pho, w, ss, D, eps);
  }
}
