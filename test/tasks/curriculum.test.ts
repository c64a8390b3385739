import { describe, expect, it } from 'vitest';
import { lengthAt, recipeFor } from '../../src/tasks/recipes.js';
import type { TaskRecipe } from '../../src/tasks/recipes.js';

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
