import { afterAll, describe, expect, it } from 'vitest';
import { Engine, Tape } from '../../src/ops/index.js';
import * as op from '../../src/ops/ops.js';
import { Rng } from '../../src/io/rng.js';
import { expectClose } from '../helpers/compare.js';

/**
 * The taped linear layer on the wasm kernels takes other products than the reference (NN over a
 * transposed weight from 16 rows; the weight gradient through a transposed dy when dy's rows are a
 * multiple of 1024 floats; operands whose rows lie a multiple of 256 bytes apart copied with padded
 * rows first): its output and every gradient against the float64 reference engine,
 * on those shapes and on the small ones that keep the plain products, at 1 and 2 threads.
 */
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});

function values(seed: number, n: number): number[] {
  const r = Rng.fromSeed(seed);
  return Array.from({ length: n }, () => r.normal());
}

/** y = x Wᵀ + b and the gradients of Σ y ⊙ g, on engine e. */
function run(e: Engine, M: number, N: number, K: number) {
  const x = e.persistent([M, K]).set(values(1, M * K)),
    w = e.persistent([N, K]).set(values(2, N * K)),
    b = e.persistent([N]).set(values(3, N)),
    g = values(4, M * N);
  for (const t of [x, w, b]) {
    t.requiresGrad = true;
    t.grad = e.persistent(t.shape);
  }
  const tape = new Tape();
  e.tape = tape;
  return e.scope(() => {
    const y = op.linear(e, x, w, b, null);
    e.tape = null;
    tape.backwardFrom(e, y, g);
    return { y: y.toFloat64(), dx: x.grad!.toFloat64(), dw: w.grad!.toFloat64(), db: b.grad!.toFloat64() };
  });
}

describe.each([
  [37, 1024, 20], // NN forward, weight gradient through the transposed dy
  [16, 2048, 9],
  [40, 48, 33], // NN forward, plain TN weight gradient
  [7, 1024, 12], // under 16 rows: the plain NT and TN products
  [150, 128, 64], // rows 256 bytes apart: dx over the weight copied padded, dW over x copied padded
  [150, 192, 128], // dW through the strided TN product with dy and x both padded
  [40, 1024, 64], // dW through the transposed dy and x padded
])('linear with %i rows, %i outputs, %i inputs', (M, N, K) => {
  it('matches the float64 reference at 1 and 2 threads, the same bits on both', () => {
    const want = run(new Engine({ kernels: 'ref', dtype: 'f64' }), M, N, K);
    const got = [1, 2].map((threads) => {
      const e = new Engine({ kernels: 'wasm', threads });
      engines.push(e);
      return run(e, M, N, K);
    });
    for (const k of ['y', 'dx', 'dw', 'db'] as const) {
      expectClose(got[0][k], want[k], 1e-5, `${k} vs reference`);
      expect(
        Buffer.from(Float32Array.from(got[1][k]).buffer).equals(Buffer.from(Float32Array.from(got[0][k]).buffer)),
        `${k}, 2 threads`,
      ).toBe(true);
    }
  });
});
