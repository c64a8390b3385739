#!/usr/bin/env node
/**
 * The products of one kernels build on mamba-130m's shapes, each layout timed in turn in every
 * round (so all meet the same load from other processes): f32 (matmulNT), q8 and q4 in the row
 * layout checkpoints keep (matmulQ8, matmulQ4), f32 in panels of four rows as inference holds it
 * (matmulNTP4), and q8 and q4 repacked in groups of four rows as
 * models load them on the default build (matmulQ8x4, matmulQ4x4, with the activation's
 * preparation counted). Activation quantisation (quantizeQ8) is counted in every quantised figure.
 * One thread; one activation row (decoding's GEMV) and 32 and 128 rows (batched streams, a prompt).
 * The figure per layout and shape is the median over rounds of GFLOP/s (2·M·N·K per call) by this
 * process's CPU time, which other processes disturb less than wall time; each packed product is
 * checked bit for bit against its row layout's (`same bits`). `--cold` evicts the caches (writes
 * 64 MiB) before every call and times the calls alone: the weights then come from memory, as in a
 * model whose weights do not fit in cache.
 *
 *   npm run build:wasm
 *   node tools/bench-packed.mjs [build/kernels.wasm] [--rounds 7] [--cold]
 *
 * Prints one line per shape to stderr and the summary as JSON to stdout.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '7' }, cold: { type: 'boolean', default: false } },
});
const rounds = Number(o.rounds);
if (!(rounds >= 1)) {
  process.stderr.write('bench-packed: --rounds takes a whole number ≥ 1\n');
  process.exit(2);
}
const path = positionals[0] ?? 'build/kernels.wasm';
const bytes = readFileSync(path);
if (!WebAssembly.validate(bytes)) setFlagsFromString('--experimental-wasm-relaxed-simd'); // a relaxed-SIMD build
const memory = new WebAssembly.Memory({ initial: 8192, maximum: 65536, shared: true });
const k = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory, abort: () => {}, seed: () => 1 } }).exports;

let top = 1 << 20;
const alloc = (n) => {
  const p = top;
  top += (n + 63) & ~63;
  return p;
};
const f32 = new Float32Array(memory.buffer);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};

/** mamba-130m (d_model 768, d_inner 1536): in_proj and out_proj, as a GEMV and as GEMMs */
const SHAPES = [
  [1, 3072, 768],
  [1, 768, 1536],
  [32, 3072, 768],
  [128, 3072, 768],
  [128, 768, 1536],
];
const out = [];
const evict = o.cold ? new Float32Array(memory.buffer, alloc(64 << 20), 16 << 20) : null;
for (const [M, N, K] of SHAPES) {
  const nb = K / 32;
  const a = alloc(M * K * 4),
    w = alloc(N * K * 4),
    y = alloc(M * N * 4),
    yRows = alloc(M * N * 4);
  const q8 = alloc(N * K),
    s8 = alloc(N * nb * 4),
    q4 = alloc((N * K) / 2),
    s4 = alloc(N * nb * 4);
  const wp = alloc(N * K * 4);
  const p8 = alloc(N * K),
    ps8 = alloc(N * nb * 4),
    p4 = alloc((N * K) / 2),
    ps4 = alloc(N * nb * 4);
  const qx = alloc(M * K),
    sx = alloc(M * nb * 4),
    prep = alloc(M * nb * 288);
  for (let i = 0; i < M * K; i++) f32[(a >> 2) + i] = Math.sin(i);
  for (let i = 0; i < N * K; i++) f32[(w >> 2) + i] = Math.cos(1.3 * i);
  k.packPanels4(wp, w, N, K);
  k.quantizeQ8(q8, s8, w, N, K);
  k.quantizeQ4(q4, s4, w, N, K);
  k.repackQ8x4(p8, ps8, q8, s8, N, K);
  k.repackQ4x4(p4, ps4, q4, s4, N, K);
  const run = {
    f32: (o) => k.matmulNT(o, a, w, M, N, K, 0),
    f32p4: (o) => k.matmulNTP4(o, a, wp, M, N, K, 0),
    q8: (o) => (k.quantizeQ8(qx, sx, a, M, K), k.matmulQ8(o, qx, sx, q8, s8, M, N, K)),
    q8x4: (o) => (k.quantizeQ8(qx, sx, a, M, K), k.prepQ8x4(prep, qx, sx, M, K), k.matmulQ8x4(o, prep, p8, ps8, M, N, K)),
    q4: (o) => (k.quantizeQ8(qx, sx, a, M, K), k.matmulQ4(o, qx, sx, q4, s4, M, N, K)),
    q4x4: (o) => (k.quantizeQ8(qx, sx, a, M, K), k.prepQ4x4(prep, qx, sx, M, K), k.matmulQ4x4(o, prep, p4, ps4, M, N, K)),
  };
  const same = {};
  for (const [rows, packed] of [
    ['f32', 'f32p4'],
    ['q8', 'q8x4'],
    ['q4', 'q4x4'],
  ]) {
    run[rows](yRows);
    run[packed](y);
    same[packed] = f32.subarray(y >> 2, (y >> 2) + M * N).every((v, i) => Object.is(v, f32[(yRows >> 2) + i]));
  }
  const reps = o.cold ? 3 : Math.max(3, Math.round(3e8 / (M * N * K)));
  const rates = Object.fromEntries(Object.keys(run).map((n) => [n, []]));
  for (let r = 0; r < rounds; r++)
    for (const [name, fn] of Object.entries(run)) {
      let ms = 0;
      for (let i = 0; i < reps; i++) {
        if (o.cold) evict.fill(i + r);
        const t = cpuMs();
        fn(y);
        ms += cpuMs() - t;
      }
      rates[name].push((2 * M * N * K) / ((ms * 1e6) / reps));
    }
  const g = Object.fromEntries(Object.entries(rates).map(([n, v]) => [n, +median(v).toFixed(1)]));
  const row = {
    M,
    N,
    K,
    gflops: g,
    f32p4_over_f32: +(g.f32p4 / g.f32).toFixed(2),
    q8x4_over_q8: +(g.q8x4 / g.q8).toFixed(2),
    q4x4_over_q4: +(g.q4x4 / g.q4).toFixed(2),
    same_bits: same,
  };
  out.push(row);
  process.stderr.write(
    `${M}×${K}→${N}: ${Object.entries(g)
      .map(([n, v]) => `${n} ${v}`)
      .join(
        ', ',
      )} GFLOP/s; packed ÷ rows f32 ${row.f32p4_over_f32}×, q8 ${row.q8x4_over_q8}×, q4 ${row.q4x4_over_q4}×; same bits ${same.f32p4 && same.q8x4 && same.q4x4}\n`,
  );
}
console.log(JSON.stringify({ build: path, rounds, clock: 'cpu', cold: o.cold, shapes: out }, null, 2));
