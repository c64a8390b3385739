#!/usr/bin/env node
/**
 * Where one training step of `frugal bench`'s training model goes: the Mamba-1 d256-l4-v256 model,
 * a batch of 8 × 256 random bytes, one AdamW step (forward, backward, clip, update) exactly as
 * bench's trainRate runs it, with every kernel of the engine's backend wrapped in a timer.
 *
 *   npm run build && nice -n 19 node tools/profile-train.mjs [--threads 1,2] [--steps 8] [--clock wall|cpu] [--json]
 *
 * Each kernel's time is its own (allocations it makes, such as the threaded scan backward's
 * partials, are counted under `heap.alloc`), keyed by phase (fwd, bwd, opt) and kernel; products
 * are keyed by their (M, N, K) too. `heap.alloc` is the allocation and zero-fill of temporaries;
 * `(js)` is what is left of the step: the tape, scopes, argument conversion and dispatch. The
 * thread counts run in alternate steps (1, 2, 1, 2, …) so both meet the same load from other
 * processes; the table gives the median ms per step of each entry and its share of the step.
 */
import { parseArgs } from 'node:util';
import { Engine } from '../dist/ops/index.js';
import { trainingStep } from '../dist/bench/speed/models.js';
import { speedPlan } from '../dist/bench/speed/types.js';
import { median } from '../dist/bench/formulas.js';

const { values: o } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    steps: { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
    clock: { type: 'string', default: 'wall' },
    top: { type: 'string', default: '40' },
  },
});
const threads = o.threads.split(',').map(Number),
  steps = Number(o.steps);
if (threads.some((t) => !(t >= 1)) || !(steps >= 1)) {
  process.stderr.write('profile-train: --threads takes a list like 1,2 and --steps a count ≥ 1\n');
  process.exit(2);
}
if (!['wall', 'cpu'].includes(o.clock)) {
  process.stderr.write('profile-train: --clock is wall or cpu\n');
  process.exit(2);
}
/**
 * Milliseconds now: wall time, or this process's CPU time (user + system, all threads), which
 * other processes on a busy machine disturb far less; it is the time of the step only at 1 thread
 * (with workers it adds what they spend, spinning included).
 */
const now =
  o.clock === 'cpu'
    ? () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      }
    : () => performance.now();
const plan = speedPlan('full', 2);
const B = plan.trainBatch,
  L = plan.trainSeq;

const MATMULS = new Set(['matmulNT', 'matmulNN', 'matmulTN']);

/** One engine and model at T threads, its kernels timed into `cur` (exclusive times, by key). */
function setup(T) {
  const e = new Engine({ threads: T });
  const s = { phase: 'fwd', cur: new Map(), child: [0] };
  const { m, step: train } = trainingStep(e, 'mamba', plan.trainModel, B, L, () => {
    s.phase = 'bwd';
  });
  const timed = (key, fn) =>
    function (...args) {
      s.child.push(0);
      const t0 = now();
      try {
        return fn.apply(this, args);
      } finally {
        const dt = now() - t0;
        const inner = s.child.pop();
        s.child[s.child.length - 1] += dt;
        const k = `${s.phase} ${key(args)}`;
        s.cur.set(k, (s.cur.get(k) ?? 0) + dt - inner);
      }
    };
  for (const [name, fn] of Object.entries(e.k)) {
    if (typeof fn !== 'function' || ['dispose', 'parallelRuns', 'poolStats'].includes(name)) continue;
    const key = MATMULS.has(name) ? (a) => `${name} ${a[3]}×${a[4]}×${a[5]}` : () => name;
    e.k[name] = timed(key, fn);
  }
  e.heap.alloc = timed(() => 'heap.alloc', e.heap.alloc.bind(e.heap));
  // the optimiser's update is timed under 'opt': mark it by wrapping the step's last part
  const update = e.k.sumSquares;
  e.k.sumSquares = (...a) => {
    s.phase = 'opt';
    return update(...a);
  };
  const step = () => {
    s.cur = new Map();
    s.child = [0];
    const t0 = now();
    s.phase = 'fwd';
    train();
    const total = now() - t0;
    s.cur.set('all (js)', total - s.child[0]);
    return { total, parts: s.cur };
  };
  return { e, step, parameters: m.parameterCount };
}

const runs = threads.map((T) => ({ T, ...setup(T), totals: [], parts: new Map() }));
for (const r of runs) r.step(); // warm-up: JIT, first allocations, waking the workers
for (let i = 0; i < steps; i++)
  for (const r of runs) {
    const { total, parts } = r.step();
    r.totals.push(total);
    for (const [k, v] of parts) {
      if (!r.parts.has(k)) r.parts.set(k, []);
      r.parts.get(k).push(v);
    }
    process.stderr.write(`step ${i + 1}, ${r.T} thread${r.T > 1 ? 's' : ''}: ${total.toFixed(1)} ms\n`);
  }
for (const r of runs) r.e.dispose();

const keys = [...new Set(runs.flatMap((r) => [...r.parts.keys()]))];
const ms = (r, k) => (r.parts.has(k) ? median(r.parts.get(k).concat(Array(steps - r.parts.get(k).length).fill(0))) : 0);
const ref = runs[runs.length - 1];
keys.sort((a, b) => ms(ref, b) - ms(ref, a));
const rows = keys.map((k) => ({ op: k, ms: runs.map((r) => ms(r, k)), share: runs.map((r) => ms(r, k) / median(r.totals)) }));
const summary = runs.map((r) => ({ threads: r.T, step_ms: median(r.totals), tok_s: (B * L) / (median(r.totals) / 1000) }));
if (o.json) {
  process.stdout.write(`${JSON.stringify({ model: plan.trainName, batch: B, seq_len: L, steps, summary, rows }, null, 1)}\n`);
} else {
  const th = runs.map((r) => `${r.T}T`);
  const out = [
    `${plan.trainName}, batch ${B} × ${L}, median of ${steps} steps (${o.clock} clock): ` +
      summary.map((x) => `${x.threads}T ${x.step_ms.toFixed(1)} ms (${x.tok_s.toFixed(0)} tok/s)`).join(', '),
    '',
    `| op | ${th.map((t) => `ms ${t}`).join(' | ')} | ${th.map((t) => `share ${t}`).join(' | ')} |${runs.length > 1 ? ' speed-up |' : ''}`,
    `|---|${th.map(() => '---:').join('|')}|${th.map(() => '---:').join('|')}|${runs.length > 1 ? '---:|' : ''}`,
  ];
  for (const x of rows.slice(0, Number(o.top))) {
    const up =
      runs.length > 1 && x.ms[x.ms.length - 1] > 0 ? ` ${(x.ms[0] / x.ms[x.ms.length - 1]).toFixed(2)}× |` : runs.length > 1 ? ' |' : '';
    out.push(
      `| ${x.op} | ${x.ms.map((v) => v.toFixed(2)).join(' | ')} | ${x.share.map((v) => `${(100 * v).toFixed(1)}%`).join(' | ')} |${up}`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
