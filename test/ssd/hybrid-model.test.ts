import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { HybridLM } from '../../src/models/hybrid/model.js';
import { createHybridConfig } from '../../src/models/hybrid/config.js';
import type { HybridOptions } from '../../src/models/hybrid/config.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import type { KernelKind } from '../../src/kernels/backend.js';
import { expectClose } from '../helpers/compare.js';
import { checkModelGradients, expectStepsMatchForward, perturb, randomIds } from '../helpers/models.js';

const tmp = mkdtempSync(join(tmpdir(), 'frugal-hybrid-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const SMALL: HybridOptions = {
  dModel: 16,
  layerTypes: ['mamba2', 'attention', 'mamba'],
  vocabSize: 40,
  dState: 8,
  nHead: 2,
  nKvHead: 1,
  intermediateSize: 24,
  tieWordEmbeddings: false,
  mamba2: { headDim: 8, nGroups: 2, chunkSize: 8 },
};

function makeModel(kernels: KernelKind, o: HybridOptions = SMALL, seed = 3) {
  const e = new Engine({ kernels });
  const model = new HybridLM(e, createHybridConfig(o)).init(Rng.fromSeed(seed));
  perturb(model, Rng.fromSeed(seed + 100), 0.05);
  return { e, model };
}

it('partial rotary with every channel turned is the full rotary embedding', () => {
  const x = Float64Array.from({ length: 2 * 3 * 2 * 8 }, (_, i) => Math.sin(i));
  const a = new Float64Array(x.length),
    b = new Float64Array(x.length);
  ref.ropePartialForward(a, x, 2, 3, 2, 8, 8, 5, 100);
  ref.ropeForward(b, x, 2, 3, 2, 8, 5, 100);
  expectClose(a, b, 1e-15, 'rotary');
});

describe.each(['wasm', 'ref'] as KernelKind[])('hybrid invariants (Mamba-2, attention, Mamba-1 layers), %s kernels', (kernels) => {
  it('parallel forward equals successive steps', () => {
    const { model } = makeModel(kernels);
    expectStepsMatchForward(model, 2, 20, 1);
  });

  it('steps continue from prefills, across the KV cache growing past its first capacity', () => {
    const { e, model } = makeModel(kernels);
    const B = 1,
      L = 90,
      V = 40,
      ids = randomIds(2, L, V);
    const par = e.scope(() => model.forward(ids, B, L).toFloat64());
    const row = (t: number) => par.subarray(t * V, (t + 1) * V);
    const state = model.createState(B);
    expectClose(model.prefill(ids.subarray(0, 3), 3, state), row(2), 1e-5, 'prefill of 3');
    expectClose(model.prefill(ids.subarray(3, 70), 67, state), row(69), 1e-5, 'prefill to 70 (the cache grows)');
    for (let t = 70; t < L; t++) expectClose(model.step(ids.subarray(t, t + 1), state), row(t), 1e-5, `step ${t}`);
    expect(model.savedStateShapes(1, state.position).get('k.1.0.0')).toEqual([90, 8]);
  });
});

describe('hybrid checkpoints', () => {
  it.each([
    ['bamba', ['mamba2', 'attention', 'mamba2']],
    ['frugal-hybrid', ['mamba2', 'attention', 'mamba']],
  ] as const)('%s saves and loads with the same logits, bit for bit', (type, layerTypes) => {
    const { e, model } = makeModel('wasm', { ...SMALL, layerTypes });
    const dir = join(tmp, type);
    writeDirAtomic(dir, modelFiles(model));
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8').replace(/Infinity/g, '1e999'));
    expect(cfg.model_type).toBe(type);
    expect(cfg.attn_layer_indices).toEqual([1]);
    const back = loadModel(new Engine({ kernels: 'wasm' }), dir).model;
    const ids = randomIds(3, 15, 40);
    const a = e.scope(() => Float32Array.from(model.forward(ids, 1, 15).data()));
    const b = back.e.scope(() => Float32Array.from(back.forward(ids, 1, 15).data()));
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  });
});

describe('float64 finite-difference gradient check of a whole hybrid', () => {
  it('Mamba-2, attention and Mamba-1 layers: loss w.r.t. every parameter tensor (sampled elements)', () => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const cfg = createHybridConfig({
      dModel: 8,
      layerTypes: ['mamba2', 'attention', 'mamba'],
      vocabSize: 11,
      dState: 4,
      nHead: 2,
      nKvHead: 1,
      intermediateSize: 12,
      mamba2: { headDim: 4, nGroups: 2, chunkSize: 4 },
    });
    const rng = Rng.fromSeed(7);
    const model = new HybridLM(e, cfg).init(rng);
    perturb(model, rng, 0.2);
    checkModelGradients(model, rng, 2, 7, 3, 1e-5, 1e-3);
  });
});
