import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { quantizeModel, weightBytes } from '../../src/models/quant.js';
import { isQuant } from '../../src/tensor/index.js';
import { expectClose, relErr } from '../helpers/compare.js';
import { TEST_WASM } from '../helpers/wasm-twins.js';

/**
 * Quantisation: each format's round-trip error within its named bound, the wasm quantisers equal to
 * the reference ones exactly, the fused integer-dot products equal to their reference twins, and a
 * quantised model close to its f32 original (parallel, step and thread counts agreeing).
 */
const QK = 32;
/** q8: round to nearest of 255 levels: |x − x̂| ≤ max|block| / 254 (+ f32 rounding). */
const Q8_BOUND = (amax: number) => (amax / 254) * (1 + 1e-5);
/** q4: 16 levels with the block's extreme at −8·d: |x − x̂| ≤ d = max|block| / 8 (the clamped +8 end). */
const Q4_BOUND = (amax: number) => (amax / 8) * (1 + 1e-5);

const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});
/** 'wasm' runs TEST_WASM: the default build, or the relaxed-SIMD one in vitest.config.ts's relaxed-simd project. */
const engine = (kernels: 'wasm' | 'ref', threads = 1) => {
  const e = new Engine({ kernels: kernels === 'wasm' ? TEST_WASM : kernels, threads });
  engines.push(e);
  return e;
};
const randn = (seed: number, n: number, scale = 1) => {
  const r = Rng.fromSeed(seed);
  return Array.from({ length: n }, () => r.normal() * scale);
};

describe.each(['q8', 'q4'] as const)('%s', (format) => {
  const bound = format === 'q8' ? Q8_BOUND : Q4_BOUND;
  const N = 13,
    K = 96;
  const x = Float32Array.from(randn(1, N * K).map((v, i) => (i % 41 === 0 ? v * 50 : v))); // some outliers
  x.fill(0, 0, QK); // an all-zero block

  it('quantise -> dequantise stays within the named bound, block by block', () => {
    for (const kernels of ['ref', 'wasm'] as const) {
      const e = engine(kernels);
      const xt = e.persistent([N, K]).set(x);
      const q = e.persistent(format === 'q8' ? [N, K] : [N, K / 2], format === 'q8' ? 'i8' : 'u8'),
        s = e.persistent([N, K / QK]);
      const back = e.persistent([N, K]);
      if (format === 'q8') {
        e.k.quantizeQ8(q, s, xt, N, K);
        e.k.dequantizeQ8(back, q, s, N, K);
      } else {
        e.k.quantizeQ4(q, s, xt, N, K);
        e.k.dequantizeQ4(back, q, s, N, K);
      }
      const b = back.floats();
      for (let blk = 0; blk < (N * K) / QK; blk++) {
        let amax = 0;
        for (let i = 0; i < QK; i++) amax = Math.max(amax, Math.abs(x[blk * QK + i]));
        for (let i = 0; i < QK; i++) {
          const k = blk * QK + i;
          expect(Math.abs(b[k] - x[k]), `${kernels} block ${blk} element ${i}`).toBeLessThanOrEqual(bound(amax));
        }
      }
    }
  });

  it('the wasm quantiser gives exactly the reference bytes and scales', () => {
    const e = engine('wasm');
    const xt = e.persistent([N, K]).set(x);
    const q = e.persistent(format === 'q8' ? [N, K] : [N, K / 2], format === 'q8' ? 'i8' : 'u8'),
      s = e.persistent([N, K / QK]);
    const rq = format === 'q8' ? new Int8Array(N * K) : new Uint8Array((N * K) / 2),
      rs = new Float32Array((N * K) / QK);
    if (format === 'q8') {
      e.k.quantizeQ8(q, s, xt, N, K);
      ref.quantizeQ8(rq as Int8Array, rs, x, N, K);
    } else {
      e.k.quantizeQ4(q, s, xt, N, K);
      ref.quantizeQ4(rq as Uint8Array, rs, x, N, K);
    }
    expect(Array.from(q.data())).toEqual(Array.from(rq));
    expect(Array.from(s.floats())).toEqual(Array.from(rs));
  });

  it('the wasm dequantiser and quantised embedding give exactly the reference values', () => {
    const e = engine('wasm');
    const xt = e.persistent([N, K]).set(x);
    const q = e.persistent(format === 'q8' ? [N, K] : [N, K / 2], format === 'q8' ? 'i8' : 'u8'),
      s = e.persistent([N, K / QK]);
    if (format === 'q8') e.k.quantizeQ8(q, s, xt, N, K);
    else e.k.quantizeQ4(q, s, xt, N, K);
    const ids = Int32Array.from([3, 0, 12, 3, 7]),
      n = ids.length;
    const back = e.persistent([N, K]),
      rows = e.persistent([n, K]),
      idT = e.persistent([n], 'i32').set(ids);
    const wantBack = new Float32Array(N * K),
      wantRows = new Float32Array(n * K);
    if (format === 'q8') {
      e.k.dequantizeQ8(back, q, s, N, K);
      ref.dequantizeQ8(wantBack, q.data() as Int8Array, s.floats(), N, K);
      e.k.embeddingQ8(rows, q, s, idT, n, K);
      ref.embeddingQ8(wantRows, q.data() as Int8Array, s.floats(), ids, n, K);
    } else {
      e.k.dequantizeQ4(back, q, s, N, K);
      ref.dequantizeQ4(wantBack, q.data() as Uint8Array, s.floats(), N, K);
      e.k.embeddingQ4(rows, q, s, idT, n, K);
      ref.embeddingQ4(wantRows, q.data() as Uint8Array, s.floats(), ids, n, K);
    }
    expect(Array.from(back.floats())).toEqual(Array.from(wantBack));
    expect(Array.from(rows.floats())).toEqual(Array.from(wantRows));
    // and a row of the embedding is that row of the dequantised table
    expect(Array.from(rows.floats().subarray(2 * K, 3 * K))).toEqual(Array.from(wantBack.subarray(12 * K, 13 * K)));
  });

  it.each([
    [1, 200, 64],
    [3, 37, 160],
    [17, 9, 32],
  ])('fused product (M=%i, N=%i, K=%i) equals the reference twin', (M, Nw, Kw) => {
    const e = engine('wasm');
    const w = Float32Array.from(randn(2, Nw * Kw)),
      a = Float32Array.from(randn(3, M * Kw));
    const qw = e.persistent(format === 'q8' ? [Nw, Kw] : [Nw, Kw / 2], format === 'q8' ? 'i8' : 'u8'),
      sw = e.persistent([Nw, Kw / QK]);
    const qx = e.persistent([M, Kw], 'i8'),
      sx = e.persistent([M, Kw / QK]);
    const wt = e.persistent([Nw, Kw]).set(w),
      at = e.persistent([M, Kw]).set(a),
      out = e.persistent([M, Nw]);
    if (format === 'q8') e.k.quantizeQ8(qw, sw, wt, Nw, Kw);
    else e.k.quantizeQ4(qw, sw, wt, Nw, Kw);
    e.k.quantizeQ8(qx, sx, at, M, Kw);
    if (format === 'q8') e.k.matmulQ8(out, qx, sx, qw, sw, M, Nw, Kw);
    else e.k.matmulQ4(out, qx, sx, qw, sw, M, Nw, Kw);
    const want = new Float64Array(M * Nw);
    if (format === 'q8') ref.matmulQ8(want, qx.data() as Int8Array, sx.floats(), qw.data() as Int8Array, sw.floats(), M, Nw, Kw);
    else ref.matmulQ4(want, qx.data() as Int8Array, sx.floats(), qw.data() as Uint8Array, sw.floats(), M, Nw, Kw);
    expectClose(out.floats(), want, 1e-5, 'quantised product');
    // and it approximates the f32 product
    const exact = new Float64Array(M * Nw);
    ref.matmulNT(exact, a, w, M, Nw, Kw, 0);
    expect(relErr(out.floats(), exact)).toBeLessThan(format === 'q8' ? 0.02 : 0.2);
  });

  it.each([
    [2, 37, 64],
    [7, 300, 1024],
    [9, 131, 96],
    [18, 40, 256],
  ])('the blocked product (M=%i, N=%i, K=%i) gives every row bit for bit its one-row product, at 1 and 2 threads', (M, Nw, Kw) => {
    // N = 300 at K = 1024 crosses the kernel's blocks of weight rows; M mod 4 ≠ 0 takes the one-row tail;
    // at 2 threads the wide products run in chunks of columns, N = 40 (too narrow) in chunks of rows
    const quantised = (e: Engine) => {
      const qw = e.persistent(format === 'q8' ? [Nw, Kw] : [Nw, Kw / 2], format === 'q8' ? 'i8' : 'u8'),
        sw = e.persistent([Nw, Kw / QK]);
      const qx = e.persistent([M, Kw], 'i8'),
        sx = e.persistent([M, Kw / QK]);
      if (format === 'q8') e.k.quantizeQ8(qw, sw, e.persistent([Nw, Kw]).set(randn(5, Nw * Kw)), Nw, Kw);
      else e.k.quantizeQ4(qw, sw, e.persistent([Nw, Kw]).set(randn(5, Nw * Kw)), Nw, Kw);
      e.k.quantizeQ8(qx, sx, e.persistent([M, Kw]).set(randn(6, M * Kw)), M, Kw);
      return { qw, sw, qx, sx };
    };
    const product = (threads: number) => {
      const e = engine('wasm', threads),
        { qw, sw, qx, sx } = quantised(e),
        out = e.persistent([M, Nw]);
      if (format === 'q8') e.k.matmulQ8(out, qx, sx, qw, sw, M, Nw, Kw);
      else e.k.matmulQ4(out, qx, sx, qw, sw, M, Nw, Kw);
      return { e, qw, sw, qx, sx, out: Float32Array.from(out.floats()) };
    };
    const one = product(1),
      two = product(2);
    expect(Buffer.from(two.out.buffer).equals(Buffer.from(one.out.buffer)), 'threads').toBe(true);
    const { e, qw, sw, qx, sx } = one;
    for (let i = 0; i < M; i++) {
      const xi = e.persistent([1, Kw], 'i8').set(qx.data().subarray(i * Kw, (i + 1) * Kw)),
        si = e.persistent([1, Kw / QK]).set(sx.floats().subarray((i * Kw) / QK, ((i + 1) * Kw) / QK)),
        row = e.persistent([1, Nw]);
      if (format === 'q8') e.k.matmulQ8(row, xi, si, qw, sw, 1, Nw, Kw);
      else e.k.matmulQ4(row, xi, si, qw, sw, 1, Nw, Kw);
      expect(Array.from(row.floats()), `row ${i}`).toEqual(Array.from(one.out.subarray(i * Nw, (i + 1) * Nw)));
    }
    const want = new Float64Array(M * Nw);
    if (format === 'q8') ref.matmulQ8(want, qx.data() as Int8Array, sx.floats(), qw.data() as Int8Array, sw.floats(), M, Nw, Kw);
    else ref.matmulQ4(want, qx.data() as Int8Array, sx.floats(), qw.data() as Uint8Array, sw.floats(), M, Nw, Kw);
    expectClose(one.out, want, 1e-5, 'blocked quantised product vs twin');
  });

  it('a quantised model stays close to the f32 one; parallel = steps; threads agree bit for bit', () => {
    // wide enough that decoding's one-row products go to the worker threads (MIN_PARALLEL_FLOPS)
    const cfg = createMambaConfig({ dModel: 256, nLayer: 2, dState: 16, vocabSize: 96 });
    const ids = Int32Array.from({ length: 24 }, (_, i) => (i * 11) % 96);
    const run = (threads: number, quant: boolean) => {
      const e = engine('wasm', threads);
      const m = new MambaLM(e, cfg).init(Rng.fromSeed(4));
      const before = weightBytes(m);
      if (quant) quantizeModel(m, format);
      const par = e.scope(() => m.forward(ids, 1, 24).toFloat64());
      const st = m.createState(1);
      const steps: number[] = [];
      const runs0 = e.k.parallelRuns();
      for (let t = 0; t < 24; t++) steps.push(...m.step(ids.subarray(t, t + 1), st));
      if (threads > 1) expect(e.k.parallelRuns() - runs0, 'decoding used the worker threads').toBeGreaterThan(24);
      return { m, par, steps: Float32Array.from(steps), before, after: weightBytes(m) };
    };
    const f32 = run(1, false),
      q1 = run(1, true),
      q2 = run(2, true);
    expect(isQuant(q1.m.layers[0].inProj)).toBe(true);
    expect(q1.m.params.has('backbone.layers.0.mixer.A_log')).toBe(true);
    expect(q1.after).toBeLessThan(q1.before * (format === 'q8' ? 0.4 : 0.3));
    expectClose(q1.steps, q1.par, 1e-5, 'quantised steps vs parallel');
    expect(Buffer.from(q2.steps.buffer).equals(Buffer.from(q1.steps.buffer))).toBe(true);
    expect(relErr(q1.par, f32.par)).toBeLessThan(format === 'q8' ? 0.03 : 0.3);
  });
});

/** One row x quantised to q8 by the wasm kernel and by the reference: bytes and scales of each. */
function quantizeBoth(x: Float32Array) {
  const K = x.length,
    e = engine('wasm');
  const qt = e.persistent([1, K], 'i8'),
    st = e.persistent([1, K / QK]);
  e.k.quantizeQ8(qt, st, e.persistent([1, K]).set(x), 1, K);
  const rq = new Int8Array(K),
    rs = new Float32Array(K / QK);
  ref.quantizeQ8(rq, rs, x, 1, K);
  return { q: Int8Array.from(qt.data() as Int8Array), s: Float32Array.from(st.floats()), rq, rs };
}

describe('q8 activation rounding', () => {
  it('a NaN or an infinity in a block gives the reference scale and bytes', () => {
    const K = 96,
      x = Float32Array.from({ length: K }, (_, i) => Math.sin(i) * 3);
    x[5] = Number.NaN; // first block: scale NaN, every value NaN → 0
    x[40] = Number.POSITIVE_INFINITY; // second: scale inf, id 0, inf·0 = NaN → 0
    x[70] = Number.NEGATIVE_INFINITY;
    const { q, s, rq, rs } = quantizeBoth(x);
    expect(Array.from(q)).toEqual(Array.from(rq));
    expect(Array.from(s)).toEqual(Array.from(rs));
    expect(Number.isNaN(rs[0])).toBe(true);
    expect(rs[1]).toBe(Number.POSITIVE_INFINITY);
  });

  it('ties round half away from zero in the wasm quantiser as in the reference', () => {
    // a block with max |x| = 127 has scale 1: x itself is rounded; ±k.5 are exact ties
    const K = 64,
      x = new Float32Array(K);
    x[0] = 127;
    const ties = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 0.49999997, -0.49999997];
    ties.forEach((v, i) => {
      x[1 + i] = v;
    });
    x[32] = -127; // second block: the clamp at −127
    x[33] = -126.5;
    const { q, rq } = quantizeBoth(x);
    expect(Array.from(q)).toEqual(Array.from(rq));
    expect(Array.from(q.subarray(0, 11))).toEqual([127, 1, -1, 2, -2, 3, -3, 127, -127, 0, 0]);
    expect(Array.from(q.subarray(32, 34))).toEqual([-127, -127]);
  });
});
