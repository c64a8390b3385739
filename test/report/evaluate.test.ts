import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { buildModel, matchedIntermediate, recipeFor } from '../../src/tasks/recipes.js';
import { evaluateModel } from '../../src/report/evaluate.js';
import { headline } from '../../src/report/synthetic.js';
import type { TaskRow } from '../../src/report/synthetic.js';
import type { EvalRow } from '../../src/report/evaluate.js';
import { mambaParameterCount, createMambaConfig } from '../../src/models/mamba/config.js';

/** Evaluation budgets, the headline's choice of length, and the transformer's parameter match. */
const e = new Engine({ threads: 1 });

describe('evaluation budgets', () => {
  const tiny = (arch: 'mamba' | 'transformer') => {
    const r = recipeFor('induction', arch, null);
    return buildModel(e, { ...r, model: { dModel: 16, layers: 1, dState: 4 } }, Rng.fromSeed(3));
  };

  it('a length predicted to overrun the deadline is reported out of budget, never left blank', () => {
    const rows = evaluateModel(tiny('mamba'), {
      task: 'induction',
      method: null,
      lengths: [32, 64, 128],
      n: 2,
      seed: 1,
      deadline: performance.now() - 1,
    });
    expect(rows[0].accuracy).not.toBeNull();
    for (const r of rows.slice(1)) {
      expect(r.accuracy).toBeNull();
      expect(r.n).toBe(0);
      expect(r.out_of_budget).toMatch(/^time: about \d+ s needed at \d+, 0 s left/);
    }
  });

  it('a transformer whose KV cache would not fit is out of the memory budget at that length', () => {
    const rows = evaluateModel(tiny('transformer'), {
      task: 'induction',
      method: null,
      lengths: [16, 4096],
      n: 2,
      seed: 1,
      maxStateBytes: 1 << 18,
    });
    expect(rows[0].accuracy).not.toBeNull();
    expect(rows[1].accuracy).toBeNull();
    expect(rows[1].out_of_budget).toMatch(/^memory: one stream's KV cache needs 0.5 MiB, over the 0.3 MiB budget/);
  });

  it('the same seed gives the same sequences: the same accuracy, whatever other lengths are evaluated', () => {
    const m = tiny('mamba');
    const a = evaluateModel(m, { task: 'induction', method: null, lengths: [48], n: 20, seed: 5 });
    const b = evaluateModel(m, { task: 'induction', method: null, lengths: [32, 48], n: 20, seed: 5 });
    expect(b[1].accuracy).toBe(a[0].accuracy);
  });
});

describe('headline', () => {
  const row = (arch: 'mamba' | 'transformer', ev: Partial<EvalRow>[]): TaskRow => ({
    task: 'induction',
    arch,
    method: null,
    params: 1,
    model_dir: `models/induction-${arch}`,
    train: { steps: 1, tokens: 1, seconds: 1, joules: 1, energy_kind: 'estimated' },
    eval: ev.map((x) => ({
      n: 4,
      ci95: [0, 1],
      energy_kind: 'estimated',
      tok_s: 1,
      accuracy: null,
      joules_per_sequence: null,
      length: 0,
      ...x,
    })),
  });
  it('is taken at the longest length both architectures ran, with the ratio of joules per sequence', () => {
    const h = headline([
      row('mamba', [
        { length: 64, accuracy: 1, joules_per_sequence: 1 },
        { length: 128, accuracy: 1, joules_per_sequence: 2 },
        { length: 256, accuracy: 1, joules_per_sequence: 4 },
      ]),
      row('transformer', [
        { length: 64, accuracy: 0.5, joules_per_sequence: 3 },
        { length: 128, accuracy: 0.25, joules_per_sequence: 50 },
        { length: 256, out_of_budget: 'time' },
      ]),
    ]);
    expect(h).toEqual({
      length: 128,
      accuracy: { mamba: 1, transformer: 0.25 },
      joules_per_sequence: { mamba: 2, transformer: 50 },
      ratio: 25,
      energy_kind: 'estimated',
    });
  });
  it('is null without a common length', () => {
    expect(headline([row('mamba', [{ length: 64, accuracy: 1, joules_per_sequence: 1 }])])).toBeNull();
  });
});

describe('transformer of the same parameter count', () => {
  it('the SwiGLU width brings its count within one width step of the Mamba', () => {
    const shape = { dModel: 64, layers: 2, dState: 16 };
    const mamba = mambaParameterCount(createMambaConfig({ dModel: 64, nLayer: 2, dState: 16, vocabSize: 17 }));
    const F = matchedIntermediate(shape, 'induction');
    const t = buildModel(e, { ...recipeFor('induction', 'transformer', null), model: shape }, Rng.fromSeed(1));
    // each unit of SwiGLU width adds 3·d_model parameters per layer: the best width is within half of that
    expect(Math.abs(t.parameterCount - mamba)).toBeLessThanOrEqual((3 * 64 * 2) / 2);
    expect(F).toBeGreaterThan(0);
  });
});
