#!/usr/bin/env node
/**
 * Where a trained induction-heads model goes wrong at a long length: its answers binned by the
 * distance from the answer token to the end of the sequence. If errors came from the state
 * forgetting the answer, they would gather at the long distances; if they come from the long
 * prefix before the answer (the state drifting over tens of thousands of ordinary tokens), they
 * appear at every distance.
 *
 *   node tools/induction-errors.mjs docs/synthetic/models/induction-mamba --length 65536 --n 128
 *
 * Prints JSON to stdout: [{"from","to","correct","n"}] per quarter of the distances, shortest first.
 */
import { parseArgs } from 'node:util';
import { Engine } from '../dist/ops/index.js';
import { loadModel } from '../dist/models/checkpoint.js';
import { INDUCTION_CONTENT, inductionSequence } from '../dist/tasks/induction.js';
import { prefillChunked } from '../dist/report/evaluate.js';
import { argmaxRow } from '../dist/train/scored.js';
import { Rng } from '../dist/io/rng.js';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    length: { type: 'string', default: '65536' },
    n: { type: 'string', default: '128' },
    seed: { type: 'string', default: '77' },
    threads: { type: 'string', default: '1' },
    bins: { type: 'string', default: '4' },
  },
});
const dir = positionals[0];
const L = Number(o.length),
  n = Number(o.n),
  bins = Number(o.bins);
if (!dir || !(L >= 64) || !(n >= bins)) {
  process.stderr.write('usage: node tools/induction-errors.mjs MODEL_DIR [--length 65536 --n 128 --bins 4 --seed 77]\n');
  process.exit(2);
}
const e = new Engine({ threads: Number(o.threads) });
const { model } = loadModel(e, dir);
const rng = Rng.fromSeed(Number(o.seed)),
  V = model.config.vocabSize,
  B = 16,
  rows = [];
for (let s = 0; s < n; s += B) {
  const b0 = Math.min(B, n - s),
    seqs = Array.from({ length: b0 }, () => inductionSequence(rng, L)),
    ids = new Int32Array(b0 * L);
  seqs.forEach((q, b) => ids.set(q.ids, b * L));
  const state = model.createState(b0);
  try {
    const logits = prefillChunked(model, ids, b0, L, state);
    seqs.forEach((q, b) => rows.push({ distance: L - 1 - q.trigger, ok: argmaxRow(logits, b, V, INDUCTION_CONTENT) === q.answer }));
  } finally {
    for (const t of state.tensors.values()) t.dispose();
  }
  process.stderr.write(`\r${s + b0}/${n}`);
}
process.stderr.write('\n');
e.dispose();
rows.sort((a, b) => a.distance - b.distance);
const out = [];
for (let i = 0; i < bins; i++) {
  const r = rows.slice(Math.round((i * rows.length) / bins), Math.round(((i + 1) * rows.length) / bins));
  out.push({ from: r[0].distance, to: r[r.length - 1].distance, correct: r.filter((x) => x.ok).length, n: r.length });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
