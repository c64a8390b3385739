import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/io/rng.js';
import { FrugalError } from '../../src/io/errors.js';

/** Independent BigInt reference of xoshiro128** to check the Math.imul implementation. */
function referenceXoshiro(state: number[], n: number): number[] {
  const M = 0xffffffffn;
  let [a, b, c, d] = state.map((x) => BigInt(x));
  const rotl = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(Number((rotl((b! * 5n) & M, 7n) * 9n) & M));
    const t = (b! << 9n) & M;
    c = c! ^ a!;
    d = d! ^ b!;
    b = b! ^ c;
    a = a! ^ d;
    c = c ^ t;
    d = rotl(d, 11n);
  }
  return out;
}

describe('Rng', () => {
  it('matches xoshiro128** on the state [1,2,3,4]', () => {
    const r = Rng.fromState([1, 2, 3, 4]);
    const got = Array.from({ length: 50 }, () => r.next());
    expect(got.slice(0, 2)).toEqual([11520, 0]); // worked by hand: rotl(2*5, 7) * 9 = 11520
    expect(got).toEqual(referenceXoshiro([1, 2, 3, 4], 50));
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = Rng.fromSeed(42),
      b = Rng.fromSeed(42),
      c = Rng.fromSeed(43);
    const sa = Array.from({ length: 100 }, () => a.next());
    const sb = Array.from({ length: 100 }, () => b.next());
    const sc = Array.from({ length: 100 }, () => c.next());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(sa.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
    // Seeds beyond 32 bits are folded in, not truncated away.
    expect(Rng.fromSeed(1 + 2 ** 32).next()).not.toBe(Rng.fromSeed(1).next());
  });

  it('restores a saved state and reproduces the continuation', () => {
    const r = Rng.fromSeed(7);
    for (let i = 0; i < 13; i++) r.normal();
    const saved = r.getState();
    const expected = [r.next(), r.uniform(), r.normal(), r.int(1000)];
    const r2 = Rng.fromSeed(999);
    r2.setState(saved);
    expect([r2.next(), r2.uniform(), r2.normal(), r2.int(1000)]).toEqual(expected);
    const r3 = Rng.fromState(JSON.parse(JSON.stringify(saved)) as number[]);
    expect([r3.next(), r3.uniform(), r3.normal(), r3.int(1000)]).toEqual(expected);
    // getState returns a copy.
    saved[0] = 0;
    expect(r.getState()[0]).not.toBe(0);
  });

  it('rejects bad states and seeds with input errors', () => {
    const r = Rng.fromSeed(1);
    for (const s of [
      [1, 2, 3],
      [0, 0, 0, 0],
      [1, 2, 3, 2 ** 32],
      [1, 2, 3, -1],
      [1.5, 2, 3, 4],
    ]) {
      let err: unknown;
      try {
        r.setState(s);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FrugalError);
      expect((err as FrugalError).exitCode).toBe(2);
    }
    expect(() => Rng.fromSeed(1.5)).toThrow(/not an integer/);
    expect(() => r.int(0)).toThrow(FrugalError);
  });

  it('uniform has the moments of U[0,1)', () => {
    const r = Rng.fromSeed(123);
    const n = 200_000;
    let s = 0,
      s2 = 0,
      min = 1,
      max = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      s += u;
      s2 += u * u;
      min = Math.min(min, u);
      max = Math.max(max, u);
    }
    const mean = s / n,
      variance = s2 / n - mean * mean;
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.002);
  });

  it('uniform resolves finer than 2^-32', () => {
    const r = Rng.fromSeed(5);
    let fine = 0;
    for (let i = 0; i < 1000; i++) if (!Number.isInteger(r.uniform() * 2 ** 32)) fine++;
    expect(fine).toBeGreaterThan(900);
  });

  it('normal has mean 0 and variance 1', () => {
    const r = Rng.fromSeed(9);
    const n = 200_000;
    let s = 0,
      s2 = 0,
      finite = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      if (Number.isFinite(z)) finite++;
      s += z;
      s2 += z * z;
    }
    expect(finite).toBe(n);
    const mean = s / n,
      variance = s2 / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
  });

  it('int(n) stays in range and is roughly uniform', () => {
    const r = Rng.fromSeed(11);
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[r.int(7)]!++;
    expect(counts).toHaveLength(7);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(70_000); // no index fell outside 0..6
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(r.int(1)).toBe(0);
    const big = r.int(2 ** 40);
    expect(Number.isInteger(big) && big >= 0 && big < 2 ** 40).toBe(true);
    const full = r.int(2 ** 32);
    expect(full >= 0 && full < 2 ** 32).toBe(true);
  });
});
