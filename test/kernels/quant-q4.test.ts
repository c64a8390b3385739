import { describe, expect, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import { loadWasmKernels } from '../../src/kernels/wasm/index.js';
import { TEST_BUILD } from '../helpers/wasm-twins.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { expectClose } from '../helpers/compare.js';

/**
 * The q4 × q8 products on the integer ranges' ends, against the reference twin and against sums
 * worked out by hand. The relaxed-SIMD build dots the unsigned nibble n ∈ [0, 15] and subtracts
 * 8·Σx per block (Σ(n − 8)·x = Σ n·x − 8·Σx); the default build widens n − 8. Both must give the
 * twin's exact integer block sums: all-0 and all-15 nibbles and ±127 activations are where a wrong
 * correction, a saturating or wrapping 16-bit lane, or a misread sign would show. Outputs go to a
 * block of columns of a wider output (the strided form threads run), the rest left untouched; the
 * shapes take every path of the kernel: the one-row GEMV (four rows a pass, then N mod 4 one by
 * one) and the GEMM (four activation rows a tile, then M mod 4 one by one), one block or several.
 *
 * Tolerance: the integer block sums are exact in both builds; what is left is f32 arithmetic on
 * them (each lane's sum times d_w·d_x, added over the blocks, then the 4 lanes; the builds
 * partition a block over the lanes differently), i.e. a few roundings of 2^-24 relative to the
 * largest output. 1e-5 of the largest output holds that with room and is far below what a wrong
 * correction gives (8·Σx is hundreds to thousands of units per block here; a correction of 7·Σx
 * fails every case with Σx ≠ 0). The hand-worked cases, exact in f32, take no tolerance at all.
 */
const heap = new Heap(64);
const w = loadWasmKernels(heap.memory, TEST_BUILD);
const QK = 32;

function put(v: Float32Array | Int8Array | Uint8Array): number {
  const off = heap.alloc(v.byteLength);
  new Uint8Array(heap.memory.buffer, off, v.byteLength).set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  return off;
}

interface Operands {
  qx: Int8Array;
  sx: Float32Array;
  qw: Uint8Array;
  sw: Float32Array;
}

/** matmulQ4Strided into columns [n0, n0 + N) of an (M, N + 5) output filled with a marker. */
function product(o: Operands, M: number, N: number, K: number): { got: Float32Array; want: Float32Array; n0: number; ldo: number } {
  const n0 = 3,
    ldo = N + 5,
    marker = -12345.5;
  const po = put(new Float32Array(M * ldo).fill(marker));
  w.matmulQ4Strided(po + n0 * 4, put(o.qx), put(o.sx), put(o.qw), put(o.sw), M, N, K, ldo);
  const got = Float32Array.from(heap.f32(po, M * ldo));
  const want = new Float32Array(M * ldo).fill(marker);
  ref.matmulQ4Strided(want.subarray(n0), o.qx, o.sx, o.qw, o.sw, M, N, K, ldo);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < ldo; j++) if (j < n0 || j >= n0 + N) expect(got[i * ldo + j], `untouched (${i}, ${j})`).toBe(marker);
  return { got, want, n0, ldo };
}

/** Operands from per-element pickers: weight bytes (two nibbles each), activations, scales. */
function operands(
  M: number,
  N: number,
  K: number,
  byte: (i: number) => number,
  act: (i: number) => number,
  scale: (i: number) => number,
): Operands {
  return {
    qw: Uint8Array.from({ length: (N * K) / 2 }, (_, i) => byte(i)),
    qx: Int8Array.from({ length: M * K }, (_, i) => act(i)),
    sw: Float32Array.from({ length: (N * K) / QK }, (_, i) => scale(i)),
    sx: Float32Array.from({ length: (M * K) / QK }, (_, i) => scale(i + 1000)),
  };
}

const SHAPES = [
  [1, 7, 32],
  [1, 13, 96],
  [1, 64, 160],
  [2, 9, 64],
  [5, 11, 32],
  [9, 6, 128],
] as const;

describe(`q4 products at the ends of the integer ranges (${TEST_BUILD} build)`, () => {
  it.each(SHAPES)('random nibbles and activations in [-127, 127] (M=%i, N=%i, K=%i) equal the twin', (M, N, K) => {
    const r = Rng.fromSeed(M * 1000 + N * 10 + K);
    const o = operands(
      M,
      N,
      K,
      () => Math.floor(r.uniform() * 256),
      () => Math.floor(r.uniform() * 255) - 127,
      () => r.normal(),
    );
    const { got, want } = product(o, M, N, K);
    expectClose(got, want, 1e-5, 'random q4 product');
  });

  it.each(SHAPES)('nibbles 0 and 15 only, activations ±127 only (M=%i, N=%i, K=%i) equal the twin', (M, N, K) => {
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
    const { got, want } = product(o, M, N, K);
    expectClose(got, want, 1e-5, 'extreme q4 product');
  });

  // scales 1/2 and 1/4: every product, sum and scaling is exact in f32, so the outputs are these integers
  it.each([
    // weight byte, activation of elements 0–15, of elements 16–31, one block's output
    [0x00, 127, 127, 32 * -8 * 127 * 0.125], // every nibble 0: value −8
    [0xff, -127, -127, 32 * 7 * -127 * 0.125], // every nibble 15: value 7
    [0xf0, 127, -127, (16 * -8 * 127 + 16 * 7 * -127) * 0.125], // low nibbles 0, high 15
    [0x0f, -127, 127, (16 * 7 * -127 + 16 * -8 * 127) * 0.125],
    [0x88, 127, -127, 0], // value 0 everywhere
  ])('weight bytes %i, activations %i and %i: %d per block, exactly', (byte, xLo, xHi, perBlock) => {
    for (const [M, N, K] of SHAPES) {
      const o = operands(
        M,
        N,
        K,
        () => byte,
        (i) => (i % QK < QK / 2 ? xLo : xHi),
        (i) => (i < 1000 ? 0.5 : 0.25),
      );
      const { got, n0, ldo } = product(o, M, N, K);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) expect(got[i * ldo + n0 + j], `M=${M} N=${N} K=${K} (${i}, ${j})`).toBe((perBlock * K) / QK);
    }
  });
});
