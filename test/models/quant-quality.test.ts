import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import type { MambaLM } from '../../src/models/mamba/model.js';
import { quantizeModel } from '../../src/models/quant.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { loadCorpus, splitCorpus } from '../../src/io/corpus.js';
import { evaluate } from '../../src/train/trainer.js';
import { isQuant } from '../../src/tensor/index.js';
import { TEST_WASM } from '../helpers/wasm-twins.js';

/**
 * On a committed small trained model (d_model 256, 4 layers, trained on the State of the Union
 * corpus by `frugal train`, see test/fixtures/mamba-d256-l4/README.md), scored on 64 KiB of held-out
 * text: q8's validation loss is within 0.2% of f32's and q4's within 1% (measured: about +0.004% and
 * +0.14%); a quantised checkpoint saves and loads bit for bit. On the relaxed-SIMD kernel build:
 * `FRUGAL_TEST_WASM_BUILD=relaxed-simd npx vitest run test/models/quant-quality.test.ts` (minutes:
 * not part of the relaxed-simd project; test/kernels/relaxed.test.ts scores a few windows on both).
 */
const DIR = 'test/fixtures/mamba-d256-l4';
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});
function load(): MambaLM {
  const e = new Engine({ kernels: TEST_WASM, threads: 2 });
  engines.push(e);
  return loadModel(e, DIR).model as MambaLM;
}

/** 256 windows of 256 bytes spread over the held-out text: 64 KiB scored. */
const L = 256,
  WINDOWS = 256;

describe('quantised quality on a trained model', () => {
  const { val } = splitCorpus(loadCorpus('sotu').bytes, 0.05);
  const bpb = (m: MambaLM) => evaluate(m, val, L, WINDOWS, 8);
  const f32 = bpb(load());

  it('scores at least 64 KiB of distinct held-out text', () => {
    expect(Math.floor((val.length - 1) / L), 'the held-out text has room for every window without overlap').toBeGreaterThanOrEqual(WINDOWS);
    expect(L * WINDOWS).toBeGreaterThanOrEqual(64 * 1024);
  });

  it('the f32 model has learned the corpus (below the unigram entropy)', () => {
    expect(f32).toBeLessThan(4.0);
  });

  it.each([
    ['q8', 0.002],
    ['q4', 0.01],
  ] as const)('%s validation loss within %f of f32 (relative)', (format, tol) => {
    const m = load();
    quantizeModel(m, format);
    const q = bpb(m);
    expect(Math.abs(q - f32) / f32, `${format} ${q.toFixed(4)} vs f32 ${f32.toFixed(4)} bits/byte`).toBeLessThanOrEqual(tol);
  });

  it.each(['q8', 'q4'] as const)('a %s checkpoint saves and loads with identical logits', (format) => {
    const m = load();
    quantizeModel(m, format);
    const dir = join(mkdtempSync(join(tmpdir(), 'frugal-q-')), 'm');
    try {
      writeDirAtomic(dir, modelFiles(m));
      const e2 = new Engine({ kernels: TEST_WASM, threads: 2 });
      engines.push(e2);
      const back = loadModel(e2, dir).model as MambaLM;
      expect(isQuant(back.layers[0].inProj)).toBe(true);
      const ids = Int32Array.from(new TextEncoder().encode('The Congress of the United States'));
      const a = m.e.scope(() => Float32Array.from(m.forward(ids, 1, ids.length).data()));
      const b = back.e.scope(() => Float32Array.from(back.forward(ids, 1, ids.length).data()));
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('quantising a checkpoint tensor by tensor', () => {
  it('gives the same model as loading in f32 and quantising, and the CLI writes a runnable copy', async () => {
    const { quantizeCheckpoint } = await import('../../src/models/quantize-checkpoint.js');
    const { spawnSync } = await import('node:child_process');
    const ids = Int32Array.from(new TextEncoder().encode('We the people'));
    const a = load();
    quantizeModel(a, 'q4');
    const e = new Engine({ kernels: TEST_WASM, threads: 2 });
    engines.push(e);
    const b = quantizeCheckpoint(e, DIR, 'q4').model;
    const la = a.e.scope(() => Float32Array.from(a.forward(ids, 1, ids.length).data()));
    const lb = b.e.scope(() => Float32Array.from(b.forward(ids, 1, ids.length).data()));
    expect(Buffer.from(lb.buffer).equals(Buffer.from(la.buffer))).toBe(true);
    const out = join(mkdtempSync(join(tmpdir(), 'frugal-q-')), 'q8');
    try {
      const q = spawnSync(process.execPath, ['bin/frugal.js', 'quantize', '--model', DIR, '--to', 'q8', '--out', out], {
        encoding: 'utf8',
      });
      expect(q.status, q.stderr).toBe(0);
      expect(q.stderr).toMatch(/MB \(as f32\) -> .* MB/);
      const g = spawnSync(
        process.execPath,
        ['bin/frugal.js', 'generate', '--model', out, '--prompt', 'The ', '--max-tokens', '10', '--temperature', '0'],
        { encoding: 'utf8' },
      );
      expect(g.status, g.stderr).toBe(0);
      expect(g.stdout.length).toBeGreaterThan(4);
      const bad = spawnSync(process.execPath, ['bin/frugal.js', 'quantize', '--model', out, '--to', 'q4', '--out', out + '-again'], {
        encoding: 'utf8',
      });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/already quantised/);
    } finally {
      rmSync(join(out, '..'), { recursive: true, force: true });
    }
  });
});
