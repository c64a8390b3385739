/**
 * f32x4 matrix products, row-major, register-tiled. Same contracts as src/kernels/ref/matmul.ts:
 * `beta` 0 overwrites `out`, any other value accumulates into it. All pointers are byte offsets.
 */
import { fmadd, hsum4 } from './vmath';

// ================================================================ NT: out = a (M,K) @ b (N,K)^T
//
// Both operands are contiguous along k, so each output is a dot product: the micro-kernel keeps
// 2 rows of a × 4 rows of b = 8 lane-parallel partial sums, walks k four at a time from six
// pointers that move, and reduces each group of four partial sums with one transpose-add into a
// vector of 4 outputs. Two rows, not three: 8 sums, 2 + 4 loaded vectors and a product fit V8's
// 16 vector registers, where 12 sums spill every step (1.5× slower at one thread, measured with
// 1024³ on an AMD EPYC: 38 against 58 GFLOP/s).

/** Block of b rows kept hot while all rows of a stream past it (bytes ≈ JB·K·4 ≤ 256 KiB). */
@inline function ntBlock(K: i32): i32 {
  let jb = (65536 / max<i32>(K, 1)) & ~3;
  return max<i32>(jb, 16);
}

/** Scalar k-tail [k0,K) for one (row of a, 4 rows of b) pair, added to the 4 sums in s. */
@inline function ntTail4(s: v128, pa: usize, pb: usize, rowB: usize, k0: i32, K: i32): v128 {
  for (let k = k0; k < K; k++) {
    const o = <usize>k << 2;
    let bv = v128.load32_zero(pb + o);
    bv = v128.load32_lane(pb + rowB + o, bv, 1);
    bv = v128.load32_lane(pb + 2 * rowB + o, bv, 2);
    bv = v128.load32_lane(pb + 3 * rowB + o, bv, 3);
    s = fmadd(v128.load32_splat(pa + o), bv, s);
  }
  return s;
}

@inline function ntStore4(po: usize, s: v128, acc: bool): void {
  if (acc) s = f32x4.add(s, v128.load(po));
  v128.store(po, s);
}

/** Scalar dot product of a row of a and a row of b. */
@inline export function dot1(pa: usize, pb: usize, K: i32): f32 {
  const K4 = K & ~3;
  let v = f32x4.splat(0);
  let k = 0;
  for (; k < K4; k += 4) {
    const o = <usize>k << 2;
    v = fmadd(v128.load(pa + o), v128.load(pb + o), v);
  }
  const t = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  let s = f32x4.extract_lane(f32x4.add(t, f32x4.shuffle(t, t, 1, 0, 3, 2)), 0);
  for (; k < K; k++) {
    const o = <usize>k << 2;
    s += load<f32>(pa + o) * load<f32>(pb + o);
  }
  return s;
}

/**
 * One row of a against 4 rows of b (rowB bytes apart) over k < K, K a multiple of 4: the 4 dot
 * products reduced as dot1 reduces each (4-lane partial sums, then (s0 + s2) + (s1 + s3)), so the
 * same bits; the 1-row tiles add ntTail4 for the rest of k.
 */
@inline export function dot4(pa: usize, pb: usize, rowB: usize, K: i32): v128 {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  for (let o: usize = 0, oe = <usize>K << 2; o < oe; o += 16) {
    const av = v128.load(pa + o);
    c0 = fmadd(av, v128.load(pb + o), c0);
    c1 = fmadd(av, v128.load(pb + rowB + o), c1);
    c2 = fmadd(av, v128.load(pb + 2 * rowB + o), c2);
    c3 = fmadd(av, v128.load(pb + 3 * rowB + o), c3);
  }
  return hsum4(c0, c1, c2, c3);
}

/**
 * One row of a against all N rows of b (the decoding GEMV): out[j] = a · b_j for j < N. Rows of b
 * are read as four far-apart streams at once (rows u, u+S, u+2S, u+3S): on the AMD EPYC we
 * measure on, four long streams read 12% faster than eight and twice as fast as four adjacent rows
 * (tools/bench-gemv-streams.mjs), and the read-bandwidth probe agrees (two to four streams beat
 * eight and sixteen). Each output is still reduced exactly as in the 4-row tiles (4-lane partial
 * sums, hsum4, then the scalar k-tail), so results are bit-identical to the tiled path and to any
 * split of the columns at multiples of 4.
 */
function ntRow(po: usize, pa: usize, b: usize, N: i32, K: i32, acc: bool): void {
  const K4 = K & ~3;
  const rowA = <usize>K << 2;
  const N4 = N & ~3;
  const S = N4 >> 2; // rows [0, 4S) in groups of 4 far-apart rows
  const rowS = <usize>S * rowA;
  for (let u = 0; u < S; u++) {
    const p0 = b + <usize>u * rowA;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    // k eight at a time from moving pointers (second halves at an immediate offset), then four
    let x = pa, r0 = p0, r1 = p0 + rowS, r2 = p0 + 2 * rowS, r3 = p0 + 3 * rowS;
    const xe = pa + ((<usize>K4 & ~7) << 2);
    for (; x < xe; x += 32, r0 += 32, r1 += 32, r2 += 32, r3 += 32) {
      let av = v128.load(x);
      c0 = fmadd(av, v128.load(r0), c0);
      c1 = fmadd(av, v128.load(r1), c1);
      c2 = fmadd(av, v128.load(r2), c2);
      c3 = fmadd(av, v128.load(r3), c3);
      av = v128.load(x, 16);
      c0 = fmadd(av, v128.load(r0, 16), c0);
      c1 = fmadd(av, v128.load(r1, 16), c1);
      c2 = fmadd(av, v128.load(r2, 16), c2);
      c3 = fmadd(av, v128.load(r3, 16), c3);
    }
    if (K4 & 4) {
      const av = v128.load(x);
      c0 = fmadd(av, v128.load(r0), c0);
      c1 = fmadd(av, v128.load(r1), c1);
      c2 = fmadd(av, v128.load(r2), c2);
      c3 = fmadd(av, v128.load(r3), c3);
    }
    let s0 = hsum4(c0, c1, c2, c3);
    if (K4 < K) s0 = ntTail4(s0, pa, p0, rowS, K4, K);
    const q = po + (<usize>u << 2), qs = <usize>S << 2;
    storeLane(q, f32x4.extract_lane(s0, 0), acc); storeLane(q + qs, f32x4.extract_lane(s0, 1), acc);
    storeLane(q + 2 * qs, f32x4.extract_lane(s0, 2), acc); storeLane(q + 3 * qs, f32x4.extract_lane(s0, 3), acc);
  }
  ntRowBlock(po, pa, b, S << 2, N, K, acc); // rows [4S, N): single dot products
}

/**
 * One row of a against rows [j0, j1) of b (j0 a multiple of 4): adjacent 4-row tiles, then single
 * dot products, reduced as in every other path. The GEMM's odd last row takes this inside each
 * block of b, so it reuses the block from cache instead of streaming all of b again.
 */
function ntRowBlock(po: usize, pa: usize, b: usize, j0: i32, j1: i32, K: i32, acc: bool): void {
  const K4 = K & ~3;
  const rowA = <usize>K << 2;
  const j4 = j0 + ((j1 - j0) & ~3);
  for (let j = j0; j < j4; j += 4) {
    const pb0 = b + <usize>j * rowA;
    let s0 = dot4(pa, pb0, rowA, K4);
    if (K4 < K) s0 = ntTail4(s0, pa, pb0, rowA, K4, K);
    ntStore4(po + (<usize>j << 2), s0, acc);
  }
  for (let j = j4; j < j1; j++) {
    const p = po + (<usize>j << 2);
    const v = dot1(pa, b + <usize>j * rowA, K);
    store<f32>(p, acc ? load<f32>(p) + v : v);
  }
}

/**
 * Two rows of a (rowO bytes apart in out) against rows [j0, j1) of b: 2×4 tiles, then single dot
 * products; every output reduced exactly as in the 1-row tiles.
 */
function ntRows2Block(po: usize, pa0: usize, b: usize, j0: i32, j1: i32, K: i32, acc: bool, rowO: usize): void {
  const K4 = K & ~3;
  const rowA = <usize>K << 2;
  const pa1 = pa0 + rowA;
  const j4 = j0 + ((j1 - j0) & ~3);
  for (let j = j0; j < j4; j += 4) {
    const pb0 = b + <usize>j * rowA, pb1 = pb0 + rowA, pb2 = pb1 + rowA, pb3 = pb2 + rowA;
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
    let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
    let q0 = pa0, q1 = pa1, r0 = pb0, r1 = pb1, r2 = pb2, r3 = pb3;
    const qe = pa0 + (<usize>K4 << 2);
    for (; q0 < qe; q0 += 16, q1 += 16, r0 += 16, r1 += 16, r2 += 16, r3 += 16) {
      const a0 = v128.load(q0), a1 = v128.load(q1);
      let bv = v128.load(r0);
      c00 = fmadd(a0, bv, c00); c10 = fmadd(a1, bv, c10);
      bv = v128.load(r1);
      c01 = fmadd(a0, bv, c01); c11 = fmadd(a1, bv, c11);
      bv = v128.load(r2);
      c02 = fmadd(a0, bv, c02); c12 = fmadd(a1, bv, c12);
      bv = v128.load(r3);
      c03 = fmadd(a0, bv, c03); c13 = fmadd(a1, bv, c13);
    }
    let s0 = hsum4(c00, c01, c02, c03);
    let s1 = hsum4(c10, c11, c12, c13);
    if (K4 < K) {
      s0 = ntTail4(s0, pa0, pb0, rowA, K4, K);
      s1 = ntTail4(s1, pa1, pb0, rowA, K4, K);
    }
    const pj = po + (<usize>j << 2);
    ntStore4(pj, s0, acc);
    ntStore4(pj + rowO, s1, acc);
  }
  for (let j = j4; j < j1; j++) {
    const pb = b + <usize>j * rowA;
    for (let r = 0; r < 2; r++) {
      const p = po + <usize>r * rowO + (<usize>j << 2);
      const s = dot1(pa0 + <usize>r * rowA, pb, K);
      store<f32>(p, acc ? load<f32>(p) + s : s);
    }
  }
}

@inline function storeLane(p: usize, v: f32, acc: bool): void {
  store<f32>(p, acc ? load<f32>(p) + v : v);
}

export function matmulNT(out: usize, a: usize, b: usize, M: i32, N: i32, K: i32, beta: f32): void {
  matmulNTStrided(out, a, b, M, N, K, beta, N);
}

/**
 * matmulNT on a block of columns of a wider output: out rows are `ldo` floats apart. Threads split
 * the output by rows, or by columns at multiples of 4, so every element takes the same path (4-wide
 * tile or the dot1 tail) as in a single call: results are bit-identical for any split.
 */
export function matmulNTStrided(out: usize, a: usize, b: usize, M: i32, N: i32, K: i32, beta: f32, ldo: i32): void {
  if (M <= 0 || N <= 0) return;
  const acc = beta != 0;
  const rowA = <usize>K << 2; // bytes per row of a and of b
  const rowO = <usize>ldo << 2;
  const JB = ntBlock(K);
  if (M > 1)
    for (let j0 = 0; j0 < N; j0 += JB) {
      const j1 = min<i32>(N, j0 + JB);
      // two rows of a at a time against this block while it is in cache, then the odd row
      let r = 0;
      for (; r + 2 <= M; r += 2) ntRows2Block(out + <usize>r * rowO, a + <usize>r * rowA, b, j0, j1, K, acc, rowO);
      if (r < M) ntRowBlock(out + <usize>r * rowO, a + <usize>r * rowA, b, j0, j1, K, acc);
    }
  // the decoding GEMV (M = 1): all of b streamed once, eight far-apart rows at a time
  if (M == 1) ntRow(out, a, b, N, K, acc);
}

// ================================================================ NN and TN
//
// out (M,N) += A (M,K) · b (K,N), where A[i,k] lives at a + i·sa + k·sk (bytes):
//   NN: a is (M,K) → sa = 4K, sk = 4;   TN: a is (K,M) → sa = 4, sk = 4M.
// b rows are contiguous along j. The micro-kernel holds a 4×8 block of out in 8 vectors and, per
// k, broadcasts 4 elements of A and loads 8 of b. k is blocked (KC) so a KC×8 panel of b stays in
// L1 while the rows of A stream past it; out is loaded when accumulating (beta or later k-blocks).

const KC: i32 = 256;

@inline function ld0(p: usize, acc: bool): v128 {
  return acc ? v128.load(p) : f32x4.splat(0);
}

function gemmAB(out: usize, a: usize, b: usize, M: i32, N: i32, K: i32, beta: f32, sa: usize, sk: usize,
  rowB: usize, rowO: usize): void {
  if (M <= 0 || N <= 0) return;
  const N8 = N & ~7;
  const N4 = N & ~3;
  const M4 = M & ~3;
  const sa2 = sa * 2, sa3 = sa * 3;
  if (K <= 0) {
    if (beta == 0) for (let i = 0; i < M; i++) memory.fill(out + <usize>i * rowO, 0, <usize>N << 2);
    return;
  }
  for (let k0 = 0; k0 < K; k0 += KC) {
    const k1 = min<i32>(K, k0 + KC);
    const acc = k0 > 0 || beta != 0;
    // 8-wide column panels
    for (let j = 0; j < N8; j += 8) {
      const pbj = b + (<usize>j << 2);
      let i = 0;
      for (; i < M4; i += 4) {
        const po = out + <usize>i * rowO + (<usize>j << 2);
        let c00 = ld0(po, acc), c01 = ld0(po + 16, acc);
        let c10 = ld0(po + rowO, acc), c11 = ld0(po + rowO + 16, acc);
        let c20 = ld0(po + 2 * rowO, acc), c21 = ld0(po + 2 * rowO + 16, acc);
        let c30 = ld0(po + 3 * rowO, acc), c31 = ld0(po + 3 * rowO + 16, acc);
        let pa = a + <usize>i * sa + <usize>k0 * sk;
        let pb = pbj + <usize>k0 * rowB;
        for (let k = k0; k < k1; k++) {
          const b0 = v128.load(pb), b1 = v128.load(pb, 16);
          let av = v128.load32_splat(pa);
          c00 = fmadd(av, b0, c00);
          c01 = fmadd(av, b1, c01);
          av = v128.load32_splat(pa + sa);
          c10 = fmadd(av, b0, c10);
          c11 = fmadd(av, b1, c11);
          av = v128.load32_splat(pa + sa2);
          c20 = fmadd(av, b0, c20);
          c21 = fmadd(av, b1, c21);
          av = v128.load32_splat(pa + sa3);
          c30 = fmadd(av, b0, c30);
          c31 = fmadd(av, b1, c31);
          pa += sk;
          pb += rowB;
        }
        v128.store(po, c00); v128.store(po, c01, 16);
        v128.store(po + rowO, c10); v128.store(po + rowO, c11, 16);
        v128.store(po + 2 * rowO, c20); v128.store(po + 2 * rowO, c21, 16);
        v128.store(po + 3 * rowO, c30); v128.store(po + 3 * rowO, c31, 16);
      }
      for (; i < M; i++) {
        const po = out + <usize>i * rowO + (<usize>j << 2);
        let c00 = ld0(po, acc), c01 = ld0(po + 16, acc);
        let pa = a + <usize>i * sa + <usize>k0 * sk;
        let pb = pbj + <usize>k0 * rowB;
        for (let k = k0; k < k1; k++) {
          const av = v128.load32_splat(pa);
          c00 = fmadd(av, v128.load(pb), c00);
          c01 = fmadd(av, v128.load(pb, 16), c01);
          pa += sk;
          pb += rowB;
        }
        v128.store(po, c00); v128.store(po, c01, 16);
      }
    }
    // one 4-wide column panel
    if (N8 < N4) {
      const j = N8;
      const pbj = b + (<usize>j << 2);
      let i = 0;
      for (; i < M4; i += 4) {
        const po = out + <usize>i * rowO + (<usize>j << 2);
        let c0 = ld0(po, acc), c1 = ld0(po + rowO, acc), c2 = ld0(po + 2 * rowO, acc), c3 = ld0(po + 3 * rowO, acc);
        let pa = a + <usize>i * sa + <usize>k0 * sk;
        let pb = pbj + <usize>k0 * rowB;
        for (let k = k0; k < k1; k++) {
          const b0 = v128.load(pb);
          c0 = fmadd(v128.load32_splat(pa), b0, c0);
          c1 = fmadd(v128.load32_splat(pa + sa), b0, c1);
          c2 = fmadd(v128.load32_splat(pa + sa2), b0, c2);
          c3 = fmadd(v128.load32_splat(pa + sa3), b0, c3);
          pa += sk;
          pb += rowB;
        }
        v128.store(po, c0); v128.store(po + rowO, c1); v128.store(po + 2 * rowO, c2); v128.store(po + 3 * rowO, c3);
      }
      for (; i < M; i++) {
        const po = out + <usize>i * rowO + (<usize>j << 2);
        let c0 = ld0(po, acc);
        let pa = a + <usize>i * sa + <usize>k0 * sk;
        let pb = pbj + <usize>k0 * rowB;
        for (let k = k0; k < k1; k++) {
          c0 = fmadd(v128.load32_splat(pa), v128.load(pb), c0);
          pa += sk;
          pb += rowB;
        }
        v128.store(po, c0);
      }
    }
    // remaining (< 4) columns, scalar
    for (let j = N4; j < N; j++) {
      for (let i = 0; i < M; i++) {
        const po = out + <usize>i * rowO + (<usize>j << 2);
        let s: f32 = acc ? load<f32>(po) : 0;
        let pa = a + <usize>i * sa + <usize>k0 * sk;
        let pb = b + <usize>k0 * rowB + (<usize>j << 2);
        for (let k = k0; k < k1; k++) {
          s += load<f32>(pa) * load<f32>(pb);
          pa += sk;
          pb += rowB;
        }
        store<f32>(po, s);
      }
    }
  }
}

/** out (M,N) = beta·out + a (M,K) @ b (K,N) */
export function matmulNN(out: usize, a: usize, b: usize, M: i32, N: i32, K: i32, beta: f32): void {
  gemmAB(out, a, b, M, N, K, beta, <usize>K << 2, 4, <usize>N << 2, <usize>N << 2);
}

/**
 * Strided twins for threads: a sub-block of the output (rows and/or columns) of a larger product.
 * Every element accumulates over k in the same order whatever the tile, so any split is
 * bit-identical to one call. lda/ldb/ldo are row lengths in floats of the full a, b and out.
 */
export function matmulNNStrided(out: usize, a: usize, b: usize, M: i32, N: i32, K: i32, beta: f32, lda: i32, ldb: i32, ldo: i32): void {
  gemmAB(out, a, b, M, N, K, beta, <usize>lda << 2, 4, <usize>ldb << 2, <usize>ldo << 2);
}

export function matmulTNStrided(out: usize, a: usize, b: usize, M: i32, N: i32, K: i32, beta: f32, lda: i32, ldb: i32, ldo: i32): void {
  gemmAB(out, a, b, M, N, K, beta, 4, <usize>lda << 2, <usize>ldb << 2, <usize>ldo << 2);
}

/** out (M,N) = beta·out + a (K,M)^T @ b (K,N) */
export function matmulTN(out: usize, a: usize, b: usize, M: i32, N: i32, K: i32, beta: f32): void {
  gemmAB(out, a, b, M, N, K, beta, 4, <usize>M << 2, <usize>N << 2, <usize>N << 2);
}

/**
 * out (cols, ldo) ← x (rows, cols)ᵀ in columns [0, rows): 4×4 blocks transposed in registers
 * (four loads, eight shuffles, four stores), 16 rows of x at a time so that each row of out gets
 * 64 contiguous bytes; the last rows and columns (under 4) one float at a time.
 */
export function transpose(out: usize, x: usize, rows: i32, cols: i32, ldo: i32): void {
  const rowX = <usize>cols << 2, rowO = <usize>ldo << 2;
  const R4 = rows & ~3, C4 = cols & ~3;
  for (let r0 = 0; r0 < R4; r0 += 16) {
    const r1 = min<i32>(R4, r0 + 16);
    for (let c = 0; c < C4; c += 4) {
      const po = out + <usize>c * rowO, px = x + (<usize>c << 2);
      for (let r = r0; r < r1; r += 4) {
        const p = px + <usize>r * rowX;
        const a = v128.load(p), b = v128.load(p + rowX), d = v128.load(p + 2 * rowX), e = v128.load(p + 3 * rowX);
        const t0 = f32x4.shuffle(a, b, 0, 4, 1, 5), t1 = f32x4.shuffle(a, b, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(d, e, 0, 4, 1, 5), t3 = f32x4.shuffle(d, e, 2, 6, 3, 7);
        const q = po + (<usize>r << 2);
        v128.store(q, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store(q + rowO, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
        v128.store(q + 2 * rowO, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
        v128.store(q + 3 * rowO, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
      }
    }
  }
  // the last cols % 4 columns of the first R4 rows, then the last rows % 4 rows
  for (let c = C4; c < cols; c++) {
    const po = out + <usize>c * rowO;
    for (let r = 0; r < R4; r++) store<f32>(po + (<usize>r << 2), load<f32>(x + <usize>r * rowX + (<usize>c << 2)));
  }
  for (let r = R4; r < rows; r++) {
    for (let c = 0; c < cols; c++) store<f32>(out + <usize>c * rowO + (<usize>r << 2), load<f32>(x + <usize>r * rowX + (<usize>c << 2)));
  }
}

/**
 * out (rows, ldo) ← x (rows, cols) in columns [0, cols) of each row (ldo ≥ cols; the rest of each
 * row untouched): an operand of the NN/TN products copied with its rows padded, so that they do
 * not lie a multiple of 256 bytes apart (such rows share a few L1 sets, and a k-block's 256 rows
 * of b then evict each other).
 */
export function padRows(out: usize, x: usize, rows: i32, cols: i32, ldo: i32): void {
  const rowX = <usize>cols << 2, rowO = <usize>ldo << 2;
  for (let r = 0; r < rows; r++) memory.copy(out + <usize>r * rowO, x + <usize>r * rowX, rowX);
}

// ================================================================ NT over weights in panels of four rows
//
// A weight b (N, K) with N and K multiples of 4 can be stored as N/4 panels: panel p holds rows
// 4p … 4p+3 as K/4 runs of 64 bytes, run k4 being the four rows' elements 4k4 … 4k4+3 side by side
// (element (n, k) at float p·4K + k4·16 + (n mod 4)·4 + k mod 4, p = n/4, k4 = k/4). A 2×4 tile then
// reads one address stream instead of four rows 4K bytes apart, which the hardware prefetcher
// follows better when the weights come from memory: at 32 rows the product runs 1.10–1.16× faster
// (src/kernels/ref/panels.ts has the layout's twin; p4Gemv for the GEMV). Panel p starts at byte 16pK, where row 4p of
// the row layout starts, so a split of the columns at a multiple of 4 offsets b exactly as there.
// Each output is the same sum in the same order as matmulNT's (4-lane partial sums over k, hsum4),
// so the two layouts give the same bits.

/** Row n of a row layout at `rows`, and its place in panels at `panels`: its K/4 runs, 64 bytes apart there. */
@inline function relayoutPanels4(rows: usize, panels: usize, N: i32, K: i32, toPanels: bool): void {
  const rowB = <usize>K << 2, runs = <usize>K >> 2;
  for (let n = 0; n < N; n++) {
    const r = rows + <usize>n * rowB;
    const p = panels + <usize>(n >> 2) * (rowB << 2) + (<usize>(n & 3) << 4);
    if (toPanels) for (let k4: usize = 0; k4 < runs; k4++) v128.store(p + (k4 << 6), v128.load(r + (k4 << 4)));
    else for (let k4: usize = 0; k4 < runs; k4++) v128.store(r + (k4 << 4), v128.load(p + (k4 << 6)));
  }
}

/** out (N/4 panels) ← b (N, K) in the row layout. */
export function packPanels4(out: usize, b: usize, N: i32, K: i32): void {
  relayoutPanels4(b, out, N, K, true);
}

/** out (N, K) in the row layout ← bp in panels. */
export function unpackPanels4(out: usize, bp: usize, N: i32, K: i32): void {
  relayoutPanels4(out, bp, N, K, false);
}

/** Two rows of a (rowO bytes apart in out) against panels [j0/4, j1/4): 2×4 tiles as ntRows2Block's. */
function p4Rows2(po: usize, pa0: usize, bp: usize, j0: i32, j1: i32, K: i32, acc: bool, rowO: usize): void {
  const rowA = <usize>K << 2;
  const pa1 = pa0 + rowA;
  const qe = pa0 + rowA;
  for (let j = j0; j < j1; j += 4) {
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
    let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
    let q0 = pa0, q1 = pa1, r = bp + <usize>j * rowA;
    for (; q0 < qe; q0 += 16, q1 += 16, r += 64) {
      const a0 = v128.load(q0), a1 = v128.load(q1);
      let bv = v128.load(r);
      c00 = fmadd(a0, bv, c00); c10 = fmadd(a1, bv, c10);
      bv = v128.load(r, 16);
      c01 = fmadd(a0, bv, c01); c11 = fmadd(a1, bv, c11);
      bv = v128.load(r, 32);
      c02 = fmadd(a0, bv, c02); c12 = fmadd(a1, bv, c12);
      bv = v128.load(r, 48);
      c03 = fmadd(a0, bv, c03); c13 = fmadd(a1, bv, c13);
    }
    const pj = po + (<usize>j << 2);
    ntStore4(pj, hsum4(c00, c01, c02, c03), acc);
    ntStore4(pj + rowO, hsum4(c10, c11, c12, c13), acc);
  }
}

/**
 * One row of a against panels [j0/4, j1/4) (dot4's sums), two steps of k an iteration: the GEMV
 * for weights in cache, the GEMM's odd last row and the far-apart GEMV's odd last panel.
 */
function p4Row(po: usize, pa: usize, bp: usize, j0: i32, j1: i32, K: i32, acc: bool): void {
  const rowA = <usize>K << 2;
  const qe = pa + rowA;
  for (let j = j0; j < j1; j += 4) {
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    let r = bp + <usize>j * rowA, q = pa;
    for (; q + 16 < qe; q += 32, r += 128) {
      let av = v128.load(q);
      c0 = fmadd(av, v128.load(r), c0);
      c1 = fmadd(av, v128.load(r, 16), c1);
      c2 = fmadd(av, v128.load(r, 32), c2);
      c3 = fmadd(av, v128.load(r, 48), c3);
      av = v128.load(q, 16);
      c0 = fmadd(av, v128.load(r, 64), c0);
      c1 = fmadd(av, v128.load(r, 80), c1);
      c2 = fmadd(av, v128.load(r, 96), c2);
      c3 = fmadd(av, v128.load(r, 112), c3);
    }
    if (q < qe) {
      const av = v128.load(q);
      c0 = fmadd(av, v128.load(r), c0);
      c1 = fmadd(av, v128.load(r, 16), c1);
      c2 = fmadd(av, v128.load(r, 32), c2);
      c3 = fmadd(av, v128.load(r, 48), c3);
    }
    ntStore4(po + (<usize>j << 2), hsum4(c0, c1, c2, c3), acc);
  }
}

/**
 * The decoding GEMV over panels, two ways with the same sums (so the same bits), chosen by the
 * bytes of b: up to 2 MiB (a small model's weights, which stay in cache from token to token) one
 * panel at a time, two steps of k an iteration; above (weights streamed from memory) two
 * far-apart panels at once (u and u + S, S half the panels) from two moving pointers. On
 * mamba-130m's and the bundled model's shapes, in cache the first read 1.05–1.3× faster than the
 * second and than ntRow's four rows; from memory the second 1.1–1.2× faster than both
 * (`node tools/bench-packed.mjs`, with `--cold` for the weights from memory).
 */
function p4Gemv(po: usize, pa: usize, bp: usize, N: i32, K: i32, acc: bool): void {
  const rowA = <usize>K << 2;
  const P = N >> 2;
  const qe = pa + rowA;
  if (<usize>N * rowA <= (<usize>2 << 20)) {
    p4Row(po, pa, bp, 0, N, K, acc);
    return;
  }
  const S = P >> 1;
  const far = <usize>S * (rowA << 2), farO = <usize>S << 4;
  for (let u = 0; u < S; u++) {
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    let d0 = f32x4.splat(0), d1 = f32x4.splat(0), d2 = f32x4.splat(0), d3 = f32x4.splat(0);
    let r = bp + <usize>u * (rowA << 2), s = r + far, q = pa;
    for (; q < qe; q += 16, r += 64, s += 64) {
      const av = v128.load(q);
      c0 = fmadd(av, v128.load(r), c0);
      c1 = fmadd(av, v128.load(r, 16), c1);
      c2 = fmadd(av, v128.load(r, 32), c2);
      c3 = fmadd(av, v128.load(r, 48), c3);
      d0 = fmadd(av, v128.load(s), d0);
      d1 = fmadd(av, v128.load(s, 16), d1);
      d2 = fmadd(av, v128.load(s, 32), d2);
      d3 = fmadd(av, v128.load(s, 48), d3);
    }
    const o = po + (<usize>u << 4);
    ntStore4(o, hsum4(c0, c1, c2, c3), acc);
    ntStore4(o + farO, hsum4(d0, d1, d2, d3), acc);
  }
  if (P & 1) p4Row(po, pa, bp, (P - 1) << 2, N, K, acc); // the odd last panel
}

/** out (M, N) = beta·out + a (M, K) @ b (N, K)ᵀ, b in panels (N, K multiples of 4). */
export function matmulNTP4(out: usize, a: usize, bp: usize, M: i32, N: i32, K: i32, beta: f32): void {
  matmulNTP4Strided(out, a, bp, M, N, K, beta, N);
}

/** matmulNTP4 on a block of columns of a wider output (rows of out `ldo` floats apart), as matmulNTStrided. */
export function matmulNTP4Strided(out: usize, a: usize, bp: usize, M: i32, N: i32, K: i32, beta: f32, ldo: i32): void {
  if (M <= 0 || N <= 0) return;
  const acc = beta != 0;
  const rowA = <usize>K << 2, rowO = <usize>ldo << 2;
  if (M == 1) {
    p4Gemv(out, a, bp, N, K, acc);
    return;
  }
  const JB = ntBlock(K);
  for (let j0 = 0; j0 < N; j0 += JB) {
    const j1 = min<i32>(N, j0 + JB);
    let r = 0;
    for (; r + 2 <= M; r += 2) p4Rows2(out + <usize>r * rowO, a + <usize>r * rowA, bp, j0, j1, K, acc, rowO);
    if (r < M) p4Row(out + <usize>r * rowO, a + <usize>r * rowA, bp, j0, j1, K, acc);
  }
}
