/**
 * Products with q4 weights repacked in groups of four rows ("q4x4") — twins of
 * src/kernels/ref/quant4x4.ts, which documents the layout and the prepared activation. Every
 * output takes the arithmetic of quant.ts's products (the exact integer total of each block, then
 * acc += f32(isum) · (d_w · d_x) block after block), so a packed weight gives the bits its row
 * layout gives, on either build.
 */
import { gather4, scaleAdd4, scatter4, sum4 } from './quant';

const QK: i32 = 32;
const PREP: usize = 96; // bytes of a prepared activation block

/** dq, ds (packed) <- q (N, K/2) nibbles and s (N, K/32) scales in the row layout; N a multiple of 4. */
export function repackQ4x4(dq: usize, ds: usize, q: usize, s: usize, N: i32, K: i32): void {
  const nb = K / QK, rowW = <usize>K >> 1, rowS = <usize>nb << 2;
  const flip = i16x8.splat(-32768); // the top bit of every odd byte
  for (let n = 0; n < N; n++) {
    const g = <usize>(n >> 2), r = <usize>(n & 3);
    for (let b = 0; b < nb; b++) {
      const blk = g * <usize>nb + <usize>b;
      v128.store(dq + (blk << 6) + (r << 4), v128.xor(v128.load(q + <usize>n * rowW + (<usize>b << 4)), flip));
      store<f32>(ds + (blk << 4) + (r << 2), load<f32>(s + <usize>n * rowS + (<usize>b << 2)));
    }
  }
}

/** prep (rows, K/32 · 96 bytes) <- q8 rows qx (rows, K) and scales sx (rows, K/32). */
export function prepQ4x4(prep: usize, qx: usize, sx: usize, rows: i32, K: i32): void {
  const nb = K / QK;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const i = <usize>r * <usize>nb + <usize>b, xp = qx + i * QK, pp = prep + i * PREP;
      const v0 = v128.load(xp), v1 = v128.load(xp, 16);
      // lane l: a = x[2l], c = x[2l+1] (the first 16), b = x[16+2l], d = x[17+2l], sign-extended in place
      const a = i16x8.shr_s(i16x8.shl(v0, 8), 8), c = i16x8.shr_s(v0, 8), bb = i16x8.shr_s(i16x8.shl(v1, 8), 8), d = i16x8.shr_s(v1, 8);
      v128.store(pp, a);
      v128.store(pp, i16x8.sub(bb, i16x8.shl(a, 4)), 16);
      v128.store(pp, i16x8.sub(c, i16x8.shl(bb, 4)), 32);
      v128.store(pp, i16x8.sub(d, i16x8.shl(c, 4)), 48);
      const o = i32x4.dot_i16x8_s(i16x8.add(i16x8.add(a, bb), c), i16x8.splat(8));
      const t = i32x4.add(o, v128.shuffle<i32>(o, o, 2, 3, 0, 1));
      v128.store(pp, i32x4.add(t, v128.shuffle<i32>(t, t, 1, 0, 3, 2)), 64);
      v128.store(pp, f32x4.splat(load<f32>(sx + (i << 2))), 80);
    }
  }
}

/**
 * The prepared block at pp against one packed row's 16 bytes w: i32x4 lane sums, before the
 * offset (A·w + B·(w >> 4) + C·(w >> 8) + D·(w >> 12), arithmetic shifts).
 */
@inline function rowDot(pp: usize, w: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load(pp), w), i32x4.dot_i16x8_s(v128.load(pp, 16), i16x8.shr_s(w, 4))),
    i32x4.add(i32x4.dot_i16x8_s(v128.load(pp, 32), i16x8.shr_s(w, 8)), i32x4.dot_i16x8_s(v128.load(pp, 48), i16x8.shr_s(w, 12))),
  );
}

/** One prepared row (pp) against G groups of packed rows (pw, ps): 4G outputs at po. */
@inline function gemv4x4(po: usize, pp: usize, pw: usize, ps: usize, G: i32, nb: i32): void {
  for (let g = 0; g < G; g++) {
    let acc = f32x4.splat(0), p = pp;
    for (let b = 0; b < nb; b++) {
      const isum = i32x4.sub(sum4(rowDot(p, v128.load(pw)), rowDot(p, v128.load(pw, 16)), rowDot(p, v128.load(pw, 32)), rowDot(p, v128.load(pw, 48))), v128.load(p, 64));
      acc = scaleAdd4(acc, isum, v128.load(ps), v128.load(p, 80));
      pw += 64; ps += 16; p += PREP;
    }
    v128.store(po + (<usize>g << 4), acc);
  }
}

/**
 * Four prepared rows (pp, rows rowP bytes apart) against one group of four packed weight rows
 * (pw, scales ps): each weight lane's shifts serve the four prepared rows, each prepared block
 * the four weight rows, and a weight row's totals and scales for the four prepared rows share the
 * lanes of one vector. Output column r of the group goes to po + 4r, rows ldo apart.
 */
@inline function tileGroup(po: usize, ldo: usize, pp: usize, rowP: usize, pw: usize, ps: usize, nb: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const off = gather4(pp + 64, rowP), dx = gather4(pp + 80, rowP);
    const w0 = v128.load(pw), w1 = v128.load(pw, 16), w2 = v128.load(pw, 32), w3 = v128.load(pw, 48);
    a0 = scaleAdd4(a0, i32x4.sub(sum4(rowDot(pp, w0), rowDot(pp + rowP, w0), rowDot(pp + 2 * rowP, w0), rowDot(pp + 3 * rowP, w0)), off), f32x4.splat(load<f32>(ps)), dx);
    a1 = scaleAdd4(a1, i32x4.sub(sum4(rowDot(pp, w1), rowDot(pp + rowP, w1), rowDot(pp + 2 * rowP, w1), rowDot(pp + 3 * rowP, w1)), off), f32x4.splat(load<f32>(ps, 4)), dx);
    a2 = scaleAdd4(a2, i32x4.sub(sum4(rowDot(pp, w2), rowDot(pp + rowP, w2), rowDot(pp + 2 * rowP, w2), rowDot(pp + 3 * rowP, w2)), off), f32x4.splat(load<f32>(ps, 8)), dx);
    a3 = scaleAdd4(a3, i32x4.sub(sum4(rowDot(pp, w3), rowDot(pp + rowP, w3), rowDot(pp + 2 * rowP, w3), rowDot(pp + 3 * rowP, w3)), off), f32x4.splat(load<f32>(ps, 12)), dx);
    pw += 64; ps += 16; pp += PREP;
  }
  scatter4(po, ldo, a0); scatter4(po + 4, ldo, a1); scatter4(po + 8, ldo, a2); scatter4(po + 12, ldo, a3);
}

/**
 * out (M, N; rows ldo floats apart) = x (M, K) @ W (N, K)^T, W packed (repackQ4x4), x prepared
 * (prepQ4x4). One row is the decoding GEMV; more run as a GEMM: groups of weight rows stay in
 * cache (≈ 128 KiB) while the prepared rows pass them four at a time (tileGroup), the last
 * M mod 4 by the GEMV.
 */
export function matmulQ4x4Strided(out: usize, prep: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32): void {
  const nb = K / QK, G = N >> 2;
  const gW = <usize>nb << 6, gS = <usize>nb << 4, rowP = <usize>nb * PREP, rowO = <usize>ldo << 2;
  if (M == 1) {
    gemv4x4(out, prep, qw, sw, G, nb);
    return;
  }
  const JG = max<i32>(1, <i32>(<usize>131072 / (gW + gS)));
  for (let g0 = 0; g0 < G; g0 += JG) {
    const g1 = min<i32>(G, g0 + JG);
    let i = 0;
    for (; i + 4 <= M; i += 4)
      for (let g = g0; g < g1; g++)
        tileGroup(out + <usize>i * rowO + (<usize>g << 4), rowO, prep + <usize>i * rowP, rowP, qw + <usize>g * gW, sw + <usize>g * gS, nb);
    for (; i < M; i++) gemv4x4(out + <usize>i * rowO + (<usize>g0 << 4), prep + <usize>i * rowP, qw + <usize>g0 * gW, sw + <usize>g0 * gS, g1 - g0, nb);
  }
}

export function matmulQ4x4(out: usize, prep: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32): void {
  matmulQ4x4Strided(out, prep, qw, sw, M, N, K, N);
}

/** out (N, K) <- the packed weights dequantised: element values (n − 8)·d in the row order. */
export function dequantizeQ4x4(out: usize, qw: usize, sw: usize, N: i32, K: i32): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++) {
    const g = <usize>(n >> 2), r = <usize>(n & 3);
    for (let b = 0; b < nb; b++) {
      const blk = g * <usize>nb + <usize>b;
      const d = load<f32>(sw + (blk << 4) + (r << 2));
      const pw = qw + (blk << 6) + (r << 4), po = out + ((<usize>n * <usize>K + <usize>b * QK) << 2);
      for (let j = 0; j < 16; j++) {
        const byte = <i32>load<u8>(pw + <usize>j) ^ (j & 1 ? 0x80 : 0);
        store<f32>(po + (<usize>j << 2), <f32>((byte & 15) - 8) * d);
        store<f32>(po + (<usize>(j + 16) << 2), <f32>((byte >> 4) - 8) * d);
      }
    }
  }
}
