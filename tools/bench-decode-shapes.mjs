#!/usr/bin/env node
/**
 * Decode speed, one stream, for one or more builds of frugal timed alternately (A, B, A, B, …) in
 * one process, so that every build meets the same load from other processes. Each argument is a
 * package root holding dist/ and build/ (the current checkout by default); random weights (decode
 * cost does not depend on them).
 * - `--shape refine` (default): greedy decoding of 128 tokens after an 8-token prompt on the shapes
 *   of `frugal report refine`, the small (d_model 128, 2 layers), its 4.35× larger (d_model 160,
 *   8 layers) and a wide, shallow model of about the same size (d_model 256, 3 layers) over a
 *   1,024-token vocabulary; also prints the small ÷ other ratio of each.
 * - `--shape mamba-130m`: `frugal bench`'s decode model (mamba-130m's shapes, f32), 128 steps.
 * Each figure is the best round; the CPU time of the process (user + system, all threads) per
 * token is given too, which other processes disturb less than wall time.
 *
 *   npm run build && node tools/bench-decode-shapes.mjs [ROOT_A ROOT_B ...] [--shape refine|mamba-130m]
 *     [--rounds 7] [--threads 1]
 *
 * Prints one line per round to stderr and the summary as JSON to stdout.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    shape: { type: 'string', default: 'refine' },
    rounds: { type: 'string', default: '7' },
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '128' },
  },
});
if (!['refine', 'mamba-130m'].includes(o.shape)) {
  process.stderr.write(`bench-decode-shapes: unknown --shape ${o.shape}; use refine or mamba-130m\n`);
  process.exit(2);
}
const roots = positionals.length > 0 ? positionals : ['.'];
const rounds = Number(o.rounds),
  threads = Number(o.threads),
  tokens = Number(o.tokens);
const SHAPES =
  o.shape === 'refine'
    ? [
        { name: 'small', dModel: 128, nLayer: 2, dState: 16, vocabSize: 1024 },
        { name: 'large', dModel: 160, nLayer: 8, dState: 16, vocabSize: 1024 },
        { name: 'wide', dModel: 256, nLayer: 3, dState: 16, vocabSize: 1024 },
      ]
    : [{ name: 'mamba-130m', dModel: 768, nLayer: 24, dState: 16, vocabSize: 50280 }];
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** One build's models, from its own dist/ (separate module instances, separate heaps). */
async function load(root) {
  const u = (p) => pathToFileURL(resolve(root, p)).href;
  const { Engine } = await import(u('dist/ops/index.js'));
  const { MambaLM } = await import(u('dist/models/mamba/model.js'));
  const { createMambaConfig } = await import(u('dist/models/mamba/config.js'));
  const { Rng } = await import(u('dist/io/rng.js'));
  return SHAPES.map((s) => {
    const e = new Engine({ kernels: 'wasm', threads });
    const { name: _name, ...size } = s;
    const m = new MambaLM(e, createMambaConfig(size)).init(Rng.fromSeed(1));
    /** seconds (wall and CPU) per token of `tokens` greedy steps after an 8-token prompt, and the ids */
    const run = () => {
      const st = m.createState(1);
      let logits = m.prefill(
        Int32Array.from({ length: 8 }, (_, i) => (i * 37 + 5) % s.vocabSize),
        8,
        st,
      );
      const ids = new Int32Array(tokens),
        one = new Int32Array(1);
      const t0 = performance.now(),
        c0 = cpu();
      for (let t = 0; t < tokens; t++) {
        let best = 0;
        for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
        ids[t] = one[0] = best;
        logits = m.step(one, st);
      }
      const wall = (performance.now() - t0) / 1000 / tokens,
        cpuT = (cpu() - c0) / tokens;
      for (const t of st.tensors.values()) t.dispose();
      return { wall, cpu: cpuT, ids: ids.join() };
    };
    return { shape: s, run, e };
  });
}

const builds = [];
for (const r of roots) builds.push({ root: r, models: await load(r) });
const best = builds.map(() => SHAPES.map(() => ({ wall: Infinity, cpu: Infinity })));
const idsOf = builds.map(() => SHAPES.map(() => ''));
for (const b of builds) for (const m of b.models) m.run(); // warm-up
for (let k = 0; k < rounds; k++) {
  const line = [];
  builds.forEach((b, i) => {
    b.models.forEach((m, s) => {
      const r = m.run();
      best[i][s].wall = Math.min(best[i][s].wall, r.wall);
      best[i][s].cpu = Math.min(best[i][s].cpu, r.cpu);
      idsOf[i][s] = r.ids;
      line.push(`${b.root} ${m.shape.name} ${(r.wall * 1e6).toFixed(1)} us (cpu ${(r.cpu * 1e6).toFixed(1)})`);
    });
  });
  process.stderr.write(`round ${k + 1}: ${line.join(', ')}\n`);
}
for (const b of builds) for (const m of b.models) m.e.dispose();
const us = (x) => +(x * 1e6).toFixed(1);
const out = builds.map((b, i) => {
  const r = { root: b.root };
  SHAPES.forEach((s, j) => {
    r[`${s.name}_us_per_token`] = us(best[i][j].wall);
    r[`${s.name}_cpu_us_per_token`] = us(best[i][j].cpu);
  });
  SHAPES.slice(1).forEach((s, j) => {
    r[`ratio_small_${s.name}`] = +(best[i][0].wall / best[i][j + 1].wall).toFixed(3);
    r[`cpu_ratio_small_${s.name}`] = +(best[i][0].cpu / best[i][j + 1].cpu).toFixed(3);
  });
  return r;
});
const same = SHAPES.map((_, s) => builds.every((_b, i) => idsOf[i][s] === idsOf[0][s]));
process.stdout.write(
  `${JSON.stringify({ shape: o.shape, threads, tokens, rounds, same_tokens_across_builds: same, builds: out }, null, 1)}\n`,
);
