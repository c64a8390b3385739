import type { F } from './types.js';
import { QK } from './quant.js';

/**
 * q8 and q4 weights repacked for the products ("x4" layouts), the layout the products read on the
 * default wasm build once a model is loaded; checkpoints keep the row layout of quant.ts, which
 * unpackQ8x4 / unpackQ4x4 give back. Rows go in groups of four (N a multiple of 4), and what one
 * 16-byte vector holds is four rows side by side, so a product's i16 dot (`pmaddwd`: lane pairs
 * summed into i32) leaves each row's partial sum in its own i32 lane: a block's four totals come
 * out in one vector, with no reduction across lanes.
 * - Block b of group g is a run of 16-byte vectors (q4: 4 of them, 64 bytes; q8: 8, 128 bytes),
 *   blocks of a group one after the other; the scales of the group's rows for block b are four
 *   consecutive f32 (scales[(g·nb + b)·4 + r]).
 * - q4, vector h (k = 8h … 8h + 7 of the block): i16 lane 2r holds row r's nibbles of k = 8h … 8h+3
 *   (bits 0–3, 4–7, 8–11, 12–15), lane 2r + 1 those of 8h + 4 … 8h + 7; each lane's top nibble is
 *   stored flipped (n ⊕ 8, which read as a signed nibble is n − 8). With the lane w and its
 *   arithmetic shifts, four i16 vectors w, w ≫ 4, w ≫ 8, w ≫ 12.
 * - q8, vector h (k = 4h … 4h + 3): i16 lane 2r holds row r's k = 4h, 4h+1, lane 2r + 1 its
 *   4h+2, 4h+3, the first byte of each pair stored + 128 (XOR 0x80: unsigned, 1 … 255). Two i16
 *   vectors: w and w ≫ 8.
 * - An activation row is prepared once per product (prepQ8x4 / prepQ4x4), 288 bytes a block: 16
 *   i16 vectors P_i, one per weight vector W_i above, holding the coefficient of each lane pair
 *   (the same for the four rows), then Σ-offset (four equal i32) and the block's scale d_x (four
 *   equal f32). For four values v0 … v3 of one q4 lane with activations x0 … x3, the coefficients
 *   of w, w ≫ 4, w ≫ 8, w ≫ 12 are x0, x1 − 16·x0, x2 − 16·x1, x3 − 16·x2: their sum of products
 *   is x0·v0 + x1·v1 + x2·v2 + x3·(v3 − 8) exactly, and the offset 8·(x0 + x1 + x2) brings every
 *   term to (v − 8)·x. For a q8 pair (u0 = q0 + 128, q1), the coefficients of w, w ≫ 8 are x0 and
 *   x1 − 256·x0 (|·| ≤ 32639, an i16): u0·x0 + q1·x1, less the offset 128·x0. Each block total
 *   Σ_k q_k·x_k is therefore the exact integer the row layout sums, and a 16-byte vector costs
 *   three shifts (q4) or one (q8) and four or two `pmaddwd` for 32 or 16 products.
 */
export const PREP_BLOCK_BYTES = 288;

/** Where element k of block b of row n lives in a q4x4 array: [byte index, nibble shift (0 or 4), flipped]. */
function q4Slot(n: number, b: number, k: number, nb: number): [number, number, boolean] {
  const h = k >> 3,
    half = (k >> 2) & 1,
    j = k & 3; // vector, which lane of row n's pair, nibble within the lane
  const lane = 2 * (n % 4) + half;
  const vec = ((Math.floor(n / 4) * nb + b) * 4 + h) * 16;
  return [vec + 2 * lane + (j >> 1), (j & 1) * 4, j === 3];
}

/** Where element k of block b of row n lives in a q8x4 array: [byte index, stored + 128]. */
function q8Slot(n: number, b: number, k: number, nb: number): [number, boolean] {
  const h = k >> 2,
    half = (k >> 1) & 1;
  const lane = 2 * (n % 4) + half;
  const vec = ((Math.floor(n / 4) * nb + b) * 8 + h) * 16;
  return [vec + 2 * lane + (k & 1), (k & 1) === 0];
}

const scaleIndex = (n: number, b: number, nb: number) => (Math.floor(n / 4) * nb + b) * 4 + (n % 4);

/** dq, ds (packed) <- q (N, K/2) nibbles, s (N, K/QK) scales in the row layout (quant.ts); N a multiple of 4. */
export function repackQ4x4(dq: Uint8Array, ds: F, q: Uint8Array, s: F, N: number, K: number): void {
  const nb = K / QK;
  dq.fill(0, 0, (N * K) / 2);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      ds[scaleIndex(n, b, nb)] = s[n * nb + b];
      const base = (n * K) / 2 + b * 16;
      for (let k = 0; k < QK; k++) {
        const nib = k < 16 ? q[base + k] & 15 : q[base + k - 16] >> 4;
        const [i, shift, flip] = q4Slot(n, b, k, nb);
        dq[i] |= (flip ? nib ^ 8 : nib) << shift;
      }
    }
}

/** The row layout back from q4x4 (saving a checkpoint, hashing a model). */
export function unpackQ4x4(q: Uint8Array, s: F, dq: Uint8Array, ds: F, N: number, K: number): void {
  const nb = K / QK;
  q.fill(0, 0, (N * K) / 2);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      s[n * nb + b] = ds[scaleIndex(n, b, nb)];
      const base = (n * K) / 2 + b * 16;
      for (let k = 0; k < QK; k++) {
        const [i, shift, flip] = q4Slot(n, b, k, nb);
        const stored = (dq[i] >> shift) & 15,
          nib = flip ? stored ^ 8 : stored;
        if (k < 16) q[base + k] |= nib;
        else q[base + k - 16] |= nib << 4;
      }
    }
}

/** dq, ds (packed) <- q (N, K) int8, s (N, K/QK) in the row layout; N a multiple of 4. */
export function repackQ8x4(dq: Int8Array, ds: F, q: Int8Array, s: F, N: number, K: number): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      ds[scaleIndex(n, b, nb)] = s[n * nb + b];
      for (let k = 0; k < QK; k++) {
        const [i, offset] = q8Slot(n, b, k, nb);
        const v = q[n * K + b * QK + k];
        dq[i] = offset ? ((v ^ 0x80) << 24) >> 24 : v;
      }
    }
}

/** The row layout back from q8x4. */
export function unpackQ8x4(q: Int8Array, s: F, dq: Int8Array, ds: F, N: number, K: number): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      s[n * nb + b] = ds[scaleIndex(n, b, nb)];
      for (let k = 0; k < QK; k++) {
        const [i, offset] = q8Slot(n, b, k, nb);
        q[n * K + b * QK + k] = offset ? ((dq[i] ^ 0x80) << 24) >> 24 : dq[i];
      }
    }
}

/**
 * Writes one prepared block: 16 coefficient vectors (each lane pair the same for the four rows:
 * `coef(i, half)` for vector i, lane 2r + half), then the offset and the scale, four times each.
 */
function prepBlock(view: DataView, o: number, coef: (i: number, half: number) => number, off: number, dx: number): void {
  for (let i = 0; i < 16; i++) for (let l = 0; l < 8; l++) view.setInt16(o + 16 * i + 2 * l, coef(i, l & 1), true);
  for (let l = 0; l < 4; l++) {
    view.setInt32(o + 256 + 4 * l, off, true);
    view.setFloat32(o + 272 + 4 * l, dx, true);
  }
}

/**
 * Every block of every activation row prepared by `block`, given the block's activations x(k):
 * its coefficient of vector i at lane half, and its offset.
 */
function prepRows(
  prep: Uint8Array,
  qx: Int8Array,
  sx: F,
  rows: number,
  K: number,
  block: (x: (k: number) => number) => { coef: (i: number, half: number) => number; off: number },
): void {
  const nb = K / QK,
    view = new DataView(prep.buffer, prep.byteOffset, prep.byteLength);
  for (let r = 0; r < rows; r++)
    for (let b = 0; b < nb; b++) {
      const { coef, off } = block((k) => qx[r * K + b * QK + k]);
      prepBlock(view, (r * nb + b) * PREP_BLOCK_BYTES, coef, off, sx[r * nb + b]);
    }
}

/** prep (rows, K/QK · 288 bytes) <- q8 activation rows qx (rows, K), scales sx (rows, K/QK), for q4x4 weights. */
export function prepQ4x4(prep: Uint8Array, qx: Int8Array, sx: F, rows: number, K: number): void {
  prepRows(prep, qx, sx, rows, K, (x) => {
    let off = 0;
    for (let k = 0; k < QK; k++) if (k % 4 !== 3) off += 8 * x(k);
    // vector 4h + j, lane half: the four k of that lane are 8h + 4·half + 0 … 3
    const coef = (i: number, half: number) => {
      const k0 = 8 * (i >> 2) + 4 * half,
        j = i & 3;
      return j === 0 ? x(k0) : x(k0 + j) - 16 * x(k0 + j - 1);
    };
    return { coef, off };
  });
}

/** prep <- q8 activation rows, for q8x4 weights (see prepQ4x4). */
export function prepQ8x4(prep: Uint8Array, qx: Int8Array, sx: F, rows: number, K: number): void {
  prepRows(prep, qx, sx, rows, K, (x) => {
    let off = 0;
    for (let k = 0; k < QK; k += 2) off += 128 * x(k);
    // vector 2h (+1 for the shifted one), lane half: the pair k = 4h + 2·half, +1
    const coef = (i: number, half: number) => {
      const k0 = 4 * (i >> 1) + 2 * half;
      return i & 1 ? x(k0 + 1) - 256 * x(k0) : x(k0);
    };
    return { coef, off };
  });
}

/** The activations of block b of prepared row r read back from its coefficients, and d_x. */
function prepared(prep: Uint8Array, r: number, b: number, nb: number, four: boolean): { x: Int32Array; dx: number } {
  const view = new DataView(prep.buffer, prep.byteOffset, prep.byteLength),
    o = (r * nb + b) * PREP_BLOCK_BYTES,
    x = new Int32Array(QK);
  const c = (i: number, half: number) => view.getInt16(o + 16 * i + 2 * half, true); // lanes 0 and 1 (row 0's pair)
  for (let i = 0; i < 16; i++)
    for (let half = 0; half < 2; half++) {
      if (four) {
        const k0 = 8 * (i >> 2) + 4 * half,
          j = i & 3;
        x[k0 + j] = j === 0 ? c(i, half) : c(i, half) + 16 * x[k0 + j - 1];
      } else {
        const k0 = 4 * (i >> 1) + 2 * half;
        if (i & 1) x[k0 + 1] = c(i, half) + 256 * x[k0];
        else x[k0] = c(i, half);
      }
    }
  return { x, dx: view.getFloat32(o + 272, true) };
}

/** Weight element k of block b of row n, decoded plainly from either packed layout (q4: n − 8; q8: q). */
function weight(qw: Uint8Array | Int8Array, n: number, b: number, k: number, nb: number, four: boolean): number {
  if (four) {
    const [i, shift, flip] = q4Slot(n, b, k, nb),
      stored = (qw[i] >> shift) & 15;
    return (flip ? stored ^ 8 : stored) - 8;
  }
  const [i, offset] = q8Slot(n, b, k, nb);
  return offset ? ((qw[i] ^ 0x80) << 24) >> 24 : (qw[i] << 24) >> 24;
}

/**
 * out (M, N; rows ldo apart) = x (M, K) @ W (N, K)^T, W packed and x prepared, summed as
 * quantProduct does (acc = Σ_b (d_w·d_x)·Σ_k w·x): the twin decodes every weight and activation
 * plainly, not through the shifted lanes.
 */
function productX4(
  out: F,
  prep: Uint8Array,
  qw: Uint8Array | Int8Array,
  sw: F,
  M: number,
  N: number,
  K: number,
  ldo: number,
  four: boolean,
): void {
  const nb = K / QK;
  for (let i = 0; i < M; i++) {
    const blocks = Array.from({ length: nb }, (_, b) => prepared(prep, i, b, nb, four));
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let b = 0; b < nb; b++) {
        let isum = 0;
        for (let k = 0; k < QK; k++) isum += weight(qw, n, b, k, nb, four) * blocks[b].x[k];
        acc += Math.fround(sw[scaleIndex(n, b, nb)] * blocks[b].dx) * isum;
      }
      out[i * ldo + n] = acc;
    }
  }
}

export function matmulQ4x4Strided(out: F, prep: Uint8Array, qw: Uint8Array, sw: F, M: number, N: number, K: number, ldo: number): void {
  productX4(out, prep, qw, sw, M, N, K, ldo, true);
}

export function matmulQ4x4(out: F, prep: Uint8Array, qw: Uint8Array, sw: F, M: number, N: number, K: number): void {
  productX4(out, prep, qw, sw, M, N, K, N, true);
}

export function matmulQ8x4Strided(out: F, prep: Uint8Array, qw: Int8Array, sw: F, M: number, N: number, K: number, ldo: number): void {
  productX4(out, prep, qw, sw, M, N, K, ldo, false);
}

export function matmulQ8x4(out: F, prep: Uint8Array, qw: Int8Array, sw: F, M: number, N: number, K: number): void {
  productX4(out, prep, qw, sw, M, N, K, N, false);
}

/** out (N, K) <- packed weights dequantised (the backward of a product through a frozen weight). */
function dequantizeX4(out: F, qw: Uint8Array | Int8Array, sw: F, N: number, K: number, four: boolean): void {
  const nb = K / QK;
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nb; b++) {
      const d = sw[scaleIndex(n, b, nb)];
      for (let k = 0; k < QK; k++) out[n * K + b * QK + k] = weight(qw, n, b, k, nb, four) * d;
    }
}

export function dequantizeQ4x4(out: F, qw: Uint8Array, sw: F, N: number, K: number): void {
  dequantizeX4(out, qw, sw, N, K, true);
}

export function dequantizeQ8x4(out: F, qw: Int8Array, sw: F, N: number, K: number): void {
  dequantizeX4(out, qw, sw, N, K, false);
}
