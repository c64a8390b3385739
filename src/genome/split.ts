import type { Rng } from '../io/rng.js';

/**
 * Train and test never share a base: each genome's first 80% trains, its last 20% tests (the HLA
 * region's cut moves down to the start of a gene it would split, so genes are held out whole).
 * Windows are drawn inside one range only, and the split is checked rather than assumed.
 */
export interface Range {
  from: number;
  /** Exclusive. */
  to: number;
}

export const TEST_FRACTION = 0.2;

/** Train [0, cut) and test [cut, n) of a sequence of n bases. */
export function splitRanges(n: number, cut = Math.floor(n * (1 - TEST_FRACTION))): { train: Range; test: Range } {
  if (!(cut > 0 && cut < n)) throw new RangeError(`split of ${n} bases at ${cut}: both parts must hold bases`);
  return { train: { from: 0, to: cut }, test: { from: cut, to: n } };
}

/** Throws when any train range overlaps any test range (ranges of the same sequence). */
export function checkDisjoint(train: readonly Range[], test: readonly Range[]): void {
  for (const a of train)
    for (const b of test)
      if (a.from < b.to && b.from < a.to) throw new Error(`train bases [${a.from}, ${a.to}) overlap test bases [${b.from}, ${b.to})`);
}

/** The start of a window of L bases drawn uniformly inside `r`; null when the range is shorter than L. */
export function windowStart(rng: Rng, r: Range, L: number): number | null {
  const room = r.to - r.from - L;
  return room < 0 ? null : r.from + rng.int(room + 1);
}
