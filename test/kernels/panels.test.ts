import { afterAll, describe, expect, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import { loadWasmKernels } from '../../src/kernels/wasm/index.js';
import { Engine } from '../../src/ops/index.js';
import { TEST_BUILD } from '../helpers/wasm-twins.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { expectClose } from '../helpers/compare.js';

/**
 * f32 weights in panels of four rows (src/kernels/ref/panels.ts), the wasm kernels against their
 * twins:
 * - packing and unpacking move floats: equal exactly to the twins', and unpacking gives the rows back;
 * - the product over panels against the twin (tolerance 1e-5 of the largest output), and against
 *   the row layout's matmulNT of the same build bit for bit, for every path (GEMV with an even and
 *   an odd number of panels, pairs of rows with an odd last row, several blocks of b, beta 1, a
 *   block of columns written into a wider output);
 * - the threaded product gives the single thread's bits at 1–4 threads;
 * - the lookup of rows from a table in panels equals the row layout's lookup.
 */
const heap = new Heap(64);
const w = loadWasmKernels(heap.memory, TEST_BUILD);
const put = (v: Float32Array) => {
  const off = heap.alloc(Math.max(v.byteLength, 16));
  new Float32Array(heap.memory.buffer, off, v.length).set(v);
  return off;
};
const at = (p: number, n: number) => Float32Array.from(new Float32Array(heap.memory.buffer, p, n));
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const randn = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal());

// [M, N, K]: GEMV with b in cache (≤ 2 MiB, odd K/4) and from memory (> 2 MiB: two far-apart panels,
// an even and an odd number of them), odd M, b over several blocks (K 64 → 1024 rows a block)
const SHAPES = [
  [1, 16, 8],
  [1, 20, 12],
  [1, 3072, 64],
  [1, 3072, 256],
  [1, 3076, 192],
  [2, 8, 4],
  [3, 12, 20],
  [7, 2100, 64],
  [32, 80, 1536],
  [5, 44, 768],
];

describe('panels of four rows', () => {
  it('pack and unpack equal the twins and invert each other', () => {
    const rng = Rng.fromSeed(3);
    for (const [, N, K] of SHAPES) {
      const b = randn(rng, N * K);
      const want = new Float32Array(N * K);
      ref.packPanels4(want, b, N, K);
      const pb = heap.alloc(N * K * 4),
        back = heap.alloc(N * K * 4);
      w.packPanels4(pb, put(b), N, K);
      expect(bits(at(pb, N * K))).toEqual(bits(want));
      w.unpackPanels4(back, pb, N, K);
      expect(bits(at(back, N * K))).toEqual(bits(b));
      const refBack = new Float32Array(N * K);
      ref.unpackPanels4(refBack, want, N, K);
      expect(bits(refBack)).toEqual(bits(b));
    }
  });

  it.each(SHAPES)('M %i, N %i, K %i: the product equals the twin and matmulNT bit for bit', (M, N, K) => {
    const rng = Rng.fromSeed(M * 1000 + N + K);
    const a = randn(rng, M * K),
      b = randn(rng, N * K),
      y0 = randn(rng, M * N);
    const bp = new Float32Array(N * K);
    ref.packPanels4(bp, b, N, K);
    for (const beta of [0, 1]) {
      const want = Float32Array.from(y0);
      ref.matmulNTP4(want, a, bp, M, N, K, beta);
      const rows = put(y0),
        pan = put(y0);
      w.matmulNT(rows, put(a), put(b), M, N, K, beta);
      w.matmulNTP4(pan, put(a), put(bp), M, N, K, beta);
      expectClose(at(pan, M * N), want, 1e-5, `beta ${beta}`);
      expect(bits(at(pan, M * N))).toEqual(bits(at(rows, M * N)));
    }
    // a block of columns [4, N) written into the full-width output, as a thread computes it
    if (N > 4) {
      const full = put(y0),
        rowsFull = put(y0);
      w.matmulNTP4Strided(full + 16, put(a), put(bp) + 16 * K, M, N - 4, K, 0, N);
      w.matmulNTStrided(rowsFull + 16, put(a), put(b) + 16 * K, M, N - 4, K, 0, N);
      expect(bits(at(full, M * N))).toEqual(bits(at(rowsFull, M * N)));
      const want = Float32Array.from(y0);
      ref.matmulNTP4Strided(want.subarray(4), a, bp.subarray(4 * K), M, N - 4, K, 0, N);
      expectClose(at(full, M * N), want, 1e-5, 'columns [4, N)');
    }
  });

  it('the embedding lookup from panels equals the row lookup', () => {
    const rng = Rng.fromSeed(9);
    const V = 12,
      D = 8;
    const table = randn(rng, V * D),
      tp = new Float32Array(V * D);
    ref.packPanels4(tp, table, V, D);
    const ids = Int32Array.from([0, 5, 11, 3, 3]);
    const want = new Float32Array(ids.length * D),
      got = new Float32Array(ids.length * D);
    ref.embeddingForward(want, table, ids, ids.length, D);
    ref.embeddingP4(got, tp, ids, ids.length, D);
    expect(bits(got)).toEqual(bits(want));
  });
});

describe('threaded product over panels', () => {
  const engines: Engine[] = [];
  afterAll(() => {
    for (const e of engines) e.dispose();
  });
  it.each([
    [1, 3072, 64],
    [1, 3076, 256],
    [3, 1024, 96],
    [32, 1024, 256],
    [130, 512, 64],
  ])('M %i, N %i, K %i: 1–4 threads give the same bits', (M, N, K) => {
    const rng = Rng.fromSeed(M + N + K);
    const a = randn(rng, M * K),
      b = randn(rng, N * K),
      bp = new Float32Array(N * K);
    ref.packPanels4(bp, b, N, K);
    let first: Buffer | null = null;
    for (const T of [1, 2, 3, 4]) {
      const e = new Engine({ kernels: 'wasm', threads: T });
      engines.push(e);
      const ta = e.fromValues([M, K], a),
        tb = e.fromValues([N, K], bp),
        y = e.zeros([M, N]);
      e.k.matmulNTP4(y, ta, tb, M, N, K, 0);
      const got = Buffer.from(Float32Array.from(y.floats()).buffer);
      if (first === null) first = got;
      else expect(got).toEqual(first);
    }
  });
});
