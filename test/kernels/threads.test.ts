import { afterAll, describe, expect, it } from 'vitest';
import { Engine, valueAndGrad } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { quantizeModel } from '../../src/models/quant.js';
import { BatchDecoder } from '../../src/infer/batch.js';
import { TransformerLM } from '../../src/models/transformer/model.js';
import { createLlamaConfig } from '../../src/models/transformer/config.js';
import type { SequenceModel } from '../../src/models/types.js';
import * as ref from '../../src/kernels/ref/index.js';
import { CHUNKS_PER_THREAD, callKernel, poolStatsSince, splitRange, ThreadPool } from '../../src/kernels/threads.js';
import { columnChunk } from '../../src/kernels/parallel.js';
import type { Job } from '../../src/kernels/threads.js';
import { getWasmModule, instantiateWasmKernels } from '../../src/kernels/wasm/index.js';
import { expectClose } from '../helpers/compare.js';

/**
 * Every thread count gives the single-thread answer bit for bit (work is split over outputs, never
 * over a reduction), for each threaded kernel on shapes that take every split path, and for whole
 * models: a Mamba training step, f32, q8 and q4 decoding, batched decoding, and the transformer's
 * forward, backward and KV-cache decoding.
 */
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});
function engine(threads: number): Engine {
  const e = new Engine({ kernels: 'wasm', threads });
  engines.push(e);
  return e;
}
const THREADS = [1, 2, 3, 4];
const bits = (a: Float32Array | Float64Array | Int32Array) => Buffer.from(Float32Array.from(a).buffer);

function randomValues(seed: number, n: number): number[] {
  const r = Rng.fromSeed(seed);
  return Array.from({ length: n }, () => r.normal());
}

describe('splitRange', () => {
  it('covers [0, n) with contiguous ranges aligned as asked', () => {
    for (const [n, p, a] of [
      [10, 3, 1],
      [37, 4, 4],
      [3, 4, 4],
      [0, 2, 1],
    ]) {
      const r = splitRange(n, p, a);
      expect(r.length).toBe(p);
      expect(r[0][0]).toBe(0);
      expect(r[p - 1][1]).toBe(n);
      for (let i = 1; i < p; i++) {
        expect(r[i][0]).toBe(r[i - 1][1]);
        expect(r[i][0] % a === 0 || r[i][0] === n).toBe(true);
      }
    }
  });
});

describe.each([
  ['matmulNT', 'rows', 37, 45, 65],
  ['matmulNT', 'column chunks', 7, 301, 37],
  ['matmulNT', 'one row (columns)', 1, 1003, 129],
  ['matmulNT', 'few rows', 3, 518, 70],
  ['matmulNN', 'rows', 29, 41, 90],
  ['matmulNN', 'few rows', 2, 301, 130],
  ['matmulTN', 'rows', 40, 27, 61],
  ['matmulTN', 'few rows', 3, 257, 200],
] as const)('%s split by %s (%i x %i x %i)', (name, _how, M, N, K) => {
  it('is bit-identical for 1-4 threads and matches the reference', () => {
    const outs = THREADS.map((T) => {
      const e = engine(T);
      const [aShape, bShape] =
        name === 'matmulNT'
          ? [
              [M, K],
              [N, K],
            ]
          : name === 'matmulNN'
            ? [
                [M, K],
                [K, N],
              ]
            : [
                [K, M],
                [K, N],
              ];
      const a = e.persistent(aShape).set(randomValues(1, M * K)),
        b = e.persistent(bShape).set(randomValues(2, N * K));
      const out = e.persistent([M, N]).set(randomValues(3, M * N));
      const before = e.k.parallelRuns();
      e.k[name](out, a, b, M, N, K, 1);
      expect(e.k.parallelRuns() - before, 'work went to the worker threads').toBe(T > 1 ? 1 : 0);
      return { out: out.toFloat64(), a: a.toFloat64(), b: b.toFloat64() };
    });
    for (let i = 1; i < outs.length; i++) expect(bits(outs[i].out).equals(bits(outs[0].out)), `${THREADS[i]} threads`).toBe(true);
    const want = Float64Array.from(randomValues(3, M * N));
    // biome-ignore lint/performance/noDynamicNamespaceImportAccess: the test loops over the reference kernels by name
    ref[name](want, outs[0].a, outs[0].b, M, N, K, 1);
    expectClose(outs[0].out, want, 1e-5, `${name} vs reference`);
  });
});

describe.each([
  [9, 1030, 4],
  [5, 777, 3],
] as const)('the Mamba conv step of %i streams (%i channels, window %i)', (B, ED, K) => {
  it('is split over streams, bit-identical for 1-4 threads and matches the reference', () => {
    const outs = THREADS.map((T) => {
      const e = engine(T);
      const xc = e.persistent([B, ED]),
        state = e.persistent([B, ED, K]).set(randomValues(1, B * ED * K)),
        xz = e.persistent([B, 2 * ED]).set(randomValues(2, B * 2 * ED)),
        w = e.persistent([ED, K]).set(randomValues(3, ED * K)),
        bias = e.persistent([ED]).set(randomValues(4, ED));
      const before = e.k.parallelRuns();
      e.k.mambaConvStep(xc, state, xz, w, bias, B, ED, K);
      expect(e.k.parallelRuns() - before, 'work went to the worker threads').toBe(T > 1 ? 1 : 0);
      return { xc: xc.toFloat64(), state: state.toFloat64() };
    });
    for (let i = 1; i < outs.length; i++) {
      expect(bits(outs[i].xc).equals(bits(outs[0].xc)), `${THREADS[i]} threads: outputs`).toBe(true);
      expect(bits(outs[i].state).equals(bits(outs[0].state)), `${THREADS[i]} threads: windows`).toBe(true);
    }
    // the reference on the same float32 inputs, in float64
    const f32 = (seed: number, n: number) => Float64Array.from(Float32Array.from(randomValues(seed, n)));
    const xc = new Float64Array(B * ED),
      state = f32(1, B * ED * K);
    const xz = f32(2, B * 2 * ED),
      w = f32(3, ED * K),
      bias = f32(4, ED);
    ref.mambaConvStep(xc, state, xz, w, bias, B, ED, K);
    expectClose(outs[0].xc, xc, 1e-5, 'conv step vs reference');
    expectClose(outs[0].state, state, 0, 'windows vs reference'); // moved, not computed
  });
});

describe.each([
  [2, 150, 1024],
  [5, 77, 96],
  [32, 203, 768],
  [7, 77, 98],
  [4, 9, 6],
] as const)('matmulNT with %i rows (%i x %i)', (M, N, K) => {
  it('gives every row bit for bit its one-row product (batched decoding = one stream), at 1-4 threads', () => {
    // K = 1024 makes blocks of 64 rows of b, so N = 150 crosses them; M mod 3 ≠ 0 takes the in-block
    // row tail (2-row tiles: 3 + 1 rows go as 2 + 2), K mod 4 ≠ 0 the scalar k-tail
    const a = randomValues(11, M * K),
      b = randomValues(12, N * K);
    const e1 = engine(1),
      bt = e1.persistent([N, K]).set(b),
      row = e1.persistent([1, N]);
    const rows = Array.from({ length: M }, (_, i) => {
      e1.k.matmulNT(row, e1.persistent([1, K]).set(a.slice(i * K, (i + 1) * K)), bt, 1, N, K, 0);
      return Float32Array.from(row.floats());
    });
    for (const T of THREADS) {
      const e = engine(T),
        out = e.persistent([M, N]);
      e.k.matmulNT(out, e.persistent([M, K]).set(a), e.persistent([N, K]).set(b), M, N, K, 0);
      for (let i = 0; i < M; i++)
        expect(
          bits(Float64Array.from(out.floats().subarray(i * N, (i + 1) * N))).equals(bits(Float64Array.from(rows[i]))),
          `row ${i}, ${T} threads`,
        ).toBe(true);
    }
  });
});

describe('whole-model work across thread counts', () => {
  const cfg = createMambaConfig({ dModel: 48, nLayer: 2, dState: 16, vocabSize: 64 });
  it('a training step (loss and every gradient) is bit-identical for 1-4 threads', () => {
    const ids = Int32Array.from(randomValues(4, 4 * 40), (v) => Math.abs(Math.floor(v * 20)) % 64);
    const tg = Int32Array.from(randomValues(5, 4 * 40), (v) => Math.abs(Math.floor(v * 20)) % 64);
    const runs = THREADS.map((T) => {
      const e = engine(T);
      const m = new MambaLM(e, cfg).init(Rng.fromSeed(9));
      for (const p of m.params.values()) p.grad = e.persistent(p.shape);
      const loss = valueAndGrad(e, () => m.loss(ids, tg, 4, 40));
      if (T > 1) expect(e.k.parallelRuns()).toBeGreaterThan(10);
      return { loss, grads: [...m.params.values()].map((p) => bits(p.grad!.floats())) };
    });
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i].loss).toBe(runs[0].loss);
      runs[i].grads.forEach((g, j) => expect(g.equals(runs[0].grads[j]), `${THREADS[i]} threads, gradient ${j}`).toBe(true));
    }
  });

  it.each(['f32', 'q8', 'q4'] as const)('%s prefill and steps are bit-identical for 1-4 threads', (precision) => {
    // wide enough that one-row decoding products go to the workers
    const wide = createMambaConfig({ dModel: 256, nLayer: 2, dState: 16, vocabSize: 64 });
    const ids = Int32Array.from({ length: 30 }, (_, i) => (i * 7) % 64);
    const runs = THREADS.map((T) => {
      const e = engine(T);
      const m = new MambaLM(e, wide).init(Rng.fromSeed(9));
      if (precision !== 'f32') quantizeModel(m, precision);
      return decodeBits(m, ids, T);
    });
    for (let i = 1; i < runs.length; i++) expect(runs[i].equals(runs[0]), `${THREADS[i]} threads`).toBe(true);
  });

  it('batched decoding of several streams is bit-identical for 1-4 threads', () => {
    const wide = createMambaConfig({ dModel: 256, nLayer: 2, dState: 16, vocabSize: 64 });
    const runs = THREADS.map((T) => {
      const e = engine(T);
      const dec = new BatchDecoder(new MambaLM(e, wide).init(Rng.fromSeed(9)), 4);
      const out: Buffer[] = [];
      const next = new Map<number, number>();
      for (let s = 0; s < 3; s++) {
        const j = dec.join(Int32Array.from({ length: 3 + s }, (_, i) => (i * 5 + s) % 64));
        out.push(bits(j.logits));
        next.set(j.id, s + 1);
      }
      const r0 = e.k.parallelRuns();
      for (let t = 0; t < 6; t++) {
        const logits = dec.step(next);
        for (const [id, l] of [...logits].sort((a, b) => a[0] - b[0])) {
          out.push(bits(l));
          next.set(id, (id * 11 + t) % 64);
        }
      }
      if (T > 1) expect(e.k.parallelRuns() - r0, 'batched decoding used the workers').toBeGreaterThan(10);
      return Buffer.concat(out);
    });
    for (let i = 1; i < runs.length; i++) expect(runs[i].equals(runs[0]), `${THREADS[i]} threads`).toBe(true);
  });
});

/** Prefill 20 tokens, then 10 single steps: every logit's bits (and the workers must have been used). */
function decodeBits(m: SequenceModel, ids: Int32Array, T: number): Buffer {
  const s = m.createState(1);
  const out = [bits(m.prefill(ids.subarray(0, 20), 20, s))];
  const r0 = m.e.k.parallelRuns();
  for (let t = 20; t < 30; t++) out.push(bits(m.step(ids.subarray(t, t + 1), s)));
  if (T > 1) expect(m.e.k.parallelRuns() - r0, 'decoding used the workers').toBeGreaterThan(10);
  return Buffer.concat(out);
}

describe('the transformer across thread counts', () => {
  const cfg = createLlamaConfig({ dModel: 256, nLayer: 2, nHead: 4, nKvHead: 2, vocabSize: 64 });
  const make = (T: number) => new TransformerLM(engine(T), cfg).init(Rng.fromSeed(7));

  it('the forward, the loss and every gradient are bit-identical for 1-4 threads', () => {
    const ids = Int32Array.from(randomValues(6, 2 * 24), (v) => Math.abs(Math.floor(v * 20)) % 64);
    const tg = Int32Array.from(randomValues(7, 2 * 24), (v) => Math.abs(Math.floor(v * 20)) % 64);
    const runs = THREADS.map((T) => {
      const m = make(T),
        e = m.e;
      const logits = e.scope(() => bits(m.forward(ids, 2, 24).floats()));
      for (const p of m.params.values()) p.grad = e.persistent(p.shape);
      const loss = valueAndGrad(e, () => m.loss(ids, tg, 2, 24));
      if (T > 1) expect(e.k.parallelRuns()).toBeGreaterThan(10);
      return { logits, loss, grads: [...m.params.values()].map((p) => bits(p.grad!.floats())) };
    });
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i].logits.equals(runs[0].logits), `${THREADS[i]} threads, logits`).toBe(true);
      expect(runs[i].loss).toBe(runs[0].loss);
      runs[i].grads.forEach((g, j) => expect(g.equals(runs[0].grads[j]), `${THREADS[i]} threads, gradient ${j}`).toBe(true));
    }
  });

  it('KV-cache prefill and steps are bit-identical for 1-4 threads', () => {
    const ids = Int32Array.from({ length: 30 }, (_, i) => (i * 7) % 64);
    const runs = THREADS.map((T) => decodeBits(make(T), ids, T));
    for (let i = 1; i < runs.length; i++) expect(runs[i].equals(runs[0]), `${THREADS[i]} threads`).toBe(true);
  });
});

describe('columnChunk', () => {
  it('gives each thread as many equal chunks where it can, never wider than the block, in multiples of 4', () => {
    // out_proj at 2 threads: 40-column blocks left 20 chunks, the last of 8 columns; 24 of 32 end together
    expect(columnChunk(768, 2, 40)).toBe(32);
    expect(columnChunk(3072, 2, 84)).toBe(64); // in_proj: 48 chunks of 64, not 37 of 84
    expect(columnChunk(80, 2, 40)).toBe(0); // too narrow: the rows are chunked instead
    for (const N of [48, 80, 256, 768, 1000, 1536, 3072, 50280])
      for (const T of [2, 3, 4])
        for (const block of [16, 40, 84, 192, 1364]) {
          const w = columnChunk(N, T, block),
            most = Math.min(block & ~3, Math.floor(N / (CHUNKS_PER_THREAD * T)) & ~3);
          if (most < 16) {
            expect(w, `${N} ${T} ${block}`).toBe(0);
            continue;
          }
          expect(w % 4, `${N} ${T} ${block}`).toBe(0);
          expect(w).toBeGreaterThanOrEqual(Math.max(16, most / 2));
          expect(w).toBeLessThanOrEqual(most);
          const n = Math.ceil(N / w),
            last = N - (n - 1) * w;
          // a narrower width than the block only to balance; else the largest is kept
          if (w !== most) expect(n % T === 0 && 4 * last >= 3 * w, `${N} ${T} ${block}: ${w}`).toBe(true);
        }
  });
});

describe('callKernel', () => {
  it('passes exactly the first n arguments, spelled out or (past 16) spread', () => {
    const values = Float64Array.from({ length: 30 }, (_, i) => 1.5 * i - 7);
    for (let n = 0; n <= 30; n++) {
      let got: number[] = [];
      const ret = callKernel(
        (...xs: number[]) => {
          got = xs;
          return xs.length;
        },
        values,
        n,
      );
      expect(got, `${n} arguments`).toEqual(Array.from(values.subarray(0, n)));
      expect(ret).toBe(n);
    }
  });
});

describe("the pool's counters", () => {
  it('count parallel calls, the wait at their joins, and a worker that slept between calls', async () => {
    const e = engine(2),
      M = 64,
      K = 64,
      N = 64;
    const a = e.persistent([M, K]).set(randomValues(1, M * K)),
      b = e.persistent([N, K]).set(randomValues(2, N * K)),
      out = e.persistent([M, N]);
    const s0 = e.k.poolStats();
    e.k.matmulNT(out, a, b, M, N, K, 1);
    const s1 = e.k.poolStats();
    expect(poolStatsSince(s0, s1).runs).toBe(1);
    // 64 rows, about 4 chunks a thread: 8 rows a chunk, rounded up to the kernel's 3-row tiles = 9, so 8 chunks
    expect(poolStatsSince(s0, s1).chunks).toBe(8);
    expect(poolStatsSince(s0, s1).callerChunks).toBeLessThanOrEqual(8);
    expect(s1.joinMs).toBeGreaterThanOrEqual(s0.joinMs);
    // only a join the caller waited at is timed
    if (poolStatsSince(s0, s1).lateJoins === 0) expect(s1.joinMs).toBe(s0.joinMs);
    await new Promise((ok) => setTimeout(ok, 200)); // far longer than the worker spins before it sleeps
    e.k.matmulNT(out, a, b, M, N, K, 1);
    const d = poolStatsSince(s1, e.k.poolStats());
    expect(d.runs).toBe(1);
    expect(d.sleeps).toBeGreaterThanOrEqual(1);
    // the sleeping worker was woken (a notify is skipped only while every worker spins)
    expect(d.wakes).toBeGreaterThanOrEqual(1);
    // a join is counted late when the caller, with nothing of its own to run, reaches it while a
    // worker runs a 512³ product (milliseconds), and not when the worker had nothing to run
    const e1 = engine(1),
      n = 512;
    const module = getWasmModule('simd');
    const pool = new ThreadPool(e1.heap.memory, module, instantiateWasmKernels(module, e1.heap.memory), 2);
    try {
      const x = e1.persistent([n, n]).set(randomValues(5, n * n)),
        y = e1.persistent([n, n]);
      const big: Job = { name: 'matmulNT', args: [y.offset, x.offset, x.offset, n, n, n, 0] };
      pool.run([null, big]);
      expect(pool.stats().lateJoins).toBe(1);
      expect(pool.stats().runs).toBe(1);
      // counted, not timed: only the joins of chunked runs read the clock
      expect(pool.stats().joinMs).toBe(0);
      const want = bits(y.toFloat64());
      y.set(new Array(n * n).fill(0));
      e1.k.matmulNT(y, x, x, n, n, n, 0);
      expect(bits(y.toFloat64()).equals(want), "the worker's product").toBe(true);
    } finally {
      pool.dispose();
    }
    // one thread has no pool to count
    expect(engine(1).k.poolStats()).toEqual({ runs: 0, joinMs: 0, lateJoins: 0, sleeps: 0, wakes: 0, chunks: 0, callerChunks: 0 });
  });
});
