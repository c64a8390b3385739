import { describe, expect, it } from 'vitest';
import { lengthAt, recipeFor } from '../../src/tasks/recipes.js';
import type { TaskRecipe } from '../../src/tasks/recipes.js';
import { plannedSteps, scaledRecipe, scheduledLr } from '../../src/train/scored.js';

/** The length curriculum: which training length each step gets, and where recipes use one. */
describe('length curriculum', () => {
  const train = (curriculum: TaskRecipe['train']['curriculum']): TaskRecipe['train'] => ({
    ...recipeFor('selective-copy', 'mamba', null).train,
    seqLen: 1024,
    curriculum,
  });

  it('gives each phase its steps in order, then the recipe length to the end', () => {
    const t = train([
      { seqLen: 64, steps: 3 },
      { seqLen: 256, steps: 2 },
    ]);
    expect(Array.from({ length: 8 }, (_, s) => lengthAt(t, s))).toEqual([64, 64, 64, 256, 256, 1024, 1024, 1024]);
  });

  it('without a curriculum (or an old recipe without the field) every step is at seqLen', () => {
    expect(lengthAt(train(null), 0)).toBe(1024);
    const old = { ...train(null) };
    delete old.curriculum;
    expect(lengthAt(old, 5)).toBe(1024);
  });

  it('selective copying curriculum ends at the full length with steps left for it; quick runs have none', () => {
    const full = recipeFor('selective-copy', 'mamba', null).train;
    const phases = full.curriculum ?? [];
    expect(phases.length).toBeGreaterThan(0);
    expect(phases.every((p) => p.seqLen < full.seqLen)).toBe(true);
    const before = phases.reduce((a, p) => a + p.steps, 0);
    expect(before).toBeLessThan(full.steps);
    expect(lengthAt(full, full.steps - 1)).toBe(full.seqLen);
    expect(full.seqLen).toBeGreaterThanOrEqual(1024);
    expect(recipeFor('selective-copy', 'mamba', null, { quick: true }).train.curriculum).toBeNull();
    // the transformer gets the same steps and lengths
    expect(recipeFor('selective-copy', 'transformer', null).train.curriculum).toEqual(full.curriculum);
  });
});

describe('a time budget sizes the schedule', () => {
  it('plannedSteps: the steps that fit at the recent step time, never more than the recipe, always one more', () => {
    expect(plannedSteps(1000, 100, 50, 10_000)).toBe(300); // 200 more steps of 50 ms fit in 10 s
    expect(plannedSteps(1000, 100, 5, 10_000)).toBe(1000); // 2000 would fit: the recipe caps it
    expect(plannedSteps(1000, 100, 50, 0)).toBe(101);
    expect(plannedSteps(1000, 100, 0, 10)).toBe(1000); // no step time yet: the recipe
  });

  it('scaledRecipe shrinks the decay phase with the steps, keeps warm-up, and leaves a run that fits alone', () => {
    const r = { steps: 1000, batch: 8, lr: 1e-2, warmup: 100, minLr: 1e-4, weightDecay: 0, clip: 1, decaySteps: 400 };
    expect(scaledRecipe(r, 1000)).toBe(r);
    const s = scaledRecipe(r, 500);
    expect(s.steps).toBe(500);
    expect(s.decaySteps).toBe(200);
    expect(s.warmup).toBe(100);
    // the scaled run ends at the minimum learning rate, the unscaled one would still be at its peak there
    expect(scheduledLr(500, s)).toBeCloseTo(1e-4, 12);
    expect(scheduledLr(500, r)).toBeCloseTo(1e-2, 12);
  });

  it('lengthAt shrinks the curriculum phases with the planned steps', () => {
    const t = { ...recipeFor('selective-copy', 'mamba', null).train, steps: 100, seqLen: 1024, curriculum: [{ seqLen: 64, steps: 60 }] };
    expect(lengthAt(t, 59)).toBe(64);
    expect(lengthAt(t, 59, 50)).toBe(1024); // half the steps: the first phase ends at 30
    expect(lengthAt(t, 29, 50)).toBe(64);
  });
});
