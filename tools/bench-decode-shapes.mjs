#!/usr/bin/env node
/**
 * Decode speed of two Mamba shapes, one stream, greedy, 128 tokens after an 8-token prompt, for
 * one or more builds of frugal timed alternately (A, B, A, B, …) in one process so that every
 * build meets the same load from other processes. Each argument is a package root holding dist/
 * and build/ (the current checkout by default); random weights (decode cost does not depend on them).
 * The default shapes are those of `frugal report refine`: the small (d_model 128, 2 layers) and the
 * 4× larger (d_model 256, 3 layers) Mamba over a 1,024-token vocabulary.
 *
 *   npm run build && node tools/bench-decode-shapes.mjs [ROOT_A ROOT_B ...] [--rounds 7] [--threads 1]
 *
 * Prints one line per round to stderr and, to stdout, the best per-token time of each build and
 * shape, and the small ÷ large ratio.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '7' },
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '128' },
  },
});
const roots = positionals.length > 0 ? positionals : ['.'];
const rounds = Number(o.rounds),
  threads = Number(o.threads),
  tokens = Number(o.tokens);
const SHAPES = [
  { name: 'small', dModel: 128, layers: 2 },
  { name: 'large', dModel: 256, layers: 3 },
];

/** One build's models, loaded from its own dist/ (separate module instances, separate heaps). */
async function load(root) {
  const u = (p) => pathToFileURL(resolve(root, p)).href;
  const { Engine } = await import(u('dist/ops/index.js'));
  const { createModel } = await import(u('dist/models/factory.js'));
  const { Rng } = await import(u('dist/io/rng.js'));
  const { generate } = await import(u('dist/infer/generate.js'));
  return SHAPES.map((s) => {
    const e = new Engine({ kernels: 'wasm', threads });
    const m = createModel('mamba', e, { dModel: s.dModel, layers: s.layers, dState: 16, vocabSize: 1024 }, Rng.fromSeed(1));
    const prompt = Int32Array.from({ length: 8 }, (_, i) => (i * 37 + 5) % 1024);
    /** seconds per decoded token of one greedy generation */
    const run = () => {
      const r = generate(m, prompt, tokens, { temperature: 0, topK: 0, topP: 1 }, Rng.fromSeed(2));
      return { perToken: r.decodeSeconds / (tokens - 1), ids: r.ids };
    };
    return { shape: s, run, e };
  });
}

const builds = [];
for (const r of roots) builds.push({ root: r, models: await load(r) });
const best = builds.map(() => SHAPES.map(() => Infinity));
for (const b of builds) for (const m of b.models) for (let i = 0; i < 3; i++) m.run(); // warm-up
const same = SHAPES.map((_, s) => builds.every((b) => b.models[s].run().ids.join() === builds[0].models[s].run().ids.join()));
for (let k = 0; k < rounds; k++) {
  const line = [];
  builds.forEach((b, i) => {
    b.models.forEach((m, s) => {
      const t = m.run().perToken;
      best[i][s] = Math.min(best[i][s], t);
      line.push(`${b.root}:${m.shape.name} ${(t * 1e6).toFixed(1)} us`);
    });
  });
  process.stderr.write(`round ${k + 1}: ${line.join(', ')}\n`);
}
for (const b of builds) for (const m of b.models) m.e.dispose();
const out = builds.map((b, i) => ({
  root: b.root,
  small_us_per_token: +(best[i][0] * 1e6).toFixed(2),
  large_us_per_token: +(best[i][1] * 1e6).toFixed(2),
  ratio: +(best[i][0] / best[i][1]).toFixed(3),
}));
process.stdout.write(`${JSON.stringify({ threads, tokens, rounds, same_ids_across_builds: same, builds: out }, null, 1)}\n`);
