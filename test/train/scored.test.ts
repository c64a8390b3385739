import { describe, expect, it } from 'vitest';
import { scheduledLr } from '../../src/train/scored.js';
import type { ScoredRecipe } from '../../src/train/scored.js';

describe('warmup-stable-decay schedule', () => {
  const r: ScoredRecipe = { steps: 300, batch: 1, lr: 1e-2, warmup: 10, minLr: 1e-4, weightDecay: 0, clip: 1, decaySteps: 100 };
  it('warms up linearly, holds the peak, then decays by a cosine to the floor at the last step', () => {
    expect(scheduledLr(1, r)).toBeCloseTo(1e-3, 12);
    expect(scheduledLr(10, r)).toBeCloseTo(1e-2, 12);
    expect(scheduledLr(200, r)).toBeCloseTo(1e-2, 12);
    // halfway through the decay: the mean of peak and floor
    expect(scheduledLr(250, r)).toBeCloseTo((1e-2 + 1e-4) / 2, 12);
    expect(scheduledLr(300, r)).toBeCloseTo(1e-4, 12);
    for (let s = 201; s < 300; s++) expect(scheduledLr(s + 1, r)).toBeLessThan(scheduledLr(s, r));
  });
  it('without decaySteps: a cosine over everything after the warm-up', () => {
    const c = { ...r, decaySteps: undefined };
    expect(scheduledLr(155, c)).toBeCloseTo((1e-2 + 1e-4) / 2, 12);
  });
});
