/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32) whose whole state is four
 * 32-bit words.
 *
 * Why not Math.random: runs must be reproducible from `--seed`, and a resumed run must continue
 * the exact same stream, so the state has to be saved in checkpoints and restored. xoshiro128**
 * is fast with 32-bit integer math (Math.imul), passes BigCrush, and has period 2^128 - 1.
 */
import { inputError } from './errors.js';

const TWO_POW_32 = 4294967296;

/** splitmix32 step: turns consecutive seeds into well-mixed, decorrelated 32-bit words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let t = state.s ^ (state.s >>> 16);
  t = Math.imul(t, 0x21f0aaad);
  t ^= t >>> 15;
  t = Math.imul(t, 0x735a2d97);
  t ^= t >>> 15;
  return t >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(state: readonly number[]) {
    this.s0 = state[0]! >>> 0;
    this.s1 = state[1]! >>> 0;
    this.s2 = state[2]! >>> 0;
    this.s3 = state[3]! >>> 0;
  }

  /**
   * A generator from an integer seed. Seeds are safe integers; the high part beyond 32 bits is
   * folded in, so 1 and 2^32 + 1 give different streams.
   */
  static fromSeed(seed: number): Rng {
    if (!Number.isSafeInteger(seed)) {
      throw inputError(`Seed ${String(seed)} is not an integer. Pass a whole number, e.g. --seed 42.`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    const sm = { s: lo };
    if (hi !== 0) sm.s = (lo ^ splitmix32({ s: hi })) | 0;
    const st = [splitmix32(sm), splitmix32(sm), splitmix32(sm), splitmix32(sm)];
    // splitmix32 is a bijection of its counter, so four zeros are practically impossible; guard
    // anyway because an all-zero state would emit zeros forever.
    if (!st.some((w) => w !== 0)) st[0] = 1;
    return new Rng(st);
  }

  /** A generator continuing exactly from a state returned by `getState()`. */
  static fromState(state: readonly number[]): Rng {
    const r = new Rng([1, 0, 0, 0]);
    r.setState(state);
    return r;
  }

  /** Next uint32 in [0, 2^32). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 2^-53 resolution (two 32-bit draws). */
  uniform(): number {
    const a = this.next() >>> 5; // 27 bits
    const b = this.next() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * Standard normal via Box–Muller. One value per call (the paired sine value is dropped) so
   * the generator state stays exactly the four words that `getState` returns.
   */
  normal(): number {
    const u1 = 1 - this.uniform(); // (0, 1]: log never sees 0
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Unbiased integer in [0, n) for a positive safe integer n. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw inputError(`Rng.int needs a positive whole number, got ${String(n)}.`);
    }
    if (n <= TWO_POW_32) {
      // Rejection sampling: drop the top partial block so every residue is equally likely.
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.next();
        if (x < limit) return x % n;
      }
    }
    return Math.floor(this.uniform() * n); // bias < n / 2^53, negligible
  }

  /** The full state: four uint32 words. Save it to resume the same stream. */
  getState(): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** Restore a state from `getState()` (e.g. read from a checkpoint); validated. */
  setState(s: readonly number[]): void {
    if (!Array.isArray(s) || s.length !== 4 || !s.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)) {
      throw inputError(
        `Random-generator state ${JSON.stringify(s)} is invalid: expected four integers in ` +
          `[0, 2^32). The checkpoint may be damaged; resume from another one or start fresh.`,
      );
    }
    if (s.every((w) => w === 0)) {
      throw inputError(
        'Random-generator state is all zeros, which xoshiro128** cannot use. ' +
          'The checkpoint may be damaged; resume from another one or start fresh.',
      );
    }
    this.s0 = s[0]!;
    this.s1 = s[1]!;
    this.s2 = s[2]!;
    this.s3 = s[3]!;
  }
}
