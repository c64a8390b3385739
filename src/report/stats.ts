/**
 * The statistics of the synthetic study: Wilson score intervals for accuracies and the energy
 * ratios the report quotes.
 */

/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

/**
 * Wilson score interval for `successes` out of `trials` (Wilson 1927): the center and half-width
 *   (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n),
 * which, unlike p ± z·sqrt(p(1−p)/n), stays inside [0, 1] and is not empty at p = 0 or 1.
 */
export function wilson(successes: number, trials: number, z = Z95): [number, number] {
  if (!Number.isInteger(successes) || !Number.isInteger(trials) || trials <= 0 || successes < 0 || successes > trials) {
    throw new RangeError(`wilson: need 0 <= successes <= trials and trials > 0, got ${successes}/${trials}`);
  }
  const n = trials,
    p = successes / n,
    z2 = z * z;
  const center = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

/** How many times `a` exceeds `b` (null when either is missing or b is not positive). */
export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

/** Joules per correct answer: joules per sequence ÷ accuracy (null at zero accuracy). */
export function joulesPerCorrect(joulesPerSequence: number | null, accuracy: number | null): number | null {
  if (joulesPerSequence === null || accuracy === null || accuracy <= 0) return null;
  return joulesPerSequence / accuracy;
}
