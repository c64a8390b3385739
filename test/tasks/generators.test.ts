import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/io/rng.js';
import { INDUCTION_TRIGGER, inductionBatch, inductionSequence } from '../../src/tasks/induction.js';
import { COPY_MARKER, COPY_NOISE, selectiveCopyBatch, selectiveCopySequence } from '../../src/tasks/selective-copy.js';

/** Property tests of the induction and selective-copying generators: layout, determinism, no answer leakage. */

describe('induction heads generator', () => {
  it.each([3, 4, 17, 256, 1000])('layout at L = %i: content, one trigger at p < L − 2, the answer after it, a trigger at the end', (L) => {
    const rng = Rng.fromSeed(L);
    for (let i = 0; i < 100; i++) {
      const s = inductionSequence(rng, L);
      expect(s.ids.length).toBe(L);
      const triggers = [...s.ids.keys()].filter((t) => s.ids[t] === INDUCTION_TRIGGER);
      expect(triggers).toEqual([s.trigger, L - 1]);
      expect(s.trigger).toBeLessThan(L - 2);
      expect(s.ids[s.trigger + 1]).toBe(s.answer);
      let outside = 0;
      for (let t = 0; t < L - 1; t++) if (t !== s.trigger && !(s.ids[t] >= 0 && s.ids[t] < 16)) outside++;
      expect(outside).toBe(0);
    }
  });

  it('the batch scores the last position of each sequence against its answer', () => {
    const b = inductionBatch(Rng.fromSeed(3), 5, 40);
    expect(b.rows).toEqual(Int32Array.from([39, 79, 119, 159, 199]));
    for (let i = 0; i < 5; i++) {
      const seq = b.ids.subarray(i * 40, (i + 1) * 40),
        p = seq.indexOf(INDUCTION_TRIGGER);
      expect(seq[39]).toBe(INDUCTION_TRIGGER);
      expect(b.targets[i]).toBe(seq[p + 1]);
    }
  });

  it('is determined by the seed', () => {
    expect(inductionBatch(Rng.fromSeed(9), 4, 64)).toEqual(inductionBatch(Rng.fromSeed(9), 4, 64));
    expect(inductionBatch(Rng.fromSeed(9), 4, 64).ids).not.toEqual(inductionBatch(Rng.fromSeed(10), 4, 64).ids);
  });

  it('leaks nothing: answers and trigger positions are uniform, and shortcuts score at chance', () => {
    const rng = Rng.fromSeed(5),
      L = 32,
      N = 16000;
    const answers = new Array(16).fill(0),
      positions = new Array(L - 2).fill(0);
    let beforeLast = 0,
      mostFrequent = 0;
    for (let i = 0; i < N; i++) {
      const s = inductionSequence(rng, L);
      answers[s.answer]++;
      positions[s.trigger]++;
      if (s.ids[L - 2] === s.answer) beforeLast++;
      const counts = new Array(17).fill(0);
      for (let t = 0; t < L - 1; t++) counts[s.ids[t]]++;
      counts[INDUCTION_TRIGGER] = -1;
      if (counts.indexOf(Math.max(...counts)) === s.answer) mostFrequent++;
    }
    for (const c of answers) expect(Math.abs(c - N / 16)).toBeLessThan(5 * Math.sqrt(N / 16));
    for (const c of positions) expect(Math.abs(c - N / (L - 2))).toBeLessThan(5 * Math.sqrt(N / (L - 2)));
    // the token before the last equals the answer when p = L − 3 (1/30) or by chance (1/16): about 9.4%
    expect(beforeLast / N).toBeLessThan(0.12);
    // the answer is one extra occurrence among 31 tokens: the most frequent token finds it only a little above chance
    expect(mostFrequent / N).toBeLessThan(0.2);
  });

  it('refuses lengths the layout cannot hold', () => {
    expect(() => inductionSequence(Rng.fromSeed(1), 2)).toThrow(/at least 3/);
  });
});

describe('selective copying generator', () => {
  it.each([32, 33, 100, 1024])('layout at L = %i: 16 data tokens among noise, then 16 markers', (L) => {
    const rng = Rng.fromSeed(L);
    for (let i = 0; i < 100; i++) {
      const s = selectiveCopySequence(rng, L);
      expect(s.ids.length).toBe(L);
      expect([...s.ids.subarray(L - 16)]).toEqual(new Array(16).fill(COPY_MARKER));
      const data = [...s.ids.subarray(0, L - 16)].filter((t) => t !== COPY_NOISE);
      expect(data).toEqual([...s.data]);
      for (const d of data) {
        expect(d).toBeGreaterThanOrEqual(1);
        expect(d).toBeLessThanOrEqual(16);
      }
      for (let k = 1; k < 16; k++) expect(s.positions[k]).toBeGreaterThan(s.positions[k - 1]);
    }
  });

  it('the batch scores the 16 marker positions against the data tokens in order', () => {
    const L = 48,
      b = selectiveCopyBatch(Rng.fromSeed(2), 3, L);
    expect(b.rows.length).toBe(48);
    for (let i = 0; i < 3; i++) {
      const seq = b.ids.subarray(i * L, (i + 1) * L);
      const data = [...seq.subarray(0, L - 16)].filter((t) => t !== COPY_NOISE);
      for (let k = 0; k < 16; k++) {
        expect(b.rows[i * 16 + k]).toBe(i * L + L - 16 + k);
        expect(b.ids[b.rows[i * 16 + k]]).toBe(COPY_MARKER);
        expect(b.targets[i * 16 + k]).toBe(data[k]);
      }
    }
  });

  it('is determined by the seed', () => {
    expect(selectiveCopyBatch(Rng.fromSeed(4), 2, 64)).toEqual(selectiveCopyBatch(Rng.fromSeed(4), 2, 64));
    expect(selectiveCopyBatch(Rng.fromSeed(4), 2, 64).ids).not.toEqual(selectiveCopyBatch(Rng.fromSeed(5), 2, 64).ids);
  });

  it('leaks nothing: data tokens uniform, positions spread over the whole body', () => {
    const rng = Rng.fromSeed(6),
      L = 216,
      N = 2000;
    const counts = new Array(17).fill(0),
      slots = new Array(L - 16).fill(0);
    for (let i = 0; i < N; i++) {
      const s = selectiveCopySequence(rng, L);
      for (const d of s.data) counts[d]++;
      for (const p of s.positions) slots[p]++;
    }
    const per = (N * 16) / 16;
    for (let d = 1; d <= 16; d++) expect(Math.abs(counts[d] - per)).toBeLessThan(5 * Math.sqrt(per));
    const perSlot = (N * 16) / (L - 16);
    for (const c of slots) expect(Math.abs(c - perSlot)).toBeLessThan(6 * Math.sqrt(perSlot));
  });
});
