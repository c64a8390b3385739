// Quick single-thread throughput check of the wasm matmuls against the plain-JS reference loops.
// Not a test: run with `node test/kernels/bench-matmul.mjs [M N K]` after `npm run build:wasm`.
import { readFileSync } from 'node:fs';

const wasm = readFileSync(new URL('../../build/kernels.wasm', import.meta.url));
const memory = new WebAssembly.Memory({ initial: 512, maximum: 65536, shared: true });
const { exports: k } = new WebAssembly.Instance(new WebAssembly.Module(wasm), {
  env: {
    memory,
    abort: () => {
      throw new Error('abort');
    },
  },
});

const [M, N, K] = process.argv.length >= 5 ? process.argv.slice(2, 5).map(Number) : [256, 512, 512];
let top = 65536;
const alloc = (n) => {
  const o = top;
  top += Math.ceil((n * 4) / 64) * 64;
  return o;
};
const pa = alloc(M * K),
  pb = alloc(N * K),
  pout = alloc(M * N);
const f = (o, n) => new Float32Array(memory.buffer, o, n);
let seed = 1;
// biome-ignore lint/suspicious/noAssignInExpressions: a one-line LCG
const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
f(pa, M * K).forEach((_, i, arr) => {
  arr[i] = rnd();
});
f(pb, N * K).forEach((_, i, arr) => {
  arr[i] = rnd();
});

function refNT(out, a, b) {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let q = 0; q < K; q++) s += a[i * K + q] * b[j * K + q];
      out[i * N + j] = s;
    }
}
function refNN(out, a, b) {
  // a (M,K), b (K,N)
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let q = 0; q < K; q++) s += a[i * K + q] * b[q * N + j];
      out[i * N + j] = s;
    }
}
function refTN(out, a, b) {
  // a (K,M), b (K,N)
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let q = 0; q < K; q++) s += a[q * M + i] * b[q * N + j];
      out[i * N + j] = s;
    }
}

function time(fn, minMs = 400) {
  fn();
  fn();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    fn();
    reps++;
  }
  return (performance.now() - t0) / reps;
}
const flops = 2 * M * N * K;
const gf = (ms) => (flops / ms / 1e6).toFixed(2);
const a = f(pa, M * K).slice(),
  b = f(pb, N * K).slice(),
  out = new Float32Array(M * N);
console.log(`M=${M} N=${N} K=${K}`);
for (const [name, wfn, rfn] of [
  ['matmulNT', k.matmulNT, refNT],
  ['matmulNN', k.matmulNN, refNN],
  ['matmulTN', k.matmulTN, refTN],
]) {
  const tw = time(() => wfn(pout, pa, pb, M, N, K, 0));
  const tr = time(() => rfn(out, a, b), 200);
  console.log(
    `${name}: wasm ${tw.toFixed(2)} ms = ${gf(tw)} GFLOP/s;  ref ${tr.toFixed(1)} ms = ${gf(tr)} GFLOP/s;  x${(tr / tw).toFixed(1)}`,
  );
}
