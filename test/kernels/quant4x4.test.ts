import { describe, expect, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import { loadWasmKernels } from '../../src/kernels/wasm/index.js';
import { TEST_BUILD } from '../helpers/wasm-twins.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { expectClose } from '../helpers/compare.js';

/**
 * q4 weights repacked in groups of four rows and products with prepared activations
 * (src/kernels/ref/quant4x4.ts), the wasm kernels against their reference twins:
 * - the repack and the prepared activation are bytes: equal exactly; unpacking the repack gives
 *   the row layout back;
 * - the products: the twin decodes each nibble and each activation back from the prepared form
 *   and sums the integers plainly (not the kernel's shifted lanes), so it checks the identity the
 *   kernel rests on; tolerance 1e-5 of the largest output for the f32 sums (as quant-q4.test.ts);
 * - the packed product equals the row layout's product of the same build bit for bit (both sum
 *   each block's exact integer total, then the same f32 steps), GEMV and GEMM alike;
 * - nibbles 0 and 15 with activations ±127 (where a wrong sign of the top nibble, an i16 lane
 *   that wraps, or a wrong offset would show), and hand-worked blocks exact in f32.
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

interface Operands {
  qx: Int8Array;
  sx: Float32Array;
  qw: Uint8Array;
  sw: Float32Array;
}

function operands(M: number, N: number, K: number, byte: () => number, act: () => number, scale: () => number): Operands {
  return {
    qw: Uint8Array.from({ length: (N * K) / 2 }, byte),
    qx: Int8Array.from({ length: M * K }, act),
    sw: Float32Array.from({ length: (N * K) / QK }, scale),
    sx: Float32Array.from({ length: (M * K) / QK }, scale),
  };
}

/** The weights repacked and the activations prepared by the wasm kernels (both checked against the twins). */
function packed(o: Operands, M: number, N: number, K: number): { pq: number; ps: number; pp: number } {
  const pq = heap.alloc((N * K) / 2),
    ps = heap.alloc((N * K) / 8),
    pp = heap.alloc(prepSize(M, K));
  w.repackQ4x4(pq, ps, put(o.qw), put(o.sw), N, K);
  const wantQ = new Uint8Array((N * K) / 2),
    wantS = new Float32Array((N * K) / QK);
  ref.repackQ4x4(wantQ, wantS, o.qw, o.sw, N, K);
  expect(bytesAt(pq, wantQ.length)).toEqual(wantQ);
  expect(Float32Array.from(heap.f32(ps, wantS.length))).toEqual(wantS);
  w.prepQ4x4(pp, put(o.qx), put(o.sx), M, K);
  const wantP = new Uint8Array(prepSize(M, K));
  ref.prepQ4x4(wantP, o.qx, o.sx, M, K);
  expect(bytesAt(pp, wantP.length)).toEqual(wantP);
  return { pq, ps, pp };
}

/** matmulQ4x4Strided into columns [n0, n0 + N) of an (M, N + 5) output filled with a marker; also the row layout's product. */
function product(o: Operands, M: number, N: number, K: number) {
  const n0 = 3,
    ldo = N + 5,
    marker = -12345.5;
  const { pq, ps, pp } = packed(o, M, N, K);
  const po = put(new Float32Array(M * ldo).fill(marker));
  w.matmulQ4x4Strided(po + n0 * 4, pp, pq, ps, M, N, K, ldo);
  const got = Float32Array.from(heap.f32(po, M * ldo));
  const rows = put(new Float32Array(M * ldo).fill(marker));
  w.matmulQ4Strided(rows + n0 * 4, put(o.qx), put(o.sx), put(o.qw), put(o.sw), M, N, K, ldo);
  const rowLayout = Float32Array.from(heap.f32(rows, M * ldo));
  const want = new Float32Array(M * ldo).fill(marker);
  const refQ = new Uint8Array((N * K) / 2),
    refS = new Float32Array((N * K) / QK),
    refP = new Uint8Array(prepSize(M, K));
  ref.repackQ4x4(refQ, refS, o.qw, o.sw, N, K);
  ref.prepQ4x4(refP, o.qx, o.sx, M, K);
  ref.matmulQ4x4Strided(want.subarray(n0), refP, refQ, refS, M, N, K, ldo);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < ldo; j++) if (j < n0 || j >= n0 + N) expect(got[i * ldo + j], `untouched (${i}, ${j})`).toBe(marker);
  return { got, want, rowLayout, n0, ldo };
}

// every path: the GEMV (M = 1), the GEMM's four-row tiles and its M mod 4 rows, one block or several, several cache blocks of groups
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

describe(`q4 weights in groups of four rows (${TEST_BUILD} build)`, () => {
  it.each(SHAPES)('random operands (M=%i, N=%i, K=%i): the twin within 1e-5, the row layout bit for bit', (M, N, K) => {
    const r = Rng.fromSeed(M * 1000 + N * 10 + K);
    const o = operands(
      M,
      N,
      K,
      () => Math.floor(r.uniform() * 256),
      () => Math.floor(r.uniform() * 255) - 127,
      () => r.normal(),
    );
    const { got, want, rowLayout } = product(o, M, N, K);
    expectClose(got, want, 1e-5, 'packed q4 product');
    expect(got).toEqual(rowLayout);
  });

  it.each(SHAPES)('nibbles 0 and 15, activations ±127 (M=%i, N=%i, K=%i)', (M, N, K) => {
    const r = Rng.fromSeed(M + N + K);
    const bytes = [0x00, 0xff, 0x0f, 0xf0];
    const o = operands(
      M,
      N,
      K,
      () => bytes[Math.floor(r.uniform() * 4)],
      () => (r.uniform() < 0.5 ? -127 : 127),
      () => 0.5 + r.uniform(),
    );
    const { got, want, rowLayout } = product(o, M, N, K);
    expectClose(got, want, 1e-5, 'extreme packed q4 product');
    expect(got).toEqual(rowLayout);
  });

  // scales 1/2 and 1/4: every step is exact in f32, so each output is this integer times K/32
  it.each([
    [0x00, 127, 32 * -8 * 127 * 0.125],
    [0xff, -127, 32 * 7 * -127 * 0.125],
    [0x88, 127, 0],
    [0x7f, 1, (16 * 7 + 16 * -1) * 0.125], // low nibbles 15 (7), high 7 (−1)
  ])('weight bytes %i, activations %i: %d per block, exactly', (byte, x, perBlock) => {
    for (const [M, N, K] of SHAPES.slice(0, 6)) {
      const o = operands(
        M,
        N,
        K,
        () => byte,
        () => x,
        () => 0.5,
      );
      o.sx.fill(0.25);
      const { got, n0, ldo } = product(o, M, N, K);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) expect(got[i * ldo + n0 + j], `M=${M} N=${N} K=${K} (${i}, ${j})`).toBe((perBlock * K) / QK);
    }
  });

  it('the unstrided product is the strided one with ldo = N', () => {
    const r = Rng.fromSeed(11);
    const [M, N, K] = [6, 8, 64];
    const o = operands(
      M,
      N,
      K,
      () => Math.floor(r.uniform() * 256),
      () => Math.floor(r.uniform() * 255) - 127,
      () => r.normal(),
    );
    const { pq, ps, pp } = packed(o, M, N, K);
    const po = heap.alloc(M * N * 4);
    w.matmulQ4x4(po, pp, pq, ps, M, N, K);
    const want = new Float32Array(M * N),
      refQ = new Uint8Array((N * K) / 2),
      refS = new Float32Array((N * K) / QK),
      refP = new Uint8Array(prepSize(M, K));
    ref.repackQ4x4(refQ, refS, o.qw, o.sw, N, K);
    ref.prepQ4x4(refP, o.qx, o.sx, M, K);
    ref.matmulQ4x4(want, refP, refQ, refS, M, N, K);
    expectClose(Float32Array.from(heap.f32(po, M * N)), want, 1e-5, 'matmulQ4x4');
  });

  it('unpacking gives the row layout back; dequantising the packed weights gives the row layout dequantised', () => {
    const r = Rng.fromSeed(7);
    const [N, K] = [12, 96];
    const o = operands(
      1,
      N,
      K,
      () => Math.floor(r.uniform() * 256),
      () => 0,
      () => r.normal(),
    );
    const { pq, ps } = packed(o, 1, N, K);
    const q = new Uint8Array((N * K) / 2),
      s = new Float32Array((N * K) / QK);
    ref.unpackQ4x4(q, s, bytesAt(pq, q.length), Float32Array.from(heap.f32(ps, s.length)), N, K);
    expect(q).toEqual(o.qw);
    expect(s).toEqual(o.sw);
    const po = heap.alloc(N * K * 4);
    w.dequantizeQ4x4(po, pq, ps, N, K);
    const want = new Float32Array(N * K);
    ref.dequantizeQ4(want, o.qw, o.sw, N, K);
    expect(Float32Array.from(heap.f32(po, N * K))).toEqual(want);
    const viaRef = new Float32Array(N * K);
    ref.dequantizeQ4x4(viaRef, bytesAt(pq, q.length), Float32Array.from(heap.f32(ps, s.length)), N, K);
    expect(viaRef).toEqual(want);
  });
});
