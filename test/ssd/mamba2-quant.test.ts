import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { Mamba2LM } from '../../src/models/mamba2/model.js';
import { createMamba2Config } from '../../src/models/mamba2/config.js';
import { quantPlan, quantizeModel, weightBytes } from '../../src/models/quant.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { quantizeCheckpoint } from '../../src/models/quantize-checkpoint.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { isQuant } from '../../src/tensor/index.js';
import { expectClose, relErr } from '../helpers/compare.js';
import { perturb, randomIds } from '../helpers/models.js';

/** q8 / q4 Mamba-2: which weights, closeness to f32, parallel = steps, save/load and quantising from the file. */
const tmp = mkdtempSync(join(tmpdir(), 'frugal-m2-q-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cfg = createMamba2Config({ dModel: 64, nLayer: 2, dState: 16, headDim: 16, nGroups: 2, chunkSize: 16, vocabSize: 64 });

function model(seed = 5) {
  const e = new Engine({ kernels: 'wasm' });
  const m = new Mamba2LM(e, cfg).init(Rng.fromSeed(seed));
  perturb(m, Rng.fromSeed(seed + 1), 0.02);
  return m;
}

describe.each(['q8', 'q4'] as const)('Mamba-2 %s', (format) => {
  it('quantises in_proj, out_proj and the embedding only; stays close to f32; steps equal the parallel pass', () => {
    expect([...quantPlan(new Mamba2LM(new Engine({ kernels: 'ref' }), cfg).specs, format).keys()].sort()).toEqual([
      'backbone.embeddings.weight',
      'backbone.layers.0.mixer.in_proj.weight',
      'backbone.layers.0.mixer.out_proj.weight',
      'backbone.layers.1.mixer.in_proj.weight',
      'backbone.layers.1.mixer.out_proj.weight',
    ]);
    const f = model(),
      q = model(),
      ids = randomIds(9, 20, 64);
    const before = weightBytes(q);
    quantizeModel(q, format);
    expect(isQuant(q.layers[0].inProj) && isQuant(q.head)).toBe(true);
    expect(q.params.has('backbone.layers.0.mixer.A_log') && q.params.has('backbone.layers.0.mixer.norm.weight')).toBe(true);
    expect(weightBytes(q)).toBeLessThan(before * (format === 'q8' ? 0.4 : 0.35));
    const pf = f.e.scope(() => f.forward(ids, 1, 20).toFloat64()),
      pq = q.e.scope(() => q.forward(ids, 1, 20).toFloat64());
    expect(relErr(pq, pf)).toBeLessThan(format === 'q8' ? 0.05 : 0.4); // random weights: max error over the largest logit
    const st = q.createState(1),
      steps: number[] = [];
    for (let t = 0; t < 20; t++) steps.push(...q.step(ids.subarray(t, t + 1), st));
    expectClose(steps, pq, 1e-5, 'quantised steps vs parallel');
  });

  it('saves, loads and quantises from the file to the same logits', () => {
    const m = model(),
      src = join(tmp, `f32-${format}`),
      dst = join(tmp, format);
    writeDirAtomic(src, modelFiles(m));
    quantizeModel(m, format);
    writeDirAtomic(dst, modelFiles(m));
    const fromFile = quantizeCheckpoint(new Engine({ kernels: 'wasm' }), src, format).model;
    const loaded = loadModel(new Engine({ kernels: 'wasm' }), dst).model;
    const ids = randomIds(3, 12, 64);
    const a = m.e.scope(() => Float32Array.from(m.forward(ids, 1, 12).data()));
    for (const other of [fromFile, loaded]) {
      const b = other.e.scope(() => Float32Array.from(other.forward(ids, 1, 12).data()));
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    }
  });
});
