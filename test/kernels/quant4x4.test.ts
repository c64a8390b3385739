import { describe, expect, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import { loadWasmKernels } from '../../src/kernels/wasm/index.js';
import { TEST_BUILD } from '../helpers/wasm-twins.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { expectClose } from '../helpers/compare.js';

/**
 * q8 and q4 weights repacked in groups of four rows and products with prepared activations
 * (src/kernels/ref/quant4x4.ts), the wasm kernels against their reference twins, for each format:
 * - the repack and the prepared activation are bytes: equal exactly; unpacking the repack gives
 *   the row layout back;
 * - the products: the twin decodes each weight and each activation back from the packed and
 *   prepared forms and sums the integers plainly (not through the kernel's shifted lanes), so it
 *   checks the identity the kernels rest on; tolerance 1e-5 of the largest output for the f32 sums
 *   (as quant-q4.test.ts);
 * - the packed product equals the row layout's product of the same build bit for bit (both sum
 *   each block's exact integer total, then the same f32 steps), GEMV and GEMM alike;
 * - the ends of the ranges — nibbles 0 and 15, q8 values ±127, activations ±127 — where a wrong
 *   sign of a top nibble or of a pair's high byte, an i16 coefficient or lane that wraps, or a
 *   wrong offset would show; and hand-worked blocks exact in f32.
 */
const heap = new Heap(64);
const w = loadWasmKernels(heap.memory, TEST_BUILD);
const QK = 32;
const prepSize = (rows: number, K: number) => (rows * K * ref.PREP_BLOCK_BYTES) / QK;

function put(v: Float32Array | Int8Array | Uint8Array): number {
  const off = heap.alloc(Math.max(v.byteLength, 16));
  new Uint8Array(heap.memory.buffer, off, v.byteLength).set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  return off;
}
const bytesAt = (p: number, n: number) => Uint8Array.from(new Uint8Array(heap.memory.buffer, p, n));

type Format = 'q8' | 'q4';
interface Operands {
  qx: Int8Array;
  sx: Float32Array;
  qw: Uint8Array | Int8Array; // q4: nibbles (K/2 bytes a row); q8: values (K a row)
  sw: Float32Array;
}

/** Weight bytes of a row: K/2 for q4, K for q8. */
const rowBytes = (f: Format, K: number) => (f === 'q4' ? K / 2 : K);

function operands(f: Format, M: number, N: number, K: number, wv: () => number, act: () => number, scale: () => number): Operands {
  return {
    qw: f === 'q4' ? Uint8Array.from({ length: N * rowBytes(f, K) }, wv) : Int8Array.from({ length: N * K }, wv),
    qx: Int8Array.from({ length: M * K }, act),
    sw: Float32Array.from({ length: (N * K) / QK }, scale),
    sx: Float32Array.from({ length: (M * K) / QK }, scale),
  };
}

/** The twins' packed weights and prepared rows. */
function refPacked(f: Format, o: Operands, M: number, N: number, K: number) {
  const q = f === 'q4' ? new Uint8Array((N * K) / 2) : new Int8Array(N * K),
    s = new Float32Array((N * K) / QK),
    p = new Uint8Array(prepSize(M, K));
  if (f === 'q4') {
    ref.repackQ4x4(q as Uint8Array, s, o.qw as Uint8Array, o.sw, N, K);
    ref.prepQ4x4(p, o.qx, o.sx, M, K);
  } else {
    ref.repackQ8x4(q as Int8Array, s, o.qw as Int8Array, o.sw, N, K);
    ref.prepQ8x4(p, o.qx, o.sx, M, K);
  }
  return { q, s, p };
}

/** The weights repacked and the activations prepared by the wasm kernels, checked byte for byte against the twins. */
function packed(f: Format, o: Operands, M: number, N: number, K: number): { pq: number; ps: number; pp: number } {
  const bytes = N * rowBytes(f, K);
  const pq = heap.alloc(bytes),
    ps = heap.alloc((N * K) / 8),
    pp = heap.alloc(prepSize(M, K));
  const args = [put(o.qx), put(o.sx), M, K] as const;
  if (f === 'q4') {
    w.repackQ4x4(pq, ps, put(o.qw), put(o.sw), N, K);
    w.prepQ4x4(pp, ...args);
  } else {
    w.repackQ8x4(pq, ps, put(o.qw), put(o.sw), N, K);
    w.prepQ8x4(pp, ...args);
  }
  const want = refPacked(f, o, M, N, K);
  expect(bytesAt(pq, bytes)).toEqual(new Uint8Array(want.q.buffer));
  expect(Float32Array.from(heap.f32(ps, want.s.length))).toEqual(want.s);
  expect(bytesAt(pp, want.p.length)).toEqual(want.p);
  return { pq, ps, pp };
}

/** The packed product into columns [n0, n0 + N) of an (M, N + 5) output filled with a marker; the twin's; the row layout's. */
function product(f: Format, o: Operands, M: number, N: number, K: number) {
  const n0 = 3,
    ldo = N + 5,
    marker = -12345.5;
  const { pq, ps, pp } = packed(f, o, M, N, K);
  const po = put(new Float32Array(M * ldo).fill(marker)),
    rows = put(new Float32Array(M * ldo).fill(marker));
  const rowArgs = [put(o.qx), put(o.sx), put(o.qw), put(o.sw), M, N, K, ldo] as const;
  const want = new Float32Array(M * ldo).fill(marker),
    r = refPacked(f, o, M, N, K);
  if (f === 'q4') {
    w.matmulQ4x4Strided(po + n0 * 4, pp, pq, ps, M, N, K, ldo);
    w.matmulQ4Strided(rows + n0 * 4, ...rowArgs);
    ref.matmulQ4x4Strided(want.subarray(n0), r.p, r.q as Uint8Array, r.s, M, N, K, ldo);
  } else {
    w.matmulQ8x4Strided(po + n0 * 4, pp, pq, ps, M, N, K, ldo);
    w.matmulQ8Strided(rows + n0 * 4, ...rowArgs);
    ref.matmulQ8x4Strided(want.subarray(n0), r.p, r.q as Int8Array, r.s, M, N, K, ldo);
  }
  const got = Float32Array.from(heap.f32(po, M * ldo)),
    rowLayout = Float32Array.from(heap.f32(rows, M * ldo));
  for (let i = 0; i < M; i++)
    for (let j = 0; j < ldo; j++) if (j < n0 || j >= n0 + N) expect(got[i * ldo + j], `untouched (${i}, ${j})`).toBe(marker);
  return { got, want, rowLayout, n0, ldo };
}

// every path: the GEMV (M = 1), the GEMM's two-row tiles and an odd last row, one block or several, several cache blocks of groups
const SHAPES = [
  [1, 4, 32],
  [1, 12, 96],
  [1, 64, 160],
  [2, 8, 64],
  [4, 4, 32],
  [5, 12, 32],
  [9, 20, 128],
  [6, 1400, 96],
] as const;

describe.each(['q4', 'q8'] as const)(`%s weights in groups of four rows (${TEST_BUILD} build)`, (f) => {
  const extremes = f === 'q4' ? [0x00, 0xff, 0x0f, 0xf0] : [-127, 127];
  it.each(SHAPES)('random operands (M=%i, N=%i, K=%i): the twin within 1e-5, the row layout bit for bit', (M, N, K) => {
    const r = Rng.fromSeed(M * 1000 + N * 10 + K);
    const o = operands(
      f,
      M,
      N,
      K,
      () => (f === 'q4' ? Math.floor(r.uniform() * 256) : Math.floor(r.uniform() * 255) - 127),
      () => Math.floor(r.uniform() * 255) - 127,
      () => r.normal(),
    );
    const { got, want, rowLayout } = product(f, o, M, N, K);
    expectClose(got, want, 1e-5, `packed ${f} product`);
    expect(got).toEqual(rowLayout);
  });

  it.each(SHAPES)('weights and activations at the ends of their ranges (M=%i, N=%i, K=%i)', (M, N, K) => {
    const r = Rng.fromSeed(M + N + K);
    const o = operands(
      f,
      M,
      N,
      K,
      () => extremes[Math.floor(r.uniform() * extremes.length)],
      () => (r.uniform() < 0.5 ? -127 : 127),
      () => 0.5 + r.uniform(),
    );
    const { got, want, rowLayout } = product(f, o, M, N, K);
    expectClose(got, want, 1e-5, `extreme packed ${f} product`);
    expect(got).toEqual(rowLayout);
  });

  // weight scale 1/2, activation scale 1/4: every step is exact in f32, so each output is this integer times K/32
  const exact: [number, number, number][] =
    f === 'q4'
      ? [
          [0x00, 127, 32 * -8 * 127 * 0.125],
          [0xff, -127, 32 * 7 * -127 * 0.125],
          [0x88, 127, 0],
          [0x7f, 1, (16 * 7 + 16 * -1) * 0.125], // low nibbles 15 (7), high 7 (−1)
        ]
      : [
          [-127, 127, 32 * -127 * 127 * 0.125],
          [127, -127, 32 * 127 * -127 * 0.125],
          [0, 127, 0],
          [-1, 3, 32 * -3 * 0.125],
        ];
  it.each(exact)('weights %i, activations %i: %d per block, exactly', (wv, x, perBlock) => {
    for (const [M, N, K] of SHAPES.slice(0, 6)) {
      const o = operands(
        f,
        M,
        N,
        K,
        () => wv,
        () => x,
        () => 0.5,
      );
      o.sx.fill(0.25);
      const { got, n0, ldo } = product(f, o, M, N, K);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) expect(got[i * ldo + n0 + j], `M=${M} N=${N} K=${K} (${i}, ${j})`).toBe((perBlock * K) / QK);
    }
  });

  it('the unstrided product is the strided one with ldo = N', () => {
    const r = Rng.fromSeed(11);
    const [M, N, K] = [6, 8, 64];
    const o = operands(
      f,
      M,
      N,
      K,
      () => (f === 'q4' ? Math.floor(r.uniform() * 256) : Math.floor(r.uniform() * 255) - 127),
      () => Math.floor(r.uniform() * 255) - 127,
      () => r.normal(),
    );
    const { pq, ps, pp } = packed(f, o, M, N, K);
    const po = heap.alloc(M * N * 4);
    const want = new Float32Array(M * N),
      rp = refPacked(f, o, M, N, K);
    if (f === 'q4') {
      w.matmulQ4x4(po, pp, pq, ps, M, N, K);
      ref.matmulQ4x4(want, rp.p, rp.q as Uint8Array, rp.s, M, N, K);
    } else {
      w.matmulQ8x4(po, pp, pq, ps, M, N, K);
      ref.matmulQ8x4(want, rp.p, rp.q as Int8Array, rp.s, M, N, K);
    }
    expectClose(Float32Array.from(heap.f32(po, M * N)), want, 1e-5, `matmul${f === 'q4' ? 'Q4' : 'Q8'}x4`);
  });

  it('unpacking gives the row layout back; dequantising the packed weights gives the row layout dequantised', () => {
    const r = Rng.fromSeed(7);
    const [N, K] = [12, 96];
    const o = operands(
      f,
      1,
      N,
      K,
      () => (f === 'q4' ? Math.floor(r.uniform() * 256) : Math.floor(r.uniform() * 255) - 127),
      () => 0,
      () => r.normal(),
    );
    const { pq, ps } = packed(f, o, 1, N, K);
    const bytes = N * rowBytes(f, K);
    const s = new Float32Array((N * K) / QK),
      packedS = Float32Array.from(heap.f32(ps, s.length)),
      po = heap.alloc(N * K * 4),
      want = new Float32Array(N * K),
      viaRef = new Float32Array(N * K);
    if (f === 'q4') {
      const q = new Uint8Array(bytes);
      ref.unpackQ4x4(q, s, bytesAt(pq, bytes), packedS, N, K);
      expect(q).toEqual(o.qw);
      w.dequantizeQ4x4(po, pq, ps, N, K);
      ref.dequantizeQ4(want, o.qw as Uint8Array, o.sw, N, K);
      ref.dequantizeQ4x4(viaRef, bytesAt(pq, bytes), packedS, N, K);
    } else {
      const q = new Int8Array(bytes),
        pk = new Int8Array(bytesAt(pq, bytes).buffer);
      ref.unpackQ8x4(q, s, pk, packedS, N, K);
      expect(q).toEqual(o.qw);
      w.dequantizeQ8x4(po, pq, ps, N, K);
      ref.dequantizeQ8(want, o.qw as Int8Array, o.sw, N, K);
      ref.dequantizeQ8x4(viaRef, pk, packedS, N, K);
    }
    expect(s).toEqual(o.sw);
    expect(Float32Array.from(heap.f32(po, N * K))).toEqual(want);
    expect(viaRef).toEqual(want);
  });
});
