#!/usr/bin/env node
/**
 * The q4 × q8 products of several kernel builds timed alternately (A, B, C, …, A, B, C, … in
 * every round), so every build meets the same load from other processes: matmulQ4 on
 * mamba-130m's shapes, one activation row (decoding's GEMV) and 128 rows (a prompt's GEMM), one
 * thread. Each argument is a kernels .wasm file (default: build/kernels.wasm and
 * build/kernels-relaxed.wasm), optionally named `name=path`; relaxed-SIMD builds are accepted
 * (Node 20's V8 flag is turned on as the engine does). Random nibbles, activations and scales
 * (the time does not depend on them). The figure per build and shape is the median over rounds of
 * the mean time per call in that round, in wall time and in CPU time of this process (which other
 * processes disturb less on a busy machine); ratios are to the first build (below 1: faster), the
 * median of the rounds' ratios. Each build's outputs are compared with the first build's too
 * (`same bits`, or the largest difference).
 *
 *   npm run build:wasm
 *   cp build/kernels.wasm old.wasm          # before changing assembly/, then rebuild
 *   node tools/bench-q4.mjs old=old.wasm new=build/kernels.wasm [--rounds 7] [--seconds 0.3] [--shapes in_proj,out_proj]
 *
 * Prints one line per round to stderr and the summary as JSON to stdout.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '7' },
    seconds: { type: 'string', default: '0.3' },
    shapes: { type: 'string', default: '' },
  },
});
/** mamba-130m (d_model 768, d_inner 1536, dt_rank 48, d_state 16, vocabulary 50280): its q4 products */
const SHAPES = [
  { name: 'in_proj', M: 1, N: 3072, K: 768 },
  { name: 'out_proj', M: 1, N: 768, K: 1536 },
  { name: 'x_proj', M: 1, N: 80, K: 1536 },
  { name: 'head', M: 1, N: 50280, K: 768 },
  { name: 'in_proj_M128', M: 128, N: 3072, K: 768 },
  { name: 'out_proj_M128', M: 128, N: 768, K: 1536 },
];
const shapes = o.shapes === '' ? SHAPES : SHAPES.filter((s) => o.shapes.split(',').includes(s.name));
const rounds = Number(o.rounds),
  seconds = Number(o.seconds);
if (shapes.length === 0 || !(rounds >= 1) || !(seconds > 0)) {
  process.stderr.write(`bench-q4: --shapes takes ${SHAPES.map((s) => s.name).join(',')}; --rounds ≥ 1; --seconds > 0\n`);
  process.exit(2);
}
const files = (positionals.length > 0 ? positionals : ['build/kernels.wasm', 'build/kernels-relaxed.wasm']).map((a) => {
  const i = a.indexOf('=');
  return i > 0 ? { name: a.slice(0, i), path: a.slice(i + 1) } : { name: basename(a, '.wasm'), path: a };
});

function compile(path) {
  const bytes = readFileSync(path);
  if (!WebAssembly.validate(bytes)) setFlagsFromString('--experimental-wasm-relaxed-simd'); // a relaxed-SIMD build
  if (!WebAssembly.validate(bytes)) throw new Error(`bench-q4: ${path} does not validate in this Node`);
  return new WebAssembly.Module(bytes);
}

/** Deterministic bytes (xorshift32), so every build gets the same operands. */
function fill(u8, seed) {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < u8.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    u8[i] = s & 255;
  }
}

/** One build: its instance on its own shared memory, with every shape's operands in place. */
function setUp({ name, path }) {
  let bytes = 0;
  for (const { M, N, K } of shapes) bytes += M * K + (M * K) / 8 + (N * K) / 2 + (N * K) / 8 + M * N * 4 + 5 * 64;
  const pages = Math.ceil(bytes / 65536) + 1;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true });
  const k = new WebAssembly.Instance(compile(path), {
    env: {
      memory,
      abort: () => {
        throw new Error('kernel aborted');
      },
    },
  }).exports;
  let top = 64;
  const alloc = (n) => {
    const p = top;
    top += Math.ceil(n / 64) * 64;
    return p;
  };
  const layout = [];
  const calls = shapes.map(({ M, N, K }, si) => {
    const qx = alloc(M * K),
      sx = alloc((M * K) / 8),
      qw = alloc((N * K) / 2),
      sw = alloc((N * K) / 8),
      out = alloc(M * N * 4);
    layout.push({ out });
    fill(new Uint8Array(memory.buffer, qw, (N * K) / 2), 17 + si);
    const x = new Int8Array(memory.buffer, qx, M * K);
    fill(new Uint8Array(memory.buffer, qx, M * K), 29 + si);
    for (let i = 0; i < x.length; i++) if (x[i] === -128) x[i] = -127; // the quantiser's range
    const f = new Float32Array(memory.buffer);
    for (let i = 0; i < (N * K) / 32; i++) f[sw / 4 + i] = 0.01 * (1 + (i % 7));
    for (let i = 0; i < (M * K) / 32; i++) f[sx / 4 + i] = 0.02 * (1 + (i % 5));
    return () => k.matmulQ4(out, qx, sx, qw, sw, M, N, K);
  });
  const outputs = shapes.map(({ M, N }, si) => {
    calls[si]();
    const { out } = layout[si];
    return Float32Array.from(new Float32Array(memory.buffer, out, M * N));
  });
  return { name, calls, outputs };
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Mean wall and CPU seconds per call over ≥ 3 calls and `seconds`, after 2 warm-up calls. */
function time(fn) {
  fn();
  fn();
  let n = 0;
  const c0 = cpuNow(),
    t0 = performance.now();
  let t = t0;
  while (n < 3 || t - t0 < seconds * 1000) {
    fn();
    n++;
    t = performance.now();
  }
  return { wall: (t - t0) / 1000 / n, cpu: (cpuNow() - c0) / n };
}

const builds = files.map(setUp);
const runs = shapes.map(() => builds.map(() => [])),
  cpus = shapes.map(() => builds.map(() => []));
for (let r = -1; r < rounds; r++) {
  // round −1 warms every kernel up to V8's optimising tier and is not counted
  const parts = [];
  shapes.forEach((s, si) => {
    builds.forEach((b, bi) => {
      const t = time(b.calls[si]);
      if (r >= 0) runs[si][bi].push(t.wall);
      if (r >= 0) cpus[si][bi].push(t.cpu);
      parts.push(`${s.name}/${b.name} ${(t.wall * 1e3).toFixed(3)} ms`);
    });
  });
  process.stderr.write(`round ${r < 0 ? 'warm-up' : r + 1}: ${parts.join(', ')}\n`);
}
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** 'same bits', or the largest difference relative to the largest |output| of the first build. */
function agreement(a, ref) {
  if (Buffer.from(a.buffer).equals(Buffer.from(ref.buffer))) return 'same bits';
  let d = 0,
    m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return `max diff ${(d / m).toExponential(2)} of max |out|`;
}
const summary = shapes.map((s, si) => {
  const ms = builds.map((_, bi) => median(runs[si][bi]) * 1e3);
  const row = { shape: s.name, M: s.M, N: s.N, K: s.K };
  builds.forEach((b, bi) => {
    row[`${b.name}_ms`] = Number(ms[bi].toFixed(4));
    row[`${b.name}_gmacs`] = Number(((s.M * s.N * s.K) / (ms[bi] / 1e3) / 1e9).toFixed(2));
    // the median of each round's ratio: both times of a round met the same load
    row[`${b.name}_cpu_ms`] = Number((median(cpus[si][bi]) * 1e3).toFixed(4));
    if (bi > 0) row[`${b.name}_over_${builds[0].name}`] = Number(median(runs[si][bi].map((t, r) => t / runs[si][0][r])).toFixed(3));
    if (bi > 0) row[`${b.name}_over_${builds[0].name}_cpu`] = Number(median(cpus[si][bi].map((t, r) => t / cpus[si][0][r])).toFixed(3));
    if (bi > 0) row[`${b.name}_vs_${builds[0].name}`] = agreement(b.outputs[si], builds[0].outputs[si]);
  });
  return row;
});
process.stdout.write(`${JSON.stringify({ rounds, seconds, builds: files, shapes: summary }, null, 2)}\n`);
