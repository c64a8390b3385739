#!/usr/bin/env node
/**
 * Prefill, decode and training speed of a small Mamba-3 MIMO model (random weights) with the reference
 * (TypeScript) and the WebAssembly kernels, alternated round by round in one process so that both
 * see the same machine load; one thread.
 *
 *     npm run build && node tools/bench-mamba3-mimo.mjs [--rounds 5] [--prefill 256] [--tokens 64] [--rank 4]
 *
 * Each round: a --prefill-token prefill, then --tokens decode steps, on a fresh state, then the loss
 * and gradients of one --prefill-token sequence (a training step without the optimiser); the median
 * of the rounds after one untimed warm-up round per kernel set. Writes a JSON line to stdout.
 */
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (k, d) => {
  const i = process.argv.indexOf(k);
  return Number(i >= 0 ? process.argv[i + 1] : d);
};
const rounds = arg('--rounds', 5),
  prefillLen = arg('--prefill', 256),
  tokens = arg('--tokens', 64),
  rank = arg('--rank', 4);
const { Engine, valueAndGrad } = await import(join(ROOT, 'dist/ops/index.js'));
const { Rng } = await import(join(ROOT, 'dist/io/rng.js'));
const { Mamba3LM } = await import(join(ROOT, 'dist/models/mamba3/model.js'));
const { createMamba3Config } = await import(join(ROOT, 'dist/models/mamba3/config.js'));

const shape = { dModel: 128, nLayer: 2, dState: 32, headDim: 16, vocabSize: 256, isMimo: true, mimoRank: rank };
const models = Object.fromEntries(
  ['ref', 'wasm'].map((kernels) => {
    const e = new Engine({ kernels }),
      m = new Mamba3LM(e, createMamba3Config(shape)).init(Rng.fromSeed(1));
    for (const p of m.params.values()) p.grad = e.persistent(p.shape);
    return [kernels, m];
  }),
);
const ids = Int32Array.from({ length: prefillLen + tokens }, (_, i) => (i * 7 + 3) % shape.vocabSize);

/** Seconds of one prefill, of `tokens` steps after it, and of one sequence's loss and gradients. */
function round(model) {
  const state = model.createState(1);
  const t0 = performance.now();
  model.prefill(ids.subarray(0, prefillLen), prefillLen, state);
  const t1 = performance.now();
  for (let t = prefillLen; t < prefillLen + tokens; t++) model.step(ids.subarray(t, t + 1), state);
  const t2 = performance.now();
  valueAndGrad(model.e, () => model.loss(ids.subarray(0, prefillLen), ids.subarray(1, prefillLen + 1), 1, prefillLen));
  return { prefill: (t1 - t0) / 1e3, decode: (t2 - t1) / 1e3, train: (performance.now() - t2) / 1e3 };
}

const times = { ref: [], wasm: [] };
for (const k of ['ref', 'wasm']) round(models[k]);
for (let r = 0; r < rounds; r++) for (const k of ['ref', 'wasm']) times[k].push(round(models[k]));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const out = { shape, rounds, prefill_tokens: prefillLen, decode_tokens: tokens };
for (const k of ['ref', 'wasm']) {
  out[k] = {
    prefill_tok_s: prefillLen / median(times[k].map((t) => t.prefill)),
    decode_tok_s: tokens / median(times[k].map((t) => t.decode)),
    train_tok_s: prefillLen / median(times[k].map((t) => t.train)),
  };
  const o = out[k];
  process.stderr.write(
    `${k}: prefill ${o.prefill_tok_s.toFixed(0)} tok/s, decode ${o.decode_tok_s.toFixed(1)} tok/s, training ${o.train_tok_s.toFixed(0)} tok/s\n`,
  );
}
process.stdout.write(JSON.stringify(out) + '\n');
