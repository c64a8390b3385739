// Quick single-thread throughput check of the non-matmul wasm kernels against the reference
// kernels. Not a test: run `npm run build:wasm && npm run build:ts` (for dist/kernels/ref), then
// `node test/kernels/bench-kernels.mjs`.
import { readFileSync } from 'node:fs';
import * as ref from '../../dist/kernels/ref/index.js';

const wasm = readFileSync(new URL('../../build/kernels.wasm', import.meta.url));
const memory = new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true });
const { exports: k } = new WebAssembly.Instance(new WebAssembly.Module(wasm), {
  env: {
    memory,
    abort: () => {
      throw new Error('abort');
    },
  },
});
let top = 65536;
let seed = 7;
// biome-ignore lint/suspicious/noAssignInExpressions: a one-line LCG
const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
/** allocate n f32 filled from gen; returns [offset, Float32Array copy] */
function arr(n, lo = -1, hi = 1) {
  const o = top;
  top += Math.ceil((n * 4) / 64) * 64 + 64;
  const v = new Float32Array(memory.buffer, o, n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * rnd();
  return [o, v.slice()];
}
function time(fn, minMs = 300) {
  fn();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    fn();
    reps++;
  }
  return (performance.now() - t0) / reps;
}
function report(name, tw, tr) {
  console.log(`${name.padEnd(44)} wasm ${tw.toFixed(3).padStart(8)} ms   ref ${tr.toFixed(3).padStart(8)} ms   x${(tr / tw).toFixed(1)}`);
}

{
  // scan: B=2, L=256, ED=512, N=16, chunk=64
  const B = 2,
    L = 256,
    ED = 512,
    N = 16,
    chunk = 64,
    nC = Math.ceil(L / chunk);
  const [x, rx] = arr(B * L * ED),
    [dl, rdl] = arr(B * L * ED, 0.001, 0.2),
    [A, rA] = arr(ED * N, -16, -1);
  const [Bm, rB] = arr(B * L * N),
    [Cm, rC] = arr(B * L * N),
    [D, rD] = arr(ED);
  const [y, ry] = arr(B * L * ED),
    [h, rh] = arr(B * ED * N),
    [hck, rhck] = arr(B * nC * ED * N);
  const tw = time(() => k.scanForward(y, h, hck, x, dl, A, Bm, Cm, D, B, L, ED, N, chunk));
  const tr = time(() => ref.scanForward(ry, rh, rhck, rx, rdl, rA, rB, rC, rD, B, L, ED, N, chunk));
  report(`scanForward B${B} L${L} ED${ED} N${N}`, tw, tr);
  const [dx, rdx] = arr(B * L * ED),
    [dd, rdd] = arr(B * L * ED),
    [dA, rdA] = arr(ED * N),
    [dB, rdB] = arr(B * L * N);
  const [dC, rdC] = arr(B * L * N),
    [dD, rdD] = arr(ED),
    [dy, rdy] = arr(B * L * ED),
    [work, rwork] = arr((2 * chunk + 1) * N);
  const tw2 = time(() => k.scanBackward(dx, dd, dA, dB, dC, dD, 0, dy, x, dl, A, Bm, Cm, D, hck, work, B, L, ED, N, chunk));
  const tr2 = time(() =>
    ref.scanBackward(rdx, rdd, rdA, rdB, rdC, rdD, null, rdy, rx, rdl, rA, rB, rC, rD, rhck, rwork, B, L, ED, N, chunk),
  );
  report(`scanBackward B${B} L${L} ED${ED} N${N}`, tw2, tr2);
  const tw3 = time(() => k.scanStep(y, h, x, dl, A, Bm, Cm, D, 8, ED, N));
  const tr3 = time(() => ref.scanStep(ry, rh, rx, rdl, rA, rB, rC, rD, 8, ED, N));
  report(`scanStep B8 ED${ED} N${N}`, tw3, tr3);
}
{
  // conv: B=2, L=256, C=512, K=4
  const B = 2,
    L = 256,
    C = 512,
    K = 4;
  const [out, ro] = arr(B * L * C),
    [x, rx] = arr(B * L * C),
    [w, rw] = arr(C * K),
    [b, rb] = arr(C);
  report(
    'conv1dForward B2 L256 C512 K4',
    time(() => k.conv1dForward(out, x, w, b, B, L, C, K)),
    time(() => ref.conv1dForward(ro, rx, rw, rb, B, L, C, K)),
  );
  const [dx, rdx] = arr(B * L * C),
    [dw, rdw] = arr(C * K),
    [db, rdb] = arr(C);
  report(
    'conv1dBackward B2 L256 C512 K4',
    time(() => k.conv1dBackward(dx, dw, db, out, x, w, B, L, C, K)),
    time(() => ref.conv1dBackward(rdx, rdw, rdb, ro, rx, rw, B, L, C, K)),
  );
}
{
  // elementwise / norm / loss, n = 2^18
  const n = 1 << 18;
  const [x, rx] = arr(n, -8, 8),
    [y, ry] = arr(n),
    [o, ro] = arr(n);
  report(
    'siluForward n=262144',
    time(() => k.siluForward(o, x, n)),
    time(() => ref.siluForward(ro, rx, n)),
  );
  report(
    'siluBackward n=262144',
    time(() => k.siluBackward(o, y, x, n)),
    time(() => ref.siluBackward(ro, ry, rx, n)),
  );
  report(
    'softplusForward n=262144',
    time(() => k.softplusForward(o, x, n)),
    time(() => ref.softplusForward(ro, rx, n)),
  );
  report(
    'add n=262144',
    time(() => k.add(o, x, y, n)),
    time(() => ref.add(ro, rx, ry, n)),
  );
  const rows = 512,
    D = 512;
  const [rs, rrs] = arr(rows),
    [wt, rwt] = arr(D);
  report(
    'rmsnormForward 512x512',
    time(() => k.rmsnormForward(o, rs, x, wt, rows, D, 1e-5)),
    time(() => ref.rmsnormForward(ro, rrs, rx, rwt, rows, D, 1e-5)),
  );
  report(
    'rmsnormBackward 512x512',
    time(() => k.rmsnormBackward(o, wt, y, x, wt, rs, rows, D)),
    time(() => ref.rmsnormBackward(ro, rwt, ry, rx, rwt, rrs, rows, D)),
  );
  const V = 256,
    R = 1024;
  const [lg, rlg] = arr(R * V, -5, 5),
    [ls, rls] = arr(R),
    [lse, rlse] = arr(R);
  const tg = top;
  top += R * 4 + 64;
  const rtg = new Int32Array(R);
  for (let i = 0; i < R; i++) rtg[i] = i % V;
  new Int32Array(memory.buffer, tg, R).set(rtg);
  report(
    'crossEntropyForward 1024x256',
    time(() => k.crossEntropyForward(ls, lse, lg, tg, R, V)),
    time(() => ref.crossEntropyForward(rls, rlse, rlg, rtg, R, V)),
  );
  report(
    'crossEntropyBackward 1024x256',
    time(() => k.crossEntropyBackward(o, ls, lg, lse, tg, R, V)),
    time(() => ref.crossEntropyBackward(ro, rls, rlg, rlse, rtg, R, V)),
  );
  const [m, rm] = arr(n, -0.01, 0.01),
    [v, rv] = arr(n, 0, 1e-4);
  report(
    'adamwStep n=262144',
    time(() => k.adamwStep(o, y, m, v, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5, 0.5)),
    time(() => ref.adamwStep(ro, ry, rm, rv, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5, 0.5)),
  );
}
