#!/usr/bin/env node
/**
 * Two built checkouts of frugal (each with its own dist/ and build/) timed alternately in one
 * process (A, B, A, B, …) on the f32 mamba-130m-shaped bench model: a 128-token prefill and one
 * step of 32 batched streams, each as a fraction of that checkout's GEMM peak (matmulNT 1024³,
 * as `frugal bench` measures it) timed in the same round. Unlike ab-builds.mjs (two wasm files
 * under one dist/), this compares changes to the TypeScript around the kernels as well.
 *
 *   git worktree add /tmp/old <commit> && (cd /tmp/old && npm ci && npm run build)
 *   nice -n 19 node tools/ab-checkouts.mjs /tmp/old . --threads 1 --rounds 5
 *
 * Per wall-second, per CPU-second of this process, and from the fastest call of each (on a busy
 * machine the least disturbed one). Per-round lines go to stderr, the medians
 * (min–max) and B÷A to stdout.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: o, positionals: roots } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '2' },
    what: { type: 'string', default: 'prefill,streams32' },
  },
});
const T = Number(o.threads),
  rounds = Number(o.rounds),
  seconds = Number(o.seconds),
  whats = o.what.split(',');
if (roots.length !== 2 || !whats.every((w) => w === 'prefill' || w === 'streams32')) {
  process.stderr.write('usage: node tools/ab-checkouts.mjs OLD_ROOT NEW_ROOT [--threads T] [--rounds R] [--what prefill,streams32]\n');
  process.exit(2);
}

/** The modules of one built checkout. */
async function load(root) {
  const at = (p) => import(pathToFileURL(resolve(root, 'dist', p)).href);
  const [models, types, machine, formulas] = await Promise.all([
    at('bench/speed/models.js'),
    at('bench/speed/types.js'),
    at('bench/speed/machine.js'),
    at('bench/formulas.js'),
  ]);
  return { root, ...models, ...types, ...machine, ...formulas };
}
const trees = await Promise.all(roots.map(load));
const plan = trees[0].speedPlan('full', T),
  L = 128,
  S = 32;
const w = trees[0].makeWeights('mamba', plan.decodeModel, 1); // plain arrays: both checkouts load the same values
const { vocabSize: V, dModel: D } = plan.decodeModel;
let P = 0;
for (const v of w.values.values()) P += v.length;
const flops = { prefill: trees[0].prefillFlopsPerToken(P, V * D, V, D, L), streams32: 2 * P };

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};

/**
 * `n` units of work per call of `fn`, per wall-second and per CPU-second of this process (median
 * over ≥ 3 calls and `seconds`, after 2 warm-up calls). On a shared machine CPU time is the steadier
 * figure: time spent waiting for a core is not counted.
 */
function rate(tree, fn, n) {
  fn();
  fn();
  const wall = [],
    cpu = [];
  const t0 = performance.now();
  while (wall.length < 3 || performance.now() - t0 < seconds * 1000) {
    const c = cpuMs(),
      s = performance.now();
    fn();
    wall.push((n * 1000) / (performance.now() - s));
    cpu.push((n * 1000) / Math.max(cpuMs() - c, 1e-3));
  }
  return { wall: tree.median(wall), cpu: tree.median(cpu), best: Math.max(...wall) };
}

/** One checkout's model, the GEMM operands and the two states, made once (a heap is not given back). */
function setup(tree) {
  const m = tree.buildModel(w, T),
    n = plan.gemmSize;
  const [a, b, c] = [0, 1, 2].map(() => m.e.persistent([n, n]));
  a.floats().forEach((_, i, v) => {
    v[i] = Math.sin(i);
  });
  b.floats().forEach((_, i, v) => {
    v[i] = Math.cos(i);
  });
  return {
    m,
    gemm: () => m.e.k.matmulNT(c, a, b, n, n, n, 0),
    solo: m.createState(1),
    many: m.createState(S),
  };
}

/** One round of one checkout: its GEMM peak (GFLOP/s) and the tok/s of each measured task. */
function round(tree, { m, gemm, solo, many }) {
  const out = { gemm: rate(tree, gemm, (2 * plan.gemmSize ** 3) / 1e9) };
  if (whats.includes('prefill')) {
    const ids = Int32Array.from({ length: L }, (_, i) => (i * 7919) % V);
    out.prefill = rate(
      tree,
      () => {
        for (const t of solo.tensors.values()) t.zero();
        solo.position = 0;
        m.prefill(ids, L, solo);
      },
      L,
    );
  }
  if (whats.includes('streams32')) {
    const ids = new Int32Array(S).fill(3);
    out.streams32 = rate(tree, () => m.step(ids, many), S);
  }
  return out;
}

const models = trees.map(setup);
/** The median call per wall-second and per CPU-second, and the fastest call (the least disturbed). */
const CLOCKS = ['wall', 'cpu', 'best'];
const res = new Map();
const add = (k, v) => res.set(k, [...(res.get(k) ?? []), v]);
for (let r = 0; r < rounds; r++) {
  for (const [i, tree] of trees.entries()) {
    const f = round(tree, models[i]);
    for (const clock of CLOCKS) {
      add(`${i} gemm ${clock}`, f.gemm[clock]);
      for (const wh of whats) {
        add(`${i} ${wh} ${clock}`, f[wh][clock]);
        add(`${i} ${wh} ${clock} of-gemm`, (f[wh][clock] * flops[wh]) / (f.gemm[clock] * 1e9));
      }
    }
    process.stderr.write(
      `round ${r + 1} ${tree.root}: GEMM ${f.gemm.wall.toFixed(1)} GFLOP/s (${f.gemm.cpu.toFixed(1)} per CPU-second); ` +
        whats
          .map(
            (wh) =>
              `${wh} ${f[wh].wall.toFixed(1)} tok/s (${((100 * f[wh].cpu * flops[wh]) / (f.gemm.cpu * 1e9)).toFixed(1)}% per CPU-second)`,
          )
          .join(', ') +
        '\n',
    );
  }
}
for (const { m } of models) m.e.dispose();
const med = trees[0].median;
const show = (k, d = 1, scale = 1) => {
  const v = res.get(k).map((x) => x * scale);
  return `${med(v).toFixed(d)} (${Math.min(...v).toFixed(d)}–${Math.max(...v).toFixed(d)})`;
};
const ratio = (k) => {
  const a = res.get(`0 ${k}`),
    b = res.get(`1 ${k}`);
  return med(b.map((x, i) => x / a[i])).toFixed(3);
};
console.log(
  `f32 mamba ${D}×${plan.decodeModel.nLayer}, ${T} thread(s), ${rounds} alternating rounds; A = ${roots[0]}, B = ${roots[1]}; medians (min–max)`,
);
for (const clock of CLOCKS) {
  const per = { wall: 'per wall-second', cpu: 'per CPU-second', best: 'fastest call' }[clock];
  console.log(`GEMM peak GFLOP/s (matmulNT ${plan.gemmSize}³) ${per}: A ${show(`0 gemm ${clock}`)}, B ${show(`1 gemm ${clock}`)}`);
  for (const wh of whats) {
    console.log(
      `${wh} ${per}: tok/s A ${show(`0 ${wh} ${clock}`)}, B ${show(`1 ${wh} ${clock}`)}, B÷A ${ratio(`${wh} ${clock}`)}; ` +
        `% of the GEMM peak A ${show(`0 ${wh} ${clock} of-gemm`, 1, 100)}, B ${show(`1 ${wh} ${clock} of-gemm`, 1, 100)}`,
    );
  }
}
