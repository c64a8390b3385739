import type { F } from './types.js';

/**
 * Twin of assembly/bench.ts `readBandwidth` (the streaming read behind `frugal bench`'s bandwidth
 * figure): out[0] = Σ x (n). The wasm kernel reads x as `streams` parts side by side and adds in
 * f32 lanes, so the two sums agree to rounding, not bit for bit; nothing but the benchmark uses it.
 */
export function readBandwidth(out: F, x: F, n: number, _streams: number): void {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i];
  out[0] = s;
}
