/**
 * Mamba-2's WebAssembly kernels (assembly/ssd.ts, assembly/mamba2.ts) against their reference
 * twins (src/kernels/ref/ssd.ts, mamba2.ts) on seeded random inputs, odd sizes included. Outputs
 * and accumulated gradients start at non-zero random values in both, so overwrite-vs-accumulate
 * mistakes show. Criterion: max abs error ≤ tol · max|ref| (the SSD sums in another order
 * through the GEMMs: 2e-5; elementwise kernels 1e-5).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import * as ref from '../../src/kernels/ref/index.js';
import { loadWasmKernels } from '../../src/kernels/wasm/index.js';
import { TEST_BUILD } from '../helpers/wasm-twins.js';
import type { WasmKernels } from '../../src/kernels/wasm/index.js';
import { ssdWorkSize } from '../../src/kernels/ssd-work.js';
import { Rng } from '../../src/io/rng.js';

let heap: Heap;
let wk: WasmKernels;
beforeAll(() => {
  heap = new Heap(256);
  wk = loadWasmKernels(heap.memory, TEST_BUILD);
});

/** Arrays placed in the heap (offsets p) and copied for the reference (r); got(name) reads one back. */
function place(inputs: Record<string, Float32Array>) {
  const p: Record<string, number> = {},
    r: Record<string, Float32Array> = {};
  for (const [k, a] of Object.entries(inputs)) {
    p[k] = heap.alloc(Math.max(4, a.byteLength));
    heap.f32(p[k], a.length).set(a);
    r[k] = a.slice();
  }
  return {
    p,
    r,
    got: (k: string) => heap.f32(p[k], inputs[k].length).slice(),
    free: () => {
      for (const k of Object.keys(p)) heap.release(p[k]);
    },
  };
}

function close(name: string, got: Float32Array, want: Float32Array, tol: number): void {
  let err = 0,
    scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  expect(err, `${name}: max abs error ${err} vs max|ref| ${scale}`).toBeLessThanOrEqual(tol * scale);
}

const r = Rng.fromSeed(77);
const rnd = (n: number, s = 1, o = 0) => Float32Array.from({ length: n }, () => o + s * r.normal());
const pos = (n: number) => Float32Array.from({ length: n }, () => Math.log1p(Math.exp(r.normal() - 1)));

interface Dims {
  B: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
  Q: number;
}
const SHAPES: Dims[] = [
  { B: 2, L: 13, H: 4, P: 5, G: 2, N: 7, Q: 4 }, // partial chunks, odd P and N
  { B: 1, L: 40, H: 2, P: 8, G: 1, N: 16, Q: 16 }, // L not a multiple of Q, widths of whole vectors
  { B: 1, L: 3, H: 3, P: 3, G: 3, N: 3, Q: 8 }, // L < Q, one group per head
  { B: 2, L: 1, H: 2, P: 4, G: 1, N: 5, Q: 256 }, // one token
];

function ssdInputs(d: Dims) {
  const { B, L, H, P, G, N, Q } = d;
  return {
    y: rnd(B * L * H * P),
    h: rnd(B * H * P * N),
    hck: rnd(B * Math.ceil(L / Q) * H * P * N),
    x: rnd(B * L * H * P),
    delta: pos(B * L * H),
    A: Float32Array.from({ length: H }, () => -Math.exp(0.5 * r.normal())),
    Bm: rnd(B * L * G * N),
    Cm: rnd(B * L * G * N),
    D: rnd(H),
    work: new Float32Array(ssdWorkSize(B, H, P, N, Q)),
  };
}

describe.each(SHAPES)('SSD twins B=$B L=$L H=$H P=$P G=$G N=$N Q=$Q', (d) => {
  const { B, L, H, P, G, N, Q } = d;

  it('ssdChunkForward (outputs, final state, chunk states)', () => {
    const t = place(ssdInputs(d));
    wk.ssdChunkForward(t.p.y, t.p.h, t.p.hck, t.p.x, t.p.delta, t.p.A, t.p.Bm, t.p.Cm, t.p.D, t.p.work, B, L, H, P, G, N, Q);
    ref.ssdChunkForward(t.r.y, t.r.h, t.r.hck, t.r.x, t.r.delta, t.r.A, t.r.Bm, t.r.Cm, t.r.D, t.r.work, B, L, H, P, G, N, Q);
    for (const k of ['y', 'h', 'hck']) close(`ssdChunkForward ${k}`, t.got(k), t.r[k], 2e-5);
    t.free();
  });

  it('ssdChunkBackward (every gradient, with and without dh0)', () => {
    for (const withDh0 of [true, false]) {
      const base = ssdInputs(d);
      const hck = new Float32Array(base.hck.length);
      ref.ssdChunkForward(
        new Float32Array(base.y.length),
        base.h.slice(),
        hck,
        base.x,
        base.delta,
        base.A,
        base.Bm,
        base.Cm,
        base.D,
        base.work,
        B,
        L,
        H,
        P,
        G,
        N,
        Q,
      );
      const t = place({
        ...base,
        hck,
        dy: rnd(base.y.length),
        dx: rnd(base.x.length),
        ddelta: rnd(base.delta.length),
        dA: rnd(H),
        dB: rnd(base.Bm.length),
        dC: rnd(base.Cm.length),
        dD: rnd(H),
        dh0: rnd(base.h.length),
      });
      wk.ssdChunkBackward(
        t.p.dx,
        t.p.ddelta,
        t.p.dA,
        t.p.dB,
        t.p.dC,
        t.p.dD,
        withDh0 ? t.p.dh0 : 0,
        t.p.dy,
        t.p.x,
        t.p.delta,
        t.p.A,
        t.p.Bm,
        t.p.Cm,
        t.p.D,
        t.p.hck,
        t.p.work,
        B,
        L,
        H,
        P,
        G,
        N,
        Q,
      );
      ref.ssdChunkBackward(
        t.r.dx,
        t.r.ddelta,
        t.r.dA,
        t.r.dB,
        t.r.dC,
        t.r.dD,
        withDh0 ? t.r.dh0 : null,
        t.r.dy,
        t.r.x,
        t.r.delta,
        t.r.A,
        t.r.Bm,
        t.r.Cm,
        t.r.D,
        t.r.hck,
        t.r.work,
        B,
        L,
        H,
        P,
        G,
        N,
        Q,
      );
      for (const k of ['dx', 'ddelta', 'dA', 'dB', 'dC', 'dD', 'dh0']) close(`ssdChunkBackward ${k}`, t.got(k), t.r[k], 2e-5);
      t.free();
    }
  });

  it('ssdRecurrent', () => {
    const t = place(ssdInputs(d));
    wk.ssdRecurrent(t.p.y, t.p.h, t.p.x, t.p.delta, t.p.A, t.p.Bm, t.p.Cm, t.p.D, B, L, H, P, G, N);
    ref.ssdRecurrent(t.r.y, t.r.h, t.r.x, t.r.delta, t.r.A, t.r.Bm, t.r.Cm, t.r.D, B, L, H, P, G, N);
    for (const k of ['y', 'h']) close(`ssdRecurrent ${k}`, t.got(k), t.r[k], 1e-5);
    t.free();
  });
});

describe('Mamba-2 elementwise twins', () => {
  it.each([
    [7, 5, 0, Infinity],
    [3, 12, 0.2, 0.9],
  ])('dtSoftplusForward / Backward, %i rows of %i heads, clamp [%f, %f]', (rows, H, lo, hi) => {
    const t = place({ out: rnd(rows * H), dt: rnd(rows * H, 3), bias: rnd(H), ddt: rnd(rows * H), dbias: rnd(H), dout: rnd(rows * H) });
    wk.dtSoftplusForward(t.p.out, t.p.dt, t.p.bias, rows, H, lo, hi);
    ref.dtSoftplusForward(t.r.out, t.r.dt, t.r.bias, rows, H, lo, hi);
    wk.dtSoftplusBackward(t.p.ddt, t.p.dbias, t.p.dout, t.p.dt, t.p.bias, rows, H, lo, hi);
    ref.dtSoftplusBackward(t.r.ddt, t.r.dbias, t.r.dout, t.r.dt, t.r.bias, rows, H, lo, hi);
    for (const k of ['out', 'ddt', 'dbias']) close(`dtSoftplus ${k}`, t.got(k), t.r[k], 1e-5);
    t.free();
  });

  it.each([
    [5, 12, 4],
    [3, 13, 13],
    [2, 64, 32],
  ])('gatedRmsnormForward / Backward, %i rows of %i in groups of %i', (rows, D, gs) => {
    const n = rows * D;
    const t = place({
      out: rnd(n),
      rstd: rnd((rows * D) / gs),
      y: rnd(n),
      z: rnd(n, 2),
      w: rnd(D, 0.3, 1),
      dy: rnd(n),
      dz: rnd(n),
      dw: rnd(D),
      dout: rnd(n),
    });
    wk.gatedRmsnormForward(t.p.out, t.p.rstd, t.p.y, t.p.z, t.p.w, rows, D, gs, 1e-5);
    ref.gatedRmsnormForward(t.r.out, t.r.rstd, t.r.y, t.r.z, t.r.w, rows, D, gs, 1e-5);
    close('gatedRmsnormForward out', t.got('out'), t.r.out, 1e-5);
    close('gatedRmsnormForward rstd', t.got('rstd'), t.r.rstd, 1e-5);
    wk.gatedRmsnormBackward(t.p.dy, t.p.dz, t.p.dw, t.p.dout, t.p.y, t.p.z, t.p.w, t.p.rstd, rows, D, gs);
    ref.gatedRmsnormBackward(t.r.dy, t.r.dz, t.r.dw, t.r.dout, t.r.y, t.r.z, t.r.w, t.r.rstd, rows, D, gs);
    for (const k of ['dy', 'dz', 'dw']) close(`gatedRmsnormBackward ${k}`, t.got(k), t.r[k], 1e-5);
    t.free();
  });
});

describe('Mamba-3 scan forward twin', () => {
  it.each([
    [2, 11, 4, 3, 2, 6, 2, 4],
    [1, 20, 2, 8, 1, 16, 8, 16],
    [1, 3, 3, 5, 3, 5, 1, 16],
  ])('B=%i L=%i H=%i P=%i G=%i N=%i S=%i chunk=%i: outputs, final state and checkpoints', (B, L, H, P, G, N, S, chunk) => {
    const nC = Math.ceil(L / chunk),
      W = P * N + S + N + P;
    const t = place({
      y: rnd(B * L * H * P),
      h: rnd(B * H * P * N),
      th: Float32Array.from({ length: B * H * S }, () => 6 * r.uniform()),
      kp: rnd(B * H * N),
      vp: rnd(B * H * P),
      hck: rnd(B * nC * H * W),
      x: rnd(B * L * H * P),
      adt: rnd(B * L * H, 0.3, -0.5),
      dt: pos(B * L * H),
      trap: Float32Array.from({ length: B * L * H }, () => r.uniform()),
      Bn: rnd(B * L * G * N),
      Cn: rnd(B * L * G * N),
      Bb: rnd(H * N, 0.3, 1),
      Cb: rnd(H * N, 0.3, 1),
      ang: rnd(B * L * S, 2),
      D: rnd(H),
      work: new Float32Array(2 * N),
    });
    wk.mamba3ScanForward(
      t.p.y,
      t.p.h,
      t.p.th,
      t.p.kp,
      t.p.vp,
      t.p.hck,
      t.p.x,
      t.p.adt,
      t.p.dt,
      t.p.trap,
      t.p.Bn,
      t.p.Cn,
      t.p.Bb,
      t.p.Cb,
      t.p.ang,
      t.p.D,
      t.p.work,
      B,
      L,
      H,
      P,
      G,
      N,
      S,
      chunk,
    );
    ref.mamba3ScanForward(
      t.r.y,
      t.r.h,
      t.r.th,
      t.r.kp,
      t.r.vp,
      t.r.hck,
      t.r.x,
      t.r.adt,
      t.r.dt,
      t.r.trap,
      t.r.Bn,
      t.r.Cn,
      t.r.Bb,
      t.r.Cb,
      t.r.ang,
      t.r.D,
      t.r.work,
      B,
      L,
      H,
      P,
      G,
      N,
      S,
      chunk,
    );
    for (const k of ['y', 'h', 'th', 'kp', 'vp', 'hck']) close(`mamba3ScanForward ${k}`, t.got(k), t.r[k], 2e-5);
    t.free();
  });
});
