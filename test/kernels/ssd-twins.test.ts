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
import { mamba3WorkSize, ssdWorkSize } from '../../src/kernels/ssd-work.js';
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

/** Scan shapes for the MIMO kernels: B, L, H, P, G, N, S, R, chunk, halves (R 1 with pairwise turns is SISO). */
const MIMO_SHAPES: [number, number, number, number, number, number, number, number, number, boolean][] = [
  [2, 11, 4, 3, 2, 6, 3, 2, 4, true],
  [1, 9, 3, 5, 3, 10, 5, 3, 16, true],
  [2, 13, 2, 4, 2, 14, 2, 4, 5, true],
  [2, 7, 2, 7, 1, 5, 2, 1, 3, false],
];
const SCAN_INPUTS = ['x', 'adt', 'dt', 'trap', 'Bn', 'Cn', 'Bb', 'Cb', 'ang', 'D'] as const;

/** Random scan inputs (x is v, the ranks' input) and non-zero states (angles in [0, 6)) of one MIMO shape. */
function mimoScanData(B: number, L: number, H: number, P: number, G: number, N: number, S: number, R: number) {
  const BL = B * L;
  return {
    inputs: {
      x: rnd(BL * H * R * P),
      adt: rnd(BL * H, 0.3, -0.5),
      dt: pos(BL * H),
      trap: Float32Array.from({ length: BL * H }, () => r.uniform()),
      Bn: rnd(BL * R * G * N),
      Cn: rnd(BL * R * G * N),
      Bb: rnd(H * R * N, 0.3, 1),
      Cb: rnd(H * R * N, 0.3, 1),
      ang: rnd(BL * S, 2),
      D: rnd(H),
    },
    states: {
      h: rnd(B * H * P * N),
      th: Float32Array.from({ length: B * H * S }, () => 6 * r.uniform()),
      kp: rnd(B * H * R * N),
      vp: rnd(B * H * R * P),
    },
  };
}

/**
 * MIMO's scan from random non-zero states. Same 2e-5 as SISO: both sides round to f32 on every
 * store, the wasm sums the state in lanes of four and takes exp, tanh, sin and cos from f32
 * polynomials (~1e-7 relative each); with α = exp(ADT) < 1 those errors are damped, not
 * compounded, along the tokens.
 */
describe('Mamba-3 MIMO scan forward twin', () => {
  it.each(MIMO_SHAPES)(
    'B=%i L=%i H=%i P=%i G=%i N=%i S=%i R=%i chunk=%i halves=%s: outputs, final state and checkpoints',
    (B, L, H, P, G, N, S, R, chunk, halves) => {
      const { inputs, states } = mimoScanData(B, L, H, P, G, N, S, R);
      const t = place({
        o: rnd(B * L * H * R * P),
        ...states,
        hck: rnd(B * Math.ceil(L / chunk) * H * (P * N + S + R * N + R * P)),
        ...inputs,
        work: new Float32Array(2 * R * N),
      });
      const names = ['o', 'h', 'th', 'kp', 'vp', 'hck', ...SCAN_INPUTS, 'work'] as const,
        sizes = [B, L, H, P, G, N, S, R, chunk] as const,
        p = names.map((k) => t.p[k]),
        a = names.map((k) => t.r[k]);
      // biome-ignore format: one argument per array, in the kernel's order
      wk.mamba3MimoScanForward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15], p[16], ...sizes, halves ? 1 : 0);
      // biome-ignore format: as above
      ref.mamba3MimoScanForward(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], ...sizes, halves);
      for (const k of ['o', 'h', 'th', 'kp', 'vp', 'hck']) close(`mamba3MimoScanForward ${k}`, t.got(k), t.r[k], 2e-5);
      t.free();
    },
  );
});

/**
 * The scan backward (SISO through R 1 with pairwise turns) from the reference forward's checkpoints
 * of random non-zero states; every gradient starts at random values, so overwrite-vs-accumulate
 * mistakes show, and work starts as garbage. The forward's 2e-5 of each gradient's largest value:
 * the gradients are f32 sums over the state and the tokens of a chunk, in lanes of four on one side
 * (about 1e-6 seen on these shapes).
 */
describe('Mamba-3 scan backward twin', () => {
  it.each(MIMO_SHAPES)(
    'B=%i L=%i H=%i P=%i G=%i N=%i S=%i R=%i chunk=%i halves=%s: every gradient',
    (B, L, H, P, G, N, S, R, chunk, halves) => {
      const { inputs, states: st } = mimoScanData(B, L, H, P, G, N, S, R),
        hck = new Float32Array(B * Math.ceil(L / chunk) * H * (P * N + S + R * N + R * P)),
        sizes = [B, L, H, P, G, N, S, R, chunk] as const,
        i = SCAN_INPUTS.map((k) => inputs[k]);
      // biome-ignore format: one argument per array, in the kernel's order
      ref.mamba3MimoScanForward(new Float32Array(B * L * H * R * P), st.h, st.th, st.kp, st.vp, hck, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], new Float32Array(2 * R * N), ...sizes, halves);
      const grads = ['dx', 'dadt', 'ddt', 'dtrap', 'dBn', 'dCn', 'dBb', 'dCb', 'dang', 'dD'] as const;
      const t = place({
        ...Object.fromEntries(grads.map((g, k) => [g, rnd(i[k].length)])),
        dy: rnd(B * L * H * R * P),
        ...inputs,
        hck,
        work: rnd(mamba3WorkSize(P, N, S, R, chunk), 1e3),
      });
      const names = [...grads, 'dy', ...SCAN_INPUTS, 'hck', 'work'] as const,
        p = names.map((k) => t.p[k]),
        a = names.map((k) => t.r[k]);
      // biome-ignore format: one argument per array, in the kernel's order
      wk.mamba3MimoScanBackward(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17], p[18], p[19], p[20], p[21], p[22], ...sizes, halves ? 1 : 0);
      // biome-ignore format: as above
      ref.mamba3MimoScanBackward(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22], ...sizes, halves);
      for (const k of grads) close(`mamba3MimoScanBackward ${k}`, t.got(k), t.r[k], 2e-5);
      t.free();
    },
  );
});

describe('Mamba-3 MIMO rank projection twins', () => {
  // products and sums of R terms, each rounded to f32 on both sides: 1e-5 of the largest value
  it.each([
    [3, 2, 3, 5],
    [2, 3, 4, 8],
    [5, 1, 1, 3],
  ])('M=%i H=%i R=%i P=%i: up and down, forward and backward, with and without each gradient', (M, H, R, P) => {
    const t = place({
      up: rnd(M * H * R * P),
      down: rnd(M * H * P),
      x: rnd(M * H * P),
      ranked: rnd(M * H * R * P),
      w: rnd(H * R * P),
      dx: rnd(M * H * P),
      dO: rnd(M * H * R * P),
      dwUp: rnd(H * R * P),
      dwDown: rnd(H * R * P),
    });
    const { p, r: a } = t;
    wk.mimoUpForward(p.up, p.x, p.w, M, H, R, P);
    ref.mimoUpForward(a.up, a.x, a.w, M, H, R, P);
    wk.mimoDownForward(p.down, p.ranked, p.w, M, H, R, P);
    ref.mimoDownForward(a.down, a.ranked, a.w, M, H, R, P);
    // the up-projection's gradient comes from a ranked dout, the down-projection's from a plain one
    wk.mimoUpBackward(p.dx, p.dwUp, p.ranked, p.x, p.w, M, H, R, P);
    ref.mimoUpBackward(a.dx, a.dwUp, a.ranked, a.x, a.w, M, H, R, P);
    wk.mimoDownBackward(p.dO, p.dwDown, p.x, p.ranked, p.w, M, H, R, P);
    ref.mimoDownBackward(a.dO, a.dwDown, a.x, a.ranked, a.w, M, H, R, P);
    wk.mimoUpBackward(0, p.dwDown, p.ranked, p.x, p.w, M, H, R, P);
    ref.mimoUpBackward(null, a.dwDown, a.ranked, a.x, a.w, M, H, R, P);
    wk.mimoDownBackward(p.dO, 0, p.x, p.ranked, p.w, M, H, R, P);
    ref.mimoDownBackward(a.dO, null, a.x, a.ranked, a.w, M, H, R, P);
    for (const k of ['up', 'down', 'dx', 'dO', 'dwUp', 'dwDown']) close(`MIMO projections ${k}`, t.got(k), a[k], 1e-5);
    t.free();
  });
});
