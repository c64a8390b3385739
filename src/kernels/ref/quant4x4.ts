import type { F } from './types.js';
import { QK } from './quant.js';

/**
 * q4 weights repacked for decoding ("q4x4"), the layout products read on every backend once a
 * model is loaded; checkpoints keep the row layout of quant.ts, which unpackQ4x4 gives back.
 * - Rows go in groups of four (N a multiple of 4): block b of rows 4g … 4g+3 is 64 contiguous bytes,
 *   16 a row in row order, and their four scales follow one another in `scales`
 *   (qs[(g·nb + b)·4 + r]). A decoding GEMV then reads two sequential streams, and the four rows'
 *   totals and scales fill the lanes of one vector.
 * - Within a row's 16 bytes every odd byte has its top bit flipped (XOR 0x80). Read as eight
 *   little-endian i16 lanes, lane ℓ holds the nibbles of elements 2ℓ (bits 0–3), 16 + 2ℓ (4–7),
 *   2ℓ + 1 (8–11) and 17 + 2ℓ (12–15), and the flip makes the top nibble, read signed, n − 8.
 * - The activation row is prepared once per product (prepQ4x4), 96 bytes a block: with a = x[2ℓ],
 *   b = x[16 + 2ℓ], c = x[2ℓ + 1], d = x[17 + 2ℓ] in lane ℓ, the i16 vectors A = a, B = b − 16a,
 *   C = c − 16b, D = d − 16c, then 8·Σ(a + b + c) (four equal i32) and the block's scale d_x (four
 *   equal f32). For the signed lane w = n0 + 16n1 + 256n2 + 4096(n3 − 8) and arithmetic shifts,
 *   A·w + B·(w >> 4) + C·(w >> 8) + D·(w >> 12) = a·n0 + b·n1 + c·n2 + d·(n3 − 8), so with the
 *   offset subtracted the block total is exactly Σ (n − 8)·x: the integer the row layout sums.
 *   Each weight lane then needs three shifts and four i16 dot products, no masks and no widening.
 */
export const PREP_BLOCK_BYTES = 96;

/** Byte j of block b of row n in the packed array (the row layout's byte n·K/2 + b·16 + j). */
function packedIndex(n: number, b: number, j: number, nb: number): number {
  return ((Math.floor(n / 4) * nb + b) * 4 + (n % 4)) * 16 + j;
}

/** dq, ds (packed) <- q (N, K/2) nibbles, s (N, K/QK) scales in the row layout; N a multiple of 4. */
export function repackQ4x4(dq: Uint8Array, ds: F, q: Uint8Array, s: F, N: number, K: number): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      ds[(Math.floor(n / 4) * nb + b) * 4 + (n % 4)] = s[n * nb + b];
      for (let j = 0; j < 16; j++) dq[packedIndex(n, b, j, nb)] = q[(n * K) / 2 + b * 16 + j] ^ (j & 1 ? 0x80 : 0);
    }
}

/** The row layout back from the packed one (saving a checkpoint, hashing a model). */
export function unpackQ4x4(q: Uint8Array, s: F, dq: Uint8Array, ds: F, N: number, K: number): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      s[n * nb + b] = ds[(Math.floor(n / 4) * nb + b) * 4 + (n % 4)];
      for (let j = 0; j < 16; j++) q[(n * K) / 2 + b * 16 + j] = dq[packedIndex(n, b, j, nb)] ^ (j & 1 ? 0x80 : 0);
    }
}

/** prep (rows, K/QK · 96 bytes) <- q8 activation rows qx (rows, K) and their scales sx (rows, K/QK). */
export function prepQ4x4(prep: Uint8Array, qx: Int8Array, sx: F, rows: number, K: number): void {
  const nb = K / QK;
  const view = new DataView(prep.buffer, prep.byteOffset, prep.byteLength);
  for (let r = 0; r < rows; r++)
    for (let bl = 0; bl < nb; bl++) {
      const x = (i: number) => qx[r * K + bl * QK + i],
        o = (r * nb + bl) * PREP_BLOCK_BYTES;
      let off = 0;
      for (let l = 0; l < 8; l++) {
        const a = x(2 * l),
          b = x(16 + 2 * l),
          c = x(2 * l + 1),
          d = x(17 + 2 * l);
        view.setInt16(o + 2 * l, a, true);
        view.setInt16(o + 16 + 2 * l, b - 16 * a, true);
        view.setInt16(o + 32 + 2 * l, c - 16 * b, true);
        view.setInt16(o + 48 + 2 * l, d - 16 * c, true);
        off += 8 * (a + b + c);
      }
      for (let i = 0; i < 4; i++) {
        view.setInt32(o + 64 + 4 * i, off, true);
        view.setFloat32(o + 80 + 4 * i, sx[r * nb + bl], true);
      }
    }
}

/** Activation element k of block bl of prepared row r, and the block's scale, read back from prep. */
function prepared(prep: Uint8Array, r: number, bl: number, nb: number): { x: Int32Array; dx: number } {
  const view = new DataView(prep.buffer, prep.byteOffset, prep.byteLength),
    o = (r * nb + bl) * PREP_BLOCK_BYTES,
    x = new Int32Array(QK);
  for (let l = 0; l < 8; l++) {
    const a = view.getInt16(o + 2 * l, true),
      b = view.getInt16(o + 16 + 2 * l, true) + 16 * a,
      c = view.getInt16(o + 32 + 2 * l, true) + 16 * b,
      d = view.getInt16(o + 48 + 2 * l, true) + 16 * c;
    x[2 * l] = a;
    x[16 + 2 * l] = b;
    x[2 * l + 1] = c;
    x[17 + 2 * l] = d;
  }
  return { x, dx: view.getFloat32(o + 80, true) };
}

/** The nibble of element k (0 … 31) of block b of row n, flip undone. */
function nibble(qw: Uint8Array, n: number, b: number, k: number, nb: number): number {
  const j = k % 16,
    byte = qw[packedIndex(n, b, j, nb)] ^ (j & 1 ? 0x80 : 0);
  return k < 16 ? byte & 15 : byte >> 4;
}

/**
 * out (M, N; rows ldo apart) = x (M, K) @ W (N, K)^T with W packed (repackQ4x4) and x prepared
 * (prepQ4x4), summed as quantProduct does: acc = Σ_b (d_w·d_x)·Σ_k (n − 8)·x.
 */
export function matmulQ4x4Strided(out: F, prep: Uint8Array, qw: Uint8Array, sw: F, M: number, N: number, K: number, ldo: number): void {
  const nb = K / QK;
  for (let i = 0; i < M; i++) {
    const blocks = Array.from({ length: nb }, (_, b) => prepared(prep, i, b, nb));
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let b = 0; b < nb; b++) {
        let isum = 0;
        for (let k = 0; k < QK; k++) isum += (nibble(qw, n, b, k, nb) - 8) * blocks[b].x[k];
        acc += Math.fround(sw[(Math.floor(n / 4) * nb + b) * 4 + (n % 4)] * blocks[b].dx) * isum;
      }
      out[i * ldo + n] = acc;
    }
  }
}

export function matmulQ4x4(out: F, prep: Uint8Array, qw: Uint8Array, sw: F, M: number, N: number, K: number): void {
  matmulQ4x4Strided(out, prep, qw, sw, M, N, K, N);
}

/** out (N, K) <- the packed weights, dequantised (the backward of a product through a frozen q4 weight). */
export function dequantizeQ4x4(out: F, qw: Uint8Array, sw: F, N: number, K: number): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      const d = sw[(Math.floor(n / 4) * nb + b) * 4 + (n % 4)];
      for (let k = 0; k < QK; k++) out[n * K + b * QK + k] = (nibble(qw, n, b, k, nb) - 8) * d;
    }
}
