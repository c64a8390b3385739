import type { Rng } from '../io/rng.js';
import type { Init } from './types.js';

/** Fill `out` by an init rule; `shape` gives rows for per-row rules (A_log). */
export function initValues(out: Float32Array | Float64Array, shape: readonly number[], init: Init, rng: Rng): void {
  switch (init.kind) {
    case 'zeros':
      out.fill(0);
      return;
    case 'ones':
      out.fill(1);
      return;
    case 'constant':
      out.fill(init.value);
      return;
    case 'normal':
      for (let i = 0; i < out.length; i++) out[i] = rng.normal() * init.std;
      return;
    case 'uniform':
      for (let i = 0; i < out.length; i++) out[i] = (2 * rng.uniform() - 1) * init.bound;
      return;
    case 'alog': {
      // S4D-Real: A = -(1..N) per channel, stored as A_log = log(n + 1)
      const N = shape[shape.length - 1];
      for (let i = 0; i < out.length; i++) out[i] = Math.log((i % N) + 1);
      return;
    }
    case 'logUniform':
      for (let i = 0; i < out.length; i++) out[i] = Math.log(init.min + (init.max - init.min) * rng.uniform());
      return;
    case 'dtBias': {
      for (let i = 0; i < out.length; i++) {
        const dt = Math.max(init.floor, Math.exp(rng.uniform() * (Math.log(init.max) - Math.log(init.min)) + Math.log(init.min)));
        out[i] = dt + Math.log(-Math.expm1(-dt)); // softplus^-1(dt) = log(exp(dt) - 1), stable form
      }
      return;
    }
  }
}
