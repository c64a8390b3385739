/**
 * The opt-in relaxed-SIMD build (build/kernels-relaxed.wasm: the same kernels with the products'
 * multiply-adds fused and the q8 and q4 products on the relaxed integer dot) as `--kernels wasm-relaxed`
 * runs it: loaded by the engine (Node 20 validates relaxed SIMD only behind a V8 flag, which
 * relaxedWasmBytes sets), against the reference twins, and on worker threads. Nothing here is
 * skipped where the build cannot run: the first test fails instead. The twin test files run against
 * this build too (vitest.config.ts's relaxed-simd project).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { quantizeModel } from '../../src/models/quant.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { loadCorpus, splitCorpus } from '../../src/io/corpus.js';
import { evaluate } from '../../src/train/trainer.js';
import { RELAXED_WASM_URL, WASM_URL, getWasmModule, relaxedWasmBytes } from '../../src/kernels/wasm/index.js';
import { expectClose } from '../helpers/compare.js';

const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});
function engine(kernels: 'wasm' | 'wasm-relaxed', threads = 1): Engine {
  const e = new Engine({ kernels, threads });
  engines.push(e);
  return e;
}
const randn = (seed: number, n: number) => {
  const r = Rng.fromSeed(seed);
  return Float32Array.from({ length: n }, () => r.normal());
};
const bits = (a: Float32Array) => Buffer.from(Float32Array.from(a).buffer);

describe('the relaxed-SIMD kernels build', () => {
  it('validates in this Node once relaxedWasmBytes has set what it needs', () => {
    expect(WebAssembly.validate(relaxedWasmBytes())).toBe(true);
    expect(getWasmModule('relaxed-simd')).toBe(getWasmModule('relaxed-simd'));
    expect(getWasmModule('relaxed-simd')).not.toBe(getWasmModule('simd'));
  });

  it('exports what the default build does, and is a different module', () => {
    const names = (m: WebAssembly.Module) => WebAssembly.Module.exports(m).map((e) => e.name);
    expect(names(getWasmModule('relaxed-simd'))).toEqual(names(getWasmModule('simd')));
    expect(readFileSync(RELAXED_WASM_URL).equals(readFileSync(WASM_URL))).toBe(false);
  });

  it('is the engine backend of kernels wasm-relaxed, which names it', () => {
    const e = engine('wasm-relaxed');
    expect(e.k.kind).toBe('wasm-relaxed');
    expect(e.k.wasmKernels).toContain('matmulQ8');
    expect(() => new Engine({ kernels: 'wasm-relaxed', dtype: 'f64' })).toThrow(/--kernels ref/);
  });

  it.each([
    [1, 300, 256],
    [9, 67, 96],
  ])(
    "f32, q8 and q4 products (M=%i, N=%i, K=%i) equal their twins, 3 threads give 1 thread bit for bit, and the quantised ones give the default build's bits",
    (M, N, K) => {
      const run = (threads: number, kernels: 'wasm' | 'wasm-relaxed' = 'wasm-relaxed') => {
        const e = engine(kernels, threads);
        const a = e.persistent([M, K]).set(randn(1, M * K)),
          w = e.persistent([N, K]).set(randn(2, N * K));
        const f32 = e.persistent([M, N]),
          q8 = e.persistent([M, N]),
          q4 = e.persistent([M, N]);
        e.k.matmulNT(f32, a, w, M, N, K, 0);
        const qw = e.persistent([N, K], 'i8'),
          sw = e.persistent([N, K / 32]),
          qx = e.persistent([M, K], 'i8'),
          sx = e.persistent([M, K / 32]);
        e.k.quantizeQ8(qw, sw, w, N, K);
        e.k.quantizeQ8(qx, sx, a, M, K);
        e.k.matmulQ8(q8, qx, sx, qw, sw, M, N, K);
        const qw4 = e.persistent([N, K / 2], 'u8'),
          sw4 = e.persistent([N, K / 32]);
        e.k.quantizeQ4(qw4, sw4, w, N, K);
        e.k.matmulQ4(q4, qx, sx, qw4, sw4, M, N, K);
        return {
          f32: Float32Array.from(f32.floats()),
          q8: Float32Array.from(q8.floats()),
          q4: Float32Array.from(q4.floats()),
          qx,
          sx,
          qw,
          sw,
          qw4,
          sw4,
        };
      };
      const one = run(1),
        three = run(3);
      expect(bits(three.f32).equals(bits(one.f32)), 'f32 threads').toBe(true);
      expect(bits(three.q8).equals(bits(one.q8)), 'q8 threads').toBe(true);
      expect(bits(three.q4).equals(bits(one.q4)), 'q4 threads').toBe(true);
      // each block's exact integer total, then the same f32 steps: the relaxed dots change nothing
      const plain = run(1, 'wasm');
      expect(bits(one.q8).equals(bits(plain.q8)), 'q8 vs the default build').toBe(true);
      expect(bits(one.q4).equals(bits(plain.q4)), 'q4 vs the default build').toBe(true);
      const want = new Float64Array(M * N);
      ref.matmulNT(want, randn(1, M * K), randn(2, N * K), M, N, K, 0);
      expectClose(one.f32, want, 1e-5, 'f32 product vs twin');
      const wantQ = new Float64Array(M * N);
      ref.matmulQ8(wantQ, one.qx.data() as Int8Array, one.sx.floats(), one.qw.data() as Int8Array, one.sw.floats(), M, N, K);
      expectClose(one.q8, wantQ, 1e-5, 'q8 product vs twin');
      const wantQ4 = new Float64Array(M * N);
      ref.matmulQ4(wantQ4, one.qx.data() as Int8Array, one.sx.floats(), one.qw4.data() as Uint8Array, one.sw4.floats(), M, N, K);
      expectClose(one.q4, wantQ4, 1e-5, 'q4 product vs twin');
    },
  );

  it.each(['q8', 'q4'] as const)(
    'decodes a %s Mamba as the default build does within float rounding, the same bits at 1 and 2 threads',
    (format) => {
      // wide enough that decoding's products go to the worker threads
      const cfg = createMambaConfig({ dModel: 256, nLayer: 2, dState: 16, vocabSize: 96 });
      const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 11) % 96);
      const decode = (kernels: 'wasm' | 'wasm-relaxed', threads: number) => {
        const e = engine(kernels, threads);
        const m = new MambaLM(e, cfg).init(Rng.fromSeed(4));
        quantizeModel(m, format);
        const st = m.createState(1),
          out: number[] = [];
        const runs0 = e.k.parallelRuns();
        for (let t = 0; t < ids.length; t++) out.push(...m.step(ids.subarray(t, t + 1), st));
        if (threads > 1) expect(e.k.parallelRuns() - runs0, 'decoding used the worker threads').toBeGreaterThan(ids.length);
        return Float32Array.from(out);
      };
      const relaxed1 = decode('wasm-relaxed', 1);
      expect(bits(decode('wasm-relaxed', 2)).equals(bits(relaxed1))).toBe(true);
      expectClose(relaxed1, decode('wasm', 1), 1e-4, 'relaxed vs default build');
    },
  );

  it('scores held-out text with a q8 trained model as the default build does', () => {
    // a short form of test/models/quant-quality.test.ts (whose full run takes minutes): 4 windows
    const { val } = splitCorpus(loadCorpus('sotu').bytes, 0.05);
    const score = (kernels: 'wasm' | 'wasm-relaxed') => {
      const m = loadModel(engine(kernels, 2), 'test/fixtures/mamba-d256-l4').model as MambaLM;
      quantizeModel(m, 'q8');
      return evaluate(m, val, 256, 4, 4);
    };
    const plain = score('wasm'),
      relaxed = score('wasm-relaxed');
    expect(plain).toBeLessThan(4); // the model has learned the corpus
    expect(Math.abs(relaxed - plain) / plain, `relaxed ${relaxed} vs default ${plain} bits/byte`).toBeLessThan(1e-4);
  });
});

describe('--kernels wasm-relaxed on the command line', () => {
  const frugal = (args: string[], nodeArgs: string[] = []) =>
    spawnSync(process.execPath, [...nodeArgs, 'bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });

  it('lists the build among the kinds --kernels takes', () => {
    const r = frugal(['logits', '--model', 'test/fixtures/none', '--ids', '1', '--kernels', 'simd']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected 'wasm', 'wasm-relaxed' or 'ref', got 'simd'/);
  });

  it('exits 2 naming --kernels wasm where this Node cannot run relaxed SIMD', () => {
    // a Node without the engine flag: setFlagsFromString does nothing, so validation fails
    const preload = join(mkdtempSync(join(tmpdir(), 'frugal-relaxed-')), 'no-flag.cjs');
    writeFileSync(
      preload,
      "const v8 = require('node:v8'); v8.setFlagsFromString = () => {}; require('node:module').syncBuiltinESMExports();\n",
    );
    const r = frugal(['bench', '--tiny', '--kernels', 'wasm,wasm-relaxed'], ['--require', preload]);
    rmSync(dirname(preload), { recursive: true, force: true });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/wasm-relaxed.*this Node \(v[\d.]+\) cannot run relaxed SIMD .*use --kernels wasm/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.status).toBe(2);
  });
});
