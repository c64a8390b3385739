import { describe, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import { loadWasmKernels } from '../../src/kernels/wasm/index.js';
import { TEST_BUILD } from '../helpers/wasm-twins.js';
import * as ref from '../../src/kernels/ref/index.js';
import { Rng } from '../../src/io/rng.js';
import { expectClose } from '../helpers/compare.js';

/**
 * The block kernels worker threads run (strided products, scan ranges, partial sums, quantised
 * strided products) against their reference twins, each called on a block in the middle of a
 * larger output, with the rest of the output left untouched.
 */
const heap = new Heap(64);
const w = loadWasmKernels(heap.memory, TEST_BUILD);
const rng = Rng.fromSeed(77);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

/** Copy values into the heap; returns the byte offset. */
function put(v: Float32Array | Int8Array | Uint8Array): number {
  const off = heap.alloc(v.byteLength);
  new Uint8Array(heap.memory.buffer, off, v.byteLength).set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  return off;
}
const getF = (off: number, n: number) => Float32Array.from(heap.f32(off, n));

describe('block kernels vs reference twins', () => {
  it.each([['NT'], ['NN'], ['TN']] as const)('matmul%sStrided on a block of a larger output', (kind) => {
    const Mf = 9,
      Nf = 23,
      K = 37,
      m0 = 2,
      n0 = 8,
      M = 5,
      N = 11;
    const aRows = kind === 'TN' ? K : Mf,
      aCols = kind === 'TN' ? Mf : K;
    const a = rand(aRows * aCols),
      b = rand(kind === 'NT' ? Nf * K : K * Nf),
      out0 = rand(Mf * Nf);
    const pa = put(a),
      pb = put(b),
      po = put(out0);
    const want = Float32Array.from(out0);
    const oOff = m0 * Nf + n0;
    if (kind === 'NT') {
      w.matmulNTStrided(po + oOff * 4, pa + m0 * K * 4, pb + n0 * K * 4, M, N, K, 1, Nf);
      ref.matmulNTStrided(want.subarray(oOff), a.subarray(m0 * K), b.subarray(n0 * K), M, N, K, 1, Nf);
    } else if (kind === 'NN') {
      w.matmulNNStrided(po + oOff * 4, pa + m0 * K * 4, pb + n0 * 4, M, N, K, 1, K, Nf, Nf);
      ref.matmulNNStrided(want.subarray(oOff), a.subarray(m0 * K), b.subarray(n0), M, N, K, 1, K, Nf, Nf);
    } else {
      w.matmulTNStrided(po + oOff * 4, pa + m0 * 4, pb + n0 * 4, M, N, K, 1, Mf, Nf, Nf);
      ref.matmulTNStrided(want.subarray(oOff), a.subarray(m0), b.subarray(n0), M, N, K, 1, Mf, Nf, Nf);
    }
    expectClose(getF(po, Mf * Nf), want, 1e-5, `matmul${kind}Strided`);
  });

  it('accumulatePartials adds the partials in order', () => {
    const G = 5,
      n = 37,
      ld = 41;
    const p = rand(G * ld),
      d0 = rand(n);
    const pp = put(p),
      pd = put(d0);
    const want = Float32Array.from(d0);
    w.accumulatePartials(pd, pp, G, n, ld);
    ref.accumulatePartials(want, p, G, n, ld);
    expectClose(getF(pd, n), want, 1e-6, 'accumulatePartials');
  });

  // the second shape runs whole groups of four channels (N = 16, ED a multiple of 4) with single
  // channels at both ends of the range
  it.each([
    { B: 2, L: 11, ED: 7, N: 5, chunk: 4, c0: 3, c1: 11 },
    { B: 2, L: 10, ED: 12, N: 16, chunk: 4, c0: 2, c1: 21 },
  ])('scanForwardRange and scanBackwardRange on a middle range, $ED channels, N = $N', ({ B, L, ED, N, chunk, c0, c1 }) => {
    const nC = Math.ceil(L / chunk);
    const x = rand(B * L * ED),
      delta = rand(B * L * ED).map((v) => Math.abs(v) * 0.3 + 0.01),
      A = rand(ED * N).map((v) => -Math.abs(v) - 0.1);
    const Bm = rand(B * L * N),
      Cm = rand(B * L * N),
      D = rand(ED),
      h0 = rand(B * ED * N),
      y0 = rand(B * L * ED);
    const ck0 = new Float32Array(B * nC * ED * N);
    const px = put(x),
      pdl = put(delta),
      pA = put(A),
      pB = put(Bm),
      pC = put(Cm),
      pD = put(D);
    const py = put(y0),
      ph = put(h0),
      pck = put(ck0);
    w.scanForwardRange(py, ph, pck, px, pdl, pA, pB, pC, pD, B, L, ED, N, chunk, c0, c1);
    const y = Float32Array.from(y0),
      h = Float32Array.from(h0),
      ck = Float32Array.from(ck0);
    ref.scanForwardRange(y, h, ck, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk, c0, c1);
    expectClose(getF(py, y.length), y, 1e-5, 'scanForwardRange y');
    expectClose(getF(ph, h.length), h, 1e-5, 'scanForwardRange h');
    // backward over channels [2, 5) with full checkpoints from a zero-state forward
    const hz = new Float32Array(B * ED * N),
      full = new Float32Array(B * nC * ED * N);
    ref.scanForward(new Float32Array(B * L * ED), hz, full, x, delta, A, Bm, Cm, D, B, L, ED, N, chunk);
    const dy = rand(B * L * ED);
    const g0 = [rand(B * L * ED), rand(B * L * ED), rand(ED * N), rand(B * L * N), rand(B * L * N), rand(ED)];
    const pg = g0.map(put),
      pdy = put(dy),
      pfull = put(full),
      pwork = put(new Float32Array((2 * chunk + 1) * N));
    w.scanBackwardRange(pg[0], pg[1], pg[2], pg[3], pg[4], pg[5], 0, pdy, px, pdl, pA, pB, pC, pD, pfull, pwork, B, L, ED, N, chunk, 2, 5);
    const gr = g0.map((v) => Float32Array.from(v));
    ref.scanBackwardRange(
      gr[0],
      gr[1],
      gr[2],
      gr[3],
      gr[4],
      gr[5],
      null,
      dy,
      x,
      delta,
      A,
      Bm,
      Cm,
      D,
      full,
      new Float32Array((2 * chunk + 1) * N),
      B,
      L,
      ED,
      N,
      chunk,
      2,
      5,
    );
    ['dx', 'ddelta', 'dA', 'dB', 'dC', 'dD'].forEach((name, i) =>
      expectClose(getF(pg[i], gr[i].length), gr[i], 1e-5, `scanBackwardRange ${name}`),
    );
  });

  it.each(['q8', 'q4'] as const)('matmul %s strided on a block of columns', (f) => {
    const M = 3,
      Nf = 21,
      K = 64,
      n0 = 6,
      N = 9;
    const wv = rand(Nf * K),
      xv = rand(M * K);
    const qw = f === 'q8' ? new Int8Array(Nf * K) : new Uint8Array((Nf * K) / 2),
      sw = new Float32Array((Nf * K) / 32);
    if (f === 'q8') ref.quantizeQ8(qw as Int8Array, sw, wv, Nf, K);
    else ref.quantizeQ4(qw as Uint8Array, sw, wv, Nf, K);
    const qx = new Int8Array(M * K),
      sx = new Float32Array((M * K) / 32);
    ref.quantizeQ8(qx, sx, xv, M, K);
    const out0 = rand(M * Nf),
      po = put(out0);
    const rowBytes = f === 'q8' ? K : K / 2;
    const args = [put(qx), put(sx), put(qw) + n0 * rowBytes, put(sw) + n0 * (K / 32) * 4] as const;
    const want = Float32Array.from(out0);
    if (f === 'q8') {
      w.matmulQ8Strided(po + n0 * 4, args[0], args[1], args[2], args[3], M, N, K, Nf);
      ref.matmulQ8Strided(want.subarray(n0), qx, sx, (qw as Int8Array).subarray(n0 * rowBytes), sw.subarray((n0 * K) / 32), M, N, K, Nf);
    } else {
      w.matmulQ4Strided(po + n0 * 4, args[0], args[1], args[2], args[3], M, N, K, Nf);
      ref.matmulQ4Strided(want.subarray(n0), qx, sx, (qw as Uint8Array).subarray(n0 * rowBytes), sw.subarray((n0 * K) / 32), M, N, K, Nf);
    }
    expectClose(getF(po, M * Nf), want, 1e-5, `matmul ${f} strided`);
  });
});

describe('fused residual add + RMSNorm', () => {
  it.each([
    [3, 48],
    [2, 13],
  ])('addRmsnormForward (%i rows, D %i) equals its twin, in place too', (rows, D) => {
    const h = rand(rows * D),
      d = rand(rows * D),
      wv = rand(D);
    const ph = put(h),
      pd = put(d),
      pw = put(wv),
      pu = put(new Float32Array(rows * D)),
      pr = put(new Float32Array(rows));
    w.addRmsnormForward(ph, pu, pr, ph, pd, pw, rows, D, 1e-5);
    const hh = Float32Array.from(h),
      u = new Float32Array(rows * D),
      r = new Float32Array(rows);
    ref.addRmsnormForward(hh, u, r, hh, d, wv, rows, D, 1e-5);
    expectClose(getF(ph, rows * D), hh, 1e-6, 'residual');
    expectClose(getF(pu, rows * D), u, 1e-5, 'normed');
    expectClose(getF(pr, rows), r, 1e-5, 'rstd');
  });
});
