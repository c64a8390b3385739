#!/usr/bin/env node
/**
 * `frugal bench`'s training figure (Mamba-1 d256-l4-v256, batch 8 × 256, one AdamW step per call,
 * its trainRate) for two builds of the package, timed alternately (A, B, A, B, …) in one process so
 * both meet the same load from other processes. A build is a folder holding `dist/` and `build/`
 * (for example a copy of both made before a change, next to a `node_modules` link).
 *
 *   npm run build && cp -r dist build /tmp/base/ && ln -s "$PWD/node_modules" /tmp/base/
 *   … change, npm run build …
 *   nice -n 19 node tools/ab-train.mjs /tmp/base . --threads 1,2 --rounds 5
 *
 * Prints one line per round to stderr and the medians (with min–max over rounds) to stdout.
 */
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: o, positionals: roots } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
  },
});
const threads = o.threads.split(',').map(Number),
  rounds = Number(o.rounds),
  seconds = Number(o.seconds);
if (roots.length !== 2 || threads.some((t) => !(t >= 1)) || !(rounds >= 1) || !(seconds > 0)) {
  process.stderr.write('usage: node tools/ab-train.mjs A_DIR B_DIR [--threads 1,2] [--rounds 5] [--seconds 3]\n');
  process.exit(2);
}
const load = async (root) => {
  const mod = (p) => import(pathToFileURL(join(resolve(root), 'dist', p)).href);
  const [{ trainRate, TokenCounter }, { speedPlan }] = await Promise.all([mod('bench/speed/models.js'), mod('bench/speed/types.js')]);
  return { trainRate, count: new TokenCounter(), plan: speedPlan('full', 2) };
};
const builds = await Promise.all(roots.map(load));
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const got = threads.map(() => builds.map(() => []));
for (let r = 0; r < rounds; r++) {
  threads.forEach((T, i) => {
    const line = builds.map(({ trainRate, count, plan }, k) => {
      const t = trainRate('mamba', plan.trainModel, T, plan.trainBatch, plan.trainSeq, 2, seconds, count);
      got[i][k].push(t.rate.median);
      return `${'AB'[k]} ${t.rate.median.toFixed(0)}`;
    });
    process.stderr.write(`round ${r + 1}, ${T} thread${T > 1 ? 's' : ''}: ${line.join(', ')} tok/s\n`);
  });
}
const out = threads.map((T, i) => {
  const [a, b] = got[i];
  const ratio = med(a.map((x, j) => b[j] / x));
  const show = (xs) => `${med(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  return `${T} thread${T > 1 ? 's' : ''}: A ${show(a)} tok/s, B ${show(b)} tok/s, B ÷ A per round: median ${ratio.toFixed(2)}×`;
});
process.stdout.write(`${out.join('\n')}\n`);
