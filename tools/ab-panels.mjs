#!/usr/bin/env node
/**
 * f32 weights in panels of four rows (what inference holds, src/models/panels.ts) against the row
 * layout (`new Engine({ panels: false })`), on `frugal bench`'s mamba-130m-shaped model (or a
 * checkpoint, `--model DIR`) with the same weights on two engines, alternated round by round in one process so both meet the same
 * load: a 128-token prefill, one step of 32 streams and one decoding step of a single stream
 * (wall time, median over rounds), and the speed-ups. Both compute the same bits (checked on the
 * prefill's logits).
 *
 *   npm run build
 *   node tools/ab-panels.mjs [--threads 2] [--rounds 7] [--model models/mamba-sotu]
 *
 * Lines to stderr, a JSON summary to stdout.
 */
import { parseArgs } from 'node:util';
import { buildModel, makeWeights } from '../dist/bench/speed/models.js';
import { speedPlan } from '../dist/bench/speed/types.js';
import { median } from '../dist/bench/formulas.js';
import { Engine } from '../dist/ops/index.js';
import { loadModel } from '../dist/models/checkpoint.js';

const { values: o } = parseArgs({
  options: { threads: { type: 'string', default: '2' }, rounds: { type: 'string', default: '7' }, model: { type: 'string' } },
});
const T = Number(o.threads),
  R = Number(o.rounds);
if (!(T >= 1 && R >= 1)) {
  process.stderr.write('usage: node tools/ab-panels.mjs [--threads T] [--rounds R] (whole numbers ≥ 1)\n');
  process.exit(2);
}
let models;
if (o.model) models = [false, true].map((panels) => loadModel(new Engine({ kernels: 'wasm', threads: T, panels }), o.model).model);
else {
  const w = makeWeights('mamba', speedPlan('full', T).decodeModel, 1);
  models = [buildModel(w, T, 'wasm', false), buildModel(w, T, 'wasm', true)];
}
const V = models[0].config.vocabSize;
const prompt = Int32Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % V),
  batch = Int32Array.from({ length: 32 }, (_, i) => (i * 31 + 7) % V);
const first = models.map((m) => Buffer.from(m.prefill(prompt, 128, m.createState(1)).buffer));
const sameBits = first[0].equals(first[1]);
const streams = models.map((m) => m.createState(32)),
  single = models.map((m) => {
    const s = m.createState(1);
    m.prefill(prompt.subarray(0, 8), 8, s);
    return s;
  });
const ms = { prefill: [[], []], streams32: [[], []], decode: [[], []] };
const time = (fn, n) => {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - t0) / n;
};
for (let r = 0; r < R; r++)
  for (const i of [0, 1]) {
    const m = models[i];
    ms.prefill[i].push(time(() => m.prefill(prompt, 128, m.createState(1)), 1));
    ms.streams32[i].push(time(() => m.step(batch, streams[i]), 3));
    ms.decode[i].push(time(() => m.step(batch.subarray(0, 1), single[i]), 200));
    process.stderr.write(`round ${r + 1}/${R}\r`);
  }
const out = { model: o.model ?? 'mamba-130m shape', threads: T, rounds: R, same_bits: sameBits };
for (const [k, [rows, panels]] of Object.entries(ms)) {
  const a = median(rows),
    b = median(panels);
  out[k] = { rows_ms: +a.toFixed(4), panels_ms: +b.toFixed(4), speedup: +(a / b).toFixed(3) };
  process.stderr.write(`${k}: rows ${a.toFixed(3)} ms, panels ${b.toFixed(3)} ms, ${(a / b).toFixed(3)}×\n`);
}
for (const m of models) m.e.dispose();
console.log(JSON.stringify(out, null, 2));
