import { describe, expect, it } from 'vitest';
import { joulesPerCorrect, ratio, wilson, Z95 } from '../../src/report/stats.js';

describe('Wilson score interval', () => {
  it.each([
    // hand-computed: 0/10 upper = z²/(n + z²); 5/10 = 0.5 ± z·sqrt(1/40 + z²/400)/(1 + z²/10)
    [0, 10, 0, 0.277535],
    [10, 10, 0.722465, 1],
    [5, 10, 0.236593, 0.763407],
    [1, 1, 0.206549, 1],
  ])('%i of %i: [%f, %f]', (k, n, lo, hi) => {
    const [a, b] = wilson(k, n);
    expect(a).toBeCloseTo(lo, 5);
    expect(b).toBeCloseTo(hi, 5);
  });

  it('its endpoints are where the score test reaches z: |k/n − p| = z·sqrt(p(1 − p)/n)', () => {
    for (const [k, n] of [
      [3, 17],
      [40, 256],
      [255, 256],
      [1, 1000],
    ]) {
      for (const p of wilson(k, n)) {
        if (p === 0 || p === 1) continue;
        expect(Math.abs(k / n - p) / Math.sqrt((p * (1 - p)) / n)).toBeCloseTo(Z95, 9);
      }
    }
  });

  it('contains the observed rate and narrows as n grows', () => {
    const [a, b] = wilson(16, 64),
      [c, d] = wilson(256, 1024);
    expect(a).toBeLessThan(0.25);
    expect(b).toBeGreaterThan(0.25);
    expect(d - c).toBeLessThan(b - a);
  });

  it('refuses impossible counts', () => {
    expect(() => wilson(3, 2)).toThrow(RangeError);
    expect(() => wilson(0, 0)).toThrow(RangeError);
    expect(() => wilson(-1, 5)).toThrow(RangeError);
    expect(() => wilson(1.5, 5)).toThrow(RangeError);
  });
});

describe('energy ratios', () => {
  it('divides, and gives null when a side is missing or not positive', () => {
    expect(ratio(3, 0.5)).toBe(6);
    expect(ratio(null, 2)).toBeNull();
    expect(ratio(2, null)).toBeNull();
    expect(ratio(2, 0)).toBeNull();
    expect(ratio(2, -1)).toBeNull();
    expect(ratio(Number.NaN, 1)).toBeNull();
  });

  it('joules per correct answer divide by the accuracy, null at zero accuracy', () => {
    expect(joulesPerCorrect(0.5, 0.25)).toBe(2);
    expect(joulesPerCorrect(0.5, 0)).toBeNull();
    expect(joulesPerCorrect(null, 0.5)).toBeNull();
  });
});
