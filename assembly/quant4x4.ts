/**
 * Products with q8 and q4 weights repacked in groups of four rows ("x4") — twins of
 * src/kernels/ref/quant4x4.ts, which documents both layouts and the prepared activation. A 16-byte
 * weight vector holds four rows side by side, so each `pmaddwd` leaves each row's partial sum in
 * its own i32 lane: a block's four totals come out in one vector with no reduction across lanes.
 * Every output takes the arithmetic of quant.ts's products (the exact integer total of each block,
 * then acc += f32(isum) · (d_w · d_x) block after block), so a packed weight gives the bits its
 * row layout gives.
 */
import { scaleAdd4 } from './quant';

const QK: i32 = 32;
const PREP: usize = 288; // bytes of a prepared activation block: 16 coefficient vectors, offset, scale

// ---------------------------------------------------------------- repacking (at load)

/** q8x4 byte of element k of block b of row n (see the twin's q8Slot). */
@inline function q8Slot(n: i32, b: i32, k: i32, nb: i32): usize {
  const lane = 2 * (n & 3) + ((k >> 1) & 1);
  return (((<usize>(n >> 2) * <usize>nb + <usize>b) * 8 + <usize>(k >> 2)) << 4) + <usize>(2 * lane + (k & 1));
}

/** q4x4 byte of element k of block b of row n; its nibble is the high one when k is odd. */
@inline function q4Slot(n: i32, b: i32, k: i32, nb: i32): usize {
  const lane = 2 * (n & 3) + ((k >> 2) & 1);
  return (((<usize>(n >> 2) * <usize>nb + <usize>b) * 4 + <usize>(k >> 3)) << 4) + <usize>(2 * lane + ((k & 3) >> 1));
}

@inline function scaleAt(ds: usize, n: i32, b: i32, nb: i32): usize {
  return ds + ((((<usize>(n >> 2) * <usize>nb + <usize>b) << 2) + <usize>(n & 3)) << 2);
}

/** dq, ds (packed) <- q (N, K/2) nibbles and s (N, K/32) in the row layout; N a multiple of 4. */
export function repackQ4x4(dq: usize, ds: usize, q: usize, s: usize, N: i32, K: i32): void {
  const nb = K / QK;
  memory.fill(dq, 0, (<usize>N * <usize>K) >> 1);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      store<f32>(scaleAt(ds, n, b, nb), load<f32>(s + ((<usize>n * <usize>nb + <usize>b) << 2)));
      const row = q + ((<usize>n * <usize>K) >> 1) + (<usize>b << 4);
      for (let k = 0; k < QK; k++) {
        const byte = <i32>load<u8>(row + <usize>(k & 15));
        let nib = k < 16 ? byte & 15 : byte >> 4;
        if ((k & 3) == 3) nib ^= 8; // a lane's top nibble, read signed: n − 8
        const p = dq + q4Slot(n, b, k, nb);
        store<u8>(p, <u8>(<i32>load<u8>(p) | (nib << ((k & 1) << 2))));
      }
    }
}

/** dq, ds (packed) <- q (N, K) int8 and s (N, K/32) in the row layout; N a multiple of 4. */
export function repackQ8x4(dq: usize, ds: usize, q: usize, s: usize, N: i32, K: i32): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      store<f32>(scaleAt(ds, n, b, nb), load<f32>(s + ((<usize>n * <usize>nb + <usize>b) << 2)));
      const row = q + <usize>n * <usize>K + (<usize>b << 5);
      for (let k = 0; k < QK; k++) {
        const v = <i32>load<u8>(row + <usize>k);
        store<u8>(dq + q8Slot(n, b, k, nb), <u8>((k & 1) == 0 ? v ^ 0x80 : v)); // a pair's first byte + 128
      }
    }
}

// ---------------------------------------------------------------- the prepared activation

/** A coefficient vector: the lane pair (lo, hi) for all four rows. */
@inline function pairSplat(p: usize, lo: i32, hi: i32): void {
  v128.store(p, i32x4.splat((lo & 0xffff) | (hi << 16)));
}

/** The offset and the scale of a prepared block at pp. */
@inline function prepTail(pp: usize, off: i32, dx: f32): void {
  v128.store(pp, i32x4.splat(off), 256);
  v128.store(pp, f32x4.splat(dx), 272);
}

/** One prepared block at pp from the q8 block at xp (32 values): q4x4's coefficients, or q8x4's. */
@inline function prepBlock(pp: usize, xp: usize, four: bool): i32 {
  let off = 0;
  if (four)
    for (let h = 0; h < 4; h++)
      for (let j = 0; j < 4; j++) {
        // vector 4h + j: lanes 2r and 2r + 1 take the lane's k = 8h + j and 8h + 4 + j
        const k0 = 8 * h + j, k1 = k0 + 4;
        const x0 = <i32>load<i8>(xp + <usize>k0), x1 = <i32>load<i8>(xp + <usize>k1);
        const lo = j == 0 ? x0 : x0 - 16 * <i32>load<i8>(xp + <usize>(k0 - 1));
        const hi = j == 0 ? x1 : x1 - 16 * <i32>load<i8>(xp + <usize>(k1 - 1));
        pairSplat(pp + (<usize>(4 * h + j) << 4), lo, hi);
        if (j != 3) off += 8 * (x0 + x1);
      }
  else
    for (let h = 0; h < 8; h++) {
      // vectors 2h, 2h + 1: lanes 2r and 2r + 1 take the pairs k = 4h, 4h + 1 and 4h + 2, 4h + 3
      const p = xp + (<usize>h << 2);
      const a0 = <i32>load<i8>(p), a1 = <i32>load<i8>(p, 1), b0 = <i32>load<i8>(p, 2), b1 = <i32>load<i8>(p, 3);
      pairSplat(pp + (<usize>(2 * h) << 4), a0, b0);
      pairSplat(pp + (<usize>(2 * h + 1) << 4), a1 - 256 * a0, b1 - 256 * b0);
      off += 128 * (a0 + b0);
    }
  return off;
}

/** Every block of every row: coefficients, then the offset and the scale. */
@inline function prepX4(prep: usize, qx: usize, sx: usize, rows: i32, K: i32, four: bool): void {
  const blocks = <usize>rows * <usize>(K / QK);
  for (let i: usize = 0; i < blocks; i++) {
    const pp = prep + i * PREP;
    prepTail(pp, prepBlock(pp, qx + i * QK, four), load<f32>(sx + (i << 2)));
  }
}

/** prep (rows, K/32 · 288 bytes) <- q8 rows qx (rows, K), scales sx (rows, K/32), for q4x4 weights. */
export function prepQ4x4(prep: usize, qx: usize, sx: usize, rows: i32, K: i32): void {
  prepX4(prep, qx, sx, rows, K, true);
}

/** prep <- q8 rows, for q8x4 weights (see prepQ4x4). */
export function prepQ8x4(prep: usize, qx: usize, sx: usize, rows: i32, K: i32): void {
  prepX4(prep, qx, sx, rows, K, false);
}

// ---------------------------------------------------------------- products

/** Σ of the pmaddwd of one 16-byte q4x4 weight vector w (its shifts) against prepared vectors p … p + 48. */
@inline function quadQ4(p: usize, w: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w, v128.load(p)), i32x4.dot_i16x8_s(i16x8.shr_s(w, 4), v128.load(p, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.shr_s(w, 8), v128.load(p, 32)), i32x4.dot_i16x8_s(i16x8.shr_s(w, 12), v128.load(p, 48))),
  );
}

/** Σ of the pmaddwd of one 16-byte q8x4 weight vector w (and w ≫ 8) against prepared vectors p, p + 16. */
@inline function pairQ8(p: usize, w: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(w, v128.load(p)), i32x4.dot_i16x8_s(i16x8.shr_s(w, 8), v128.load(p, 16)));
}

/**
 * The four rows' block totals of a group's block at pw against the prepared block at pp (offset
 * not yet taken off): the block's weight vectors one at a time, a loop rather than unrolled, so
 * V8 keeps one vector's shifts live instead of hoisting every load of the block.
 */
@inline function blockX4(pp: usize, pw: usize, four: bool): v128 {
  let acc = i32x4.splat(0);
  if (four) for (let h: usize = 0; h < 4; h++) acc = i32x4.add(acc, quadQ4(pp + (h << 6), v128.load(pw + (h << 4))));
  else for (let h: usize = 0; h < 8; h++) acc = i32x4.add(acc, pairQ8(pp + (h << 5), v128.load(pw + (h << 4))));
  return acc;
}

/** One prepared row (pp) against G groups (pw, ps): 4G outputs at po, four a store. */
@inline function gemvX4(po: usize, pp: usize, pw: usize, ps: usize, G: i32, nb: i32, four: bool): void {
  const blkW: usize = four ? 64 : 128;
  for (let g = 0; g < G; g++) {
    let acc = f32x4.splat(0), p = pp;
    for (let b = 0; b < nb; b++) {
      const isum = i32x4.sub(blockX4(p, pw, four), v128.load(p, 256));
      acc = scaleAdd4(acc, isum, v128.load(ps), v128.load(p, 272));
      pw += blkW; ps += 16; p += PREP;
    }
    v128.store(po + (<usize>g << 4), acc);
  }
}

/**
 * Two prepared rows (pp, pp + rowP) against one group (pw, ps): each weight vector and its shifts
 * serve both rows. The group's four outputs of each row go to po and po + ldo.
 */
@inline function tile2X4(po: usize, ldo: usize, pp: usize, rowP: usize, pw: usize, ps: usize, nb: i32, four: bool): void {
  const blkW: usize = four ? 64 : 128;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    let s0 = i32x4.splat(0), s1 = i32x4.splat(0);
    // the same weight vector against both rows: V8 computes its shifts once for the two
    if (four)
      for (let h: usize = 0; h < 4; h++) {
        const w = v128.load(pw + (h << 4)), p = pp + (h << 6);
        s0 = i32x4.add(s0, quadQ4(p, w));
        s1 = i32x4.add(s1, quadQ4(p + rowP, w));
      }
    else
      for (let h: usize = 0; h < 8; h++) {
        const w = v128.load(pw + (h << 4)), p = pp + (h << 5);
        s0 = i32x4.add(s0, pairQ8(p, w));
        s1 = i32x4.add(s1, pairQ8(p + rowP, w));
      }
    const dw = v128.load(ps);
    a0 = scaleAdd4(a0, i32x4.sub(s0, v128.load(pp, 256)), dw, v128.load(pp, 272));
    a1 = scaleAdd4(a1, i32x4.sub(s1, v128.load(pp + rowP, 256)), dw, v128.load(pp + rowP, 272));
    pw += blkW; ps += 16; pp += PREP;
  }
  v128.store(po, a0);
  v128.store(po + ldo, a1);
}

/**
 * out (M, N; rows ldo floats apart) = x (M, K) @ W (N, K)^T, W packed (q4x4 when `four`, else
 * q8x4), x prepared. One row is the decoding GEMV; more run as a GEMM: groups of weight rows stay
 * in cache (≈ 128 KiB) while the prepared rows pass them two at a time, an odd last row by the GEMV.
 */
@inline function matmulX4(out: usize, prep: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32, four: bool): void {
  const nb = K / QK, G = N >> 2;
  const gW: usize = <usize>nb * (four ? 64 : 128), gS = <usize>nb << 4, rowP = <usize>nb * PREP, rowO = <usize>ldo << 2;
  if (M == 1) {
    gemvX4(out, prep, qw, sw, G, nb, four);
    return;
  }
  const JG = max<i32>(1, <i32>(<usize>131072 / (gW + gS)));
  for (let g0 = 0; g0 < G; g0 += JG) {
    const g1 = min<i32>(G, g0 + JG);
    let i = 0;
    for (; i + 2 <= M; i += 2)
      for (let g = g0; g < g1; g++)
        tile2X4(out + <usize>i * rowO + (<usize>g << 4), rowO, prep + <usize>i * rowP, rowP, qw + <usize>g * gW, sw + <usize>g * gS, nb, four);
    if (i < M) gemvX4(out + <usize>i * rowO + (<usize>g0 << 4), prep + <usize>i * rowP, qw + <usize>g0 * gW, sw + <usize>g0 * gS, g1 - g0, nb, four);
  }
}

export function matmulQ4x4Strided(out: usize, prep: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32): void {
  matmulX4(out, prep, qw, sw, M, N, K, ldo, true);
}

export function matmulQ4x4(out: usize, prep: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32): void {
  matmulX4(out, prep, qw, sw, M, N, K, N, true);
}

export function matmulQ8x4Strided(out: usize, prep: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32, ldo: i32): void {
  matmulX4(out, prep, qw, sw, M, N, K, ldo, false);
}

export function matmulQ8x4(out: usize, prep: usize, qw: usize, sw: usize, M: i32, N: i32, K: i32): void {
  matmulX4(out, prep, qw, sw, M, N, K, N, false);
}

// ---------------------------------------------------------------- dequantising (a frozen weight's backward)

/** Weight k of block b of row n in a packed layout, as a signed integer (q4: −8..7, q8: −128..127). */
@inline function weightX4(qw: usize, n: i32, b: i32, k: i32, nb: i32, four: bool): i32 {
  if (four) {
    let nib = (<i32>load<u8>(qw + q4Slot(n, b, k, nb)) >> ((k & 1) << 2)) & 15;
    if ((k & 3) == 3) nib ^= 8; // the top nibble of each pair is stored flipped
    return nib - 8;
  }
  const v = <i32>load<u8>(qw + q8Slot(n, b, k, nb));
  return <i32><i8>((k & 1) == 0 ? v ^ 0x80 : v); // the first byte of each pair is stored + 128
}

@inline function dequantizeX4(out: usize, qw: usize, sw: usize, N: i32, K: i32, four: bool): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      const d = load<f32>(scaleAt(sw, n, b, nb)), po = out + ((<usize>n * <usize>K + <usize>b * QK) << 2);
      for (let k = 0; k < QK; k++) store<f32>(po + (<usize>k << 2), <f32>weightX4(qw, n, b, k, nb, four) * d);
    }
}

export function dequantizeQ4x4(out: usize, qw: usize, sw: usize, N: i32, K: i32): void {
  dequantizeX4(out, qw, sw, N, K, true);
}

export function dequantizeQ8x4(out: usize, qw: usize, sw: usize, N: i32, K: i32): void {
  dequantizeX4(out, qw, sw, N, K, false);
}
