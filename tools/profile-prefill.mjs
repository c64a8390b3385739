#!/usr/bin/env node
/**
 * Where the time of the f32 Mamba-1 bench model (mamba-130m shapes, random weights) goes: every
 * kernel of the engine is wrapped with a timer, then a 128-token prefill and one step of 32
 * batched decode streams run a few times each. Prints, per pass, each kernel (matrix products by
 * shape) with its milliseconds, its share of the pass and, for products, GFLOP/s against
 * frugal's GEMM peak (matmulNTP4 1024³ timed in the same process, as `frugal bench` measures it).
 * The time between kernel calls (JavaScript, buffer zeroing, copies) is the "outside kernels" row.
 * On a busy machine `--clock cpu` times by this process's CPU time instead of the wall clock.
 *
 *   npm run build
 *   nice -n 19 node tools/profile-prefill.mjs --threads 1 --rounds 5
 *
 * Medians over rounds; the table goes to stdout, progress to stderr.
 */
import { parseArgs } from 'node:util';
import { buildModel, makeWeights } from '../dist/bench/speed/models.js';
import { speedPlan } from '../dist/bench/speed/types.js';
import { median } from '../dist/bench/formulas.js';
import { quantizeModel } from '../dist/models/quant.js';

const { values: o } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
    streams: { type: 'string', default: '32' },
    prompt: { type: 'string', default: '128' },
    kernels: { type: 'string', default: 'wasm' },
    clock: { type: 'string', default: 'wall' },
    format: { type: 'string', default: 'f32' },
  },
});
const T = Number(o.threads),
  rounds = Number(o.rounds),
  S = Number(o.streams),
  L = Number(o.prompt);
if (
  ![T, rounds, S, L].every((n) => Number.isInteger(n) && n > 0) ||
  !['wall', 'cpu'].includes(o.clock) ||
  !['f32', 'q8', 'q4'].includes(o.format)
) {
  process.stderr.write(
    'usage: node tools/profile-prefill.mjs [--threads T] [--rounds R] [--streams S] [--prompt L] [--clock wall|cpu] [--format f32|q8|q4]\n',
  );
  process.exit(2);
}
const plan = speedPlan('full', T);
const w = makeWeights('mamba', plan.decodeModel, 1);
const m = buildModel(w, T, o.kernels);
if (o.format !== 'f32') quantizeModel(m, o.format);
const k = m.e.k;
/**
 * Milliseconds now: wall time, or with --clock cpu this process's CPU time (all its threads), which
 * time spent waiting for a core on a busy machine does not inflate.
 */
const now =
  o.clock === 'cpu'
    ? () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e3;
      }
    : () => performance.now();

/** Kernel label: the products by shape (M×K→N), everything else by name. */
function label(name, args) {
  const mnk = shapeOf(name, args);
  return mnk ? `${name} ${mnk[0]}×${mnk[2]}→${mnk[1]}` : name;
}

/** [M, N, K] of a product kernel's arguments, or null. */
function shapeOf(name, args) {
  if (name === 'matmulNT' || name === 'matmulNTP4') return args.slice(3, 6);
  if (name === 'matmulQ8' || name === 'matmulQ4') return args.slice(5, 8);
  if (name === 'matmulQ4x4') return args.slice(4, 7);
  return null;
}

let times = new Map(); // label -> ms in the current pass
const flopsOf = new Map(); // label -> FLOPs of one call
const calls = new Map();
for (const name of Object.keys(k)) {
  const fn = k[name];
  if (typeof fn !== 'function' || (fn.length === 0 && !/^[a-z]/.test(name))) continue;
  if (['dispose', 'parallelRuns', 'poolStats'].includes(name)) continue;
  k[name] = (...args) => {
    const s = now();
    const r = fn(...args);
    const dt = now() - s;
    const key = label(name, args);
    times.set(key, (times.get(key) ?? 0) + dt);
    calls.set(key, (calls.get(key) ?? 0) + 1);
    const mnk = shapeOf(name, args);
    if (mnk) flopsOf.set(key, 2 * mnk[0] * mnk[1] * mnk[2]);
    return r;
  };
}

/** Runs `fn` once per round (after two warm-ups); per label the median ms, plus the pass's median wall ms. */
function profile(title, fn) {
  fn();
  fn();
  const perLabel = new Map(),
    walls = [];
  let callsPerPass = null;
  for (let r = 0; r < rounds; r++) {
    times = new Map();
    calls.clear();
    const s = now();
    fn();
    walls.push(now() - s);
    for (const [key, ms] of times) perLabel.set(key, [...(perLabel.get(key) ?? []), ms]);
    callsPerPass = new Map(calls);
    process.stderr.write(`${title}: round ${r + 1}/${rounds} ${walls.at(-1).toFixed(1)} ms\n`);
  }
  const wall = median(walls);
  const rows = [...perLabel].map(([key, v]) => ({ key, ms: median(v), calls: callsPerPass.get(key) ?? 0 }));
  rows.sort((a, b) => b.ms - a.ms);
  return { title, wall, rows };
}

function print({ title, wall, rows }, gemm, tokens) {
  const inKernels = rows.reduce((s, r) => s + r.ms, 0);
  console.log(`\n${title}: ${wall.toFixed(1)} ms a pass (median of ${rounds}), ${((tokens * 1000) / wall).toFixed(1)} tok/s`);
  console.log('kernel                                  calls        ms   share   GFLOP/s  of peak');
  const line = (name, n, ms, f) => {
    const g = f ? (f * n) / (ms * 1e6) : null;
    console.log(
      `${name.padEnd(38)} ${String(n).padStart(6)} ${ms.toFixed(2).padStart(9)} ${((100 * ms) / wall).toFixed(1).padStart(6)}%` +
        (g ? ` ${g.toFixed(1).padStart(9)} ${((100 * g) / gemm).toFixed(0).padStart(7)}%` : ''),
    );
  };
  for (const r of rows) line(r.key, r.calls, r.ms, flopsOf.get(r.key));
  line('(outside kernels)', 0, wall - inKernels, 0);
  const gm = rows.filter((r) => r.key.startsWith('matmul'));
  const gms = gm.reduce((s, r) => s + r.ms, 0),
    gf = gm.reduce((s, r) => s + (flopsOf.get(r.key) ?? 0) * r.calls, 0);
  console.log(
    `all products: ${gms.toFixed(1)} ms (${((100 * gms) / wall).toFixed(1)}%), ${(gf / (gms * 1e6)).toFixed(1)} GFLOP/s ` +
      `= ${((100 * gf) / (gms * 1e6 * gemm)).toFixed(0)}% of the peak; the rest ${(wall - gms).toFixed(1)} ms`,
  );
}

/** matmulNTP4 n³ (the weight in panels) in GFLOP/s on the chosen clock: the median of ≥ 5 calls over ≥ 1 s, after one warm-up. */
function gemmPeak(n) {
  const [a, b, c] = [0, 1, 2].map(() => m.e.persistent([n, n]));
  a.floats().forEach((_, i, v) => {
    v[i] = Math.sin(i);
  });
  b.floats().forEach((_, i, v) => {
    v[i] = Math.cos(i);
  });
  const bp = m.e.persistent([n, n]);
  k.packPanels4(bp, b, n, n);
  k.matmulNTP4(c, a, bp, n, n, n, 0);
  const rates = [],
    t0 = performance.now();
  while (rates.length < 5 || performance.now() - t0 < 1000) {
    const s = now();
    k.matmulNTP4(c, a, bp, n, n, n, 0);
    rates.push((2 * n ** 3) / ((now() - s) * 1e6));
  }
  for (const t of [a, b, bp, c]) t.dispose();
  return median(rates);
}

const gemm = gemmPeak(plan.gemmSize);
process.stderr.write(`GEMM peak (matmulNTP4 ${plan.gemmSize}³, ${T} thread(s)): ${gemm.toFixed(1)} GFLOP/s\n`);
const V = plan.decodeModel.vocabSize;
const pre = m.createState(1),
  ids = Int32Array.from({ length: L }, (_, i) => (i * 7919) % V);
const prefill = profile(`prefill of ${L} tokens`, () => {
  for (const t of pre.tensors.values()) t.zero();
  pre.position = 0;
  m.prefill(ids, L, pre);
});
const st = m.createState(S),
  tok = new Int32Array(S).fill(3);
const step = profile(`one step of ${S} streams`, () => m.step(tok, st));
console.log(
  `mamba ${plan.decodeModel.dModel}×${plan.decodeModel.nLayer}, f32, ${T} thread(s), kernels ${o.kernels}; GEMM peak ${gemm.toFixed(1)} GFLOP/s`,
);
print(prefill, gemm, L);
print(step, gemm, S);
m.e.dispose();
