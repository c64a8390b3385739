#!/usr/bin/env node
/**
 * Two builds of the wasm kernels timed alternately (A, B, A, B, …) in one process on the
 * mamba-130m-shaped bench model, so both meet the same load from other processes: prefill of a
 * 128-token prompt, one decode step, or one step of 32 streams, at f32, q8 and q4, with each build's
 * GEMM peak (matmulNT 768³) timed in the same rounds. On a shared machine the ratio B ÷ A is the
 * figure to read; each is also given per CPU-second of this process (user + system time of all its
 * threads), which other processes disturb far less than wall time.
 *
 *   npm run build
 *   git show main:build/kernels.wasm > /dev/null   # or build the old sources into old.wasm with asc
 *   node tools/ab-builds.mjs old.wasm build/kernels.wasm --what prefill --threads 1 --rounds 5
 *
 * Prints one line per round to stderr and the summary (medians with min–max) to stdout.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildModel, makeWeights } from '../dist/bench/speed/models.js';
import { speedPlan } from '../dist/bench/speed/types.js';
import { quantizeModel } from '../dist/models/quant.js';
import { useWasmModule } from '../dist/kernels/wasm/index.js';
import { Engine } from '../dist/ops/index.js';
import { prefillFlopsPerToken, spread } from '../dist/bench/formulas.js';

const { values: o, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    what: { type: 'string', default: 'prefill' },
    threads: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
    precisions: { type: 'string', default: 'f32,q8,q4' },
    seconds: { type: 'string', default: '1' },
  },
});
if (files.length !== 2 || !['prefill', 'decode', 'streams32'].includes(o.what)) {
  process.stderr.write('usage: node tools/ab-builds.mjs A.wasm B.wasm [--what prefill|decode|streams32] [--threads T] [--rounds R]\n');
  process.exit(2);
}
const T = Number(o.threads),
  rounds = Number(o.rounds),
  seconds = Number(o.seconds),
  L = 128;
const modules = files.map((f) => new WebAssembly.Module(readFileSync(f)));
const plan = speedPlan('quick', T);
const w = makeWeights('mamba', plan.decodeModel, 1);
const { vocabSize: V, dModel: D } = plan.decodeModel;
let P = 0;
for (const v of w.values.values()) P += v.length;
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** tokens per wall-second and per CPU-second of `fn` (n tokens a call), over ≥ 3 calls and `seconds`, after 2 warm-up calls. */
function rate(fn, n) {
  fn();
  fn();
  const wall = [],
    cpus = [];
  const t0 = performance.now();
  while (wall.length < 3 || performance.now() - t0 < seconds * 1000) {
    const c = cpu(),
      s = performance.now();
    fn();
    wall.push(n / ((performance.now() - s) / 1000));
    cpus.push(n / (cpu() - c));
  }
  return { wall: spread(wall).median, cpu: spread(cpus).median };
}

function figure(precision) {
  const m = buildModel(w, T);
  try {
    if (precision !== 'f32') quantizeModel(m, precision);
    if (o.what === 'prefill') {
      const st = m.createState(1),
        ids = Int32Array.from({ length: L }, (_, i) => (i * 7919) % V);
      return rate(() => {
        for (const t of st.tensors.values()) t.zero();
        st.position = 0;
        m.prefill(ids, L, st);
      }, L);
    }
    const S = o.what === 'decode' ? 1 : 32,
      st = m.createState(S),
      ids = new Int32Array(S).fill(3);
    return rate(() => m.step(ids, st), S);
  } finally {
    m.e.dispose();
  }
}

/** matmulNT 768³ in GFLOP/s, per wall-second and per CPU-second (frugal's GEMM peak, as `frugal bench` measures it). */
function gemm() {
  const n = 768,
    e = new Engine({ kernels: 'wasm', threads: T });
  try {
    const a = e.persistent([n, n]),
      b = e.persistent([n, n]),
      out = e.persistent([n, n]);
    a.floats().forEach((_, i, v) => {
      v[i] = Math.sin(i);
    });
    b.floats().forEach((_, i, v) => {
      v[i] = Math.cos(i);
    });
    return rate(() => e.k.matmulNT(out, a, b, n, n, n, 0), (2 * n ** 3) / 1e9);
  } finally {
    e.dispose();
  }
}

const flops = o.what === 'prefill' ? prefillFlopsPerToken(P, V * D, V, D, L) : 2 * P;
const res = new Map();
const add = (k, v) => res.set(k, [...(res.get(k) ?? []), v]);
for (let r = 0; r < rounds; r++) {
  for (const [i, mod] of modules.entries()) {
    useWasmModule(mod);
    const g = gemm();
    add(`${i} gemm`, g.wall);
    add(`${i} gemm cpu`, g.cpu);
    for (const p of o.precisions.split(',')) {
      const f = figure(p);
      add(`${i} ${p} wall`, f.wall);
      add(`${i} ${p} cpu`, f.cpu);
      add(`${i} ${p} of-gemm`, (f.wall * flops) / (g.wall * 1e9));
      add(`${i} ${p} of-gemm cpu`, (f.cpu * flops) / (g.cpu * 1e9));
      process.stderr.write(
        `round ${r + 1} ${files[i]} ${p} ${o.what}: ${f.wall.toFixed(1)} tok/s, ${f.cpu.toFixed(1)} per CPU-second; GEMM ${g.wall.toFixed(1)} GFLOP/s\n`,
      );
    }
  }
}
const show = (k, d = 1) => {
  const s = spread(res.get(k));
  return `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
};
const ratio = (k) => {
  const a = res.get(`0 ${k}`),
    b = res.get(`1 ${k}`);
  const s = spread(a.map((x, i) => b[i] / x));
  return `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
};
console.log(`${o.what}, ${T} thread(s), ${rounds} alternating rounds; A = ${files[0]}, B = ${files[1]}; medians (min–max)`);
console.log(`GEMM peak GFLOP/s: A ${show('0 gemm')}, B ${show('1 gemm')}; per CPU-second A ${show('0 gemm cpu')}, B ${show('1 gemm cpu')}`);
for (const p of o.precisions.split(',')) {
  console.log(
    `${p}: tok/s A ${show(`0 ${p} wall`)}, B ${show(`1 ${p} wall`)}, B÷A ${ratio(`${p} wall`)}; ` +
      `per CPU-second A ${show(`0 ${p} cpu`)}, B ${show(`1 ${p} cpu`)}, B÷A ${ratio(`${p} cpu`)}; ` +
      `of the GEMM peak A ${show(`0 ${p} of-gemm`, 2)}, B ${show(`1 ${p} of-gemm`, 2)} ` +
      `(per CPU-second A ${show(`0 ${p} of-gemm cpu`, 2)}, B ${show(`1 ${p} of-gemm cpu`, 2)})`,
  );
}
