import { describe, expect, it } from 'vitest';
import * as ref from '../../src/kernels/ref/index.js';
import { ssdWorkSize } from '../../src/kernels/ssd-work.js';
import { Rng } from '../../src/io/rng.js';

/**
 * The chunked SSD (ssdChunkForward) against the token-by-token recurrence (ssdRecurrent), both in
 * float64: outputs and final state, for chunk lengths that divide L or not, L shorter than a
 * chunk, one token, one to H groups, and a non-zero initial state.
 */
interface Case {
  B: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
}

function inputs(c: Case, seed: number, decayScale = 1) {
  const r = Rng.fromSeed(seed),
    { B, L, H, P, G, N } = c;
  const v = (n: number, f: () => number) => Float64Array.from({ length: n }, f);
  return {
    x: v(B * L * H * P, () => r.normal()),
    delta: v(B * L * H, () => Math.log1p(Math.exp(r.normal() - 1)) * decayScale), // softplus: positive
    A: v(H, () => -Math.exp(r.normal() * 0.5)),
    Bm: v(B * L * G * N, () => r.normal()),
    Cm: v(B * L * G * N, () => r.normal()),
    D: v(H, () => r.normal()),
    h0: v(B * H * P * N, () => r.normal()),
  };
}

function recurrent(c: Case, i: ReturnType<typeof inputs>, zeroState: boolean) {
  const y = new Float64Array(i.x.length),
    h = zeroState ? new Float64Array(i.h0.length) : Float64Array.from(i.h0);
  ref.ssdRecurrent(y, h, i.x, i.delta, i.A, i.Bm, i.Cm, i.D, c.B, c.L, c.H, c.P, c.G, c.N);
  return { y, h };
}

function chunked(c: Case, i: ReturnType<typeof inputs>, Q: number, zeroState: boolean) {
  const y = new Float64Array(i.x.length),
    h = zeroState ? new Float64Array(i.h0.length) : Float64Array.from(i.h0);
  const hck = new Float64Array(c.B * Math.ceil(c.L / Q) * c.H * c.P * c.N);
  ref.ssdChunkForward(
    y,
    h,
    hck,
    i.x,
    i.delta,
    i.A,
    i.Bm,
    i.Cm,
    i.D,
    new Float64Array(ssdWorkSize(c.B, c.H, c.P, c.N, Q)),
    c.B,
    c.L,
    c.H,
    c.P,
    c.G,
    c.N,
    Q,
  );
  return { y, h, hck };
}

function maxRel(a: Float64Array, b: Float64Array): number {
  let d = 0,
    m = 0;
  for (let k = 0; k < a.length; k++) {
    d = Math.max(d, Math.abs(a[k] - b[k]));
    m = Math.max(m, Math.abs(b[k]));
  }
  return d / Math.max(m, 1e-300);
}

const BASE: Case = { B: 2, L: 37, H: 4, P: 3, G: 1, N: 5 };
const CASES: [string, Case, number][] = [
  ['L mod Q != 0', BASE, 16],
  ['L < Q', { ...BASE, L: 11 }, 16],
  ['L = 1', { ...BASE, L: 1 }, 16],
  ['Q = 1', BASE, 1],
  ['Q = 3', BASE, 3],
  ['Q = 256 (one partial chunk)', BASE, 256],
  ['L a multiple of Q', { ...BASE, L: 48 }, 16],
  ['G = 2', { ...BASE, G: 2 }, 16],
  ['G = H', { ...BASE, G: 4 }, 3],
  ['one head, P = 1, N = 1', { B: 1, L: 9, H: 1, P: 1, G: 1, N: 1 }, 4],
];

describe('chunked SSD against the float64 recurrence', () => {
  it.each(CASES)('%s: outputs and final state, zero and non-zero initial state', (_, c, Q) => {
    const i = inputs(c, 11);
    for (const zero of [true, false]) {
      const seq = recurrent(c, i, zero),
        ch = chunked(c, i, Q, zero);
      expect(maxRel(ch.y, seq.y), `y (zero state ${zero})`).toBeLessThan(1e-12);
      expect(maxRel(ch.h, seq.h), `final state (zero state ${zero})`).toBeLessThan(1e-12);
    }
  });

  it('chunk length does not change the result', () => {
    const c = { ...BASE, L: 50, G: 2 },
      i = inputs(c, 12);
    const base = chunked(c, i, 1, false);
    for (const Q of [2, 3, 7, 16, 50, 64, 256]) {
      const r = chunked(c, i, Q, false);
      expect(maxRel(r.y, base.y), `Q = ${Q}`).toBeLessThan(1e-12);
      expect(maxRel(r.h, base.h), `Q = ${Q} state`).toBeLessThan(1e-12);
    }
  });

  it('a sequence split in two, the state passed between the halves, gives the same outputs and state', () => {
    const c = { ...BASE, L: 40 },
      i = inputs(c, 13),
      L1 = 17,
      Q = 8;
    const whole = chunked(c, i, Q, false);
    const part = (t0: number, t1: number, arr: Float64Array, w: number) => {
      const out = new Float64Array(c.B * (t1 - t0) * w);
      for (let b = 0; b < c.B; b++) out.set(arr.subarray((b * c.L + t0) * w, (b * c.L + t1) * w), b * (t1 - t0) * w);
      return out;
    };
    const half = (t0: number, t1: number, h: Float64Array) => {
      const cc = { ...c, L: t1 - t0 };
      const ii = {
        ...i,
        x: part(t0, t1, i.x, c.H * c.P),
        delta: part(t0, t1, i.delta, c.H),
        Bm: part(t0, t1, i.Bm, c.G * c.N),
        Cm: part(t0, t1, i.Cm, c.G * c.N),
        h0: h,
      };
      return chunked(cc, ii, Q, false);
    };
    const first = half(0, L1, i.h0),
      second = half(L1, c.L, first.h);
    expect(maxRel(first.y, part(0, L1, whole.y, c.H * c.P))).toBeLessThan(1e-12);
    expect(maxRel(second.y, part(L1, c.L, whole.y, c.H * c.P))).toBeLessThan(1e-12);
    expect(maxRel(second.h, whole.h)).toBeLessThan(1e-12);
  });

  it('stays finite and exact when decays underflow (Δ·A down to −2000: masked entries are exactly 0)', () => {
    const c = { ...BASE, L: 30 },
      i = inputs(c, 14, 300);
    const seq = recurrent(c, i, false),
      ch = chunked(c, i, 16, false);
    for (const v of ch.y) expect(Number.isFinite(v)).toBe(true);
    expect(maxRel(ch.y, seq.y)).toBeLessThan(1e-12);
    expect(maxRel(ch.h, seq.h)).toBeLessThan(1e-12);
  });

  it('saves the state entering each chunk', () => {
    const c = { ...BASE, L: 20 },
      i = inputs(c, 15),
      Q = 8;
    const ch = chunked(c, i, Q, false);
    const PN = c.P * c.N;
    // the state entering chunk k is the recurrence run over the first k·Q tokens of each stream
    for (let k = 0; k < 3; k++) {
      const t = k * Q;
      const part = (arr: Float64Array, w: number) => {
        const o = new Float64Array(c.B * t * w);
        for (let b = 0; b < c.B; b++) o.set(arr.subarray(b * c.L * w, (b * c.L + t) * w), b * t * w);
        return o;
      };
      const h = Float64Array.from(i.h0);
      ref.ssdRecurrent(
        new Float64Array(c.B * t * c.H * c.P),
        h,
        part(i.x, c.H * c.P),
        part(i.delta, c.H),
        i.A,
        part(i.Bm, c.G * c.N),
        part(i.Cm, c.G * c.N),
        i.D,
        c.B,
        t,
        c.H,
        c.P,
        c.G,
        c.N,
      );
      for (let b = 0; b < c.B; b++) {
        const got = ch.hck.subarray((b * 3 + k) * c.H * PN, (b * 3 + k + 1) * c.H * PN);
        expect(maxRel(Float64Array.from(got), h.subarray(b * c.H * PN, (b + 1) * c.H * PN))).toBeLessThan(1e-12);
      }
    }
  });
});
