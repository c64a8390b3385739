import { describe, expect, it } from 'vitest';
import { checkTokenIds, TokenIdError } from '../../src/io/tokenids.js';
import { FrugalError } from '../../src/io/errors.js';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { createModel } from '../../src/models/factory.js';

/** One token-id check, one typed error (exit code 2), on every path that takes ids. */
describe('token ids', () => {
  it('accepts ids in [0, V) and refuses the rest with a typed input error naming the input', () => {
    expect(() => checkTokenIds([0, 1, 9], 10)).not.toThrow();
    for (const [bad, at] of [
      [[3, 10], 1],
      [[-1], 0],
      [[2, 2, 1.5], 2],
    ] as const) {
      let err: unknown;
      try {
        checkTokenIds(bad, 10, '--ids');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TokenIdError);
      expect(err).toBeInstanceOf(FrugalError);
      const t = err as TokenIdError;
      expect(t.exitCode).toBe(2);
      expect(t.position).toBe(at);
      expect(t.message).toMatch(new RegExp(`^--ids: token id ${bad[at]} at position ${at} is outside the model's vocabulary \\[0, 10\\)`));
    }
  });

  it.each(['mamba', 'transformer'])('%s: forward, prefill, step and the loss refuse an id past the vocabulary', (arch) => {
    const e = new Engine({ kernels: 'ref' });
    const m = createModel(arch, e, { dModel: 16, layers: 1, dState: 4, vocabSize: 20 }, Rng.fromSeed(1));
    const bad = Int32Array.from([1, 20]);
    expect(() => e.scope(() => m.forward(bad, 1, 2))).toThrow(TokenIdError);
    expect(() => e.scope(() => m.loss(Int32Array.from([1, 2]), bad, 1, 2))).toThrow(/targets: token id 20 at position 1/);
    expect(() => m.prefill(bad, 2, m.createState(1))).toThrow(/prefill: token id 20 at position 1/);
    expect(() => m.step(Int32Array.of(-3), m.createState(1))).toThrow(/step: token id -3 at position 0/);
  });
});
