import { expect } from 'vitest';

/** max |a - b| / max(|b|) — the relative error used across frugal's tests. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let maxDiff = 0,
    maxRef = 0;
  for (let i = 0; i < b.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** Assert a ≈ b within tol × max|b|, naming what is compared on failure. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) throw new Error(`${what}: non-finite value at ${i}`);
  const r = relErr(a, b);
  expect(r, `${what}: relative error ${r.toExponential(2)} > ${tol}`).toBeLessThanOrEqual(tol);
}
