/**
 * Every WebAssembly kernel against its reference twin (src/kernels/ref), on seeded random inputs
 * over several shapes including odd and tiny ones. Inputs live in a Heap; the reference runs on
 * Float32Array copies. Outputs (and accumulated gradients) start at non-zero random values in both,
 * so overwrite-vs-accumulate mistakes show. Criterion: max abs error ≤ 1e-5 · max|ref|.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { Heap } from '../../src/tensor/heap.js';
import * as ref from '../../src/kernels/ref/index.js';
import {
  loadWasmKernels,
  wasmKernelNames,
  getWasmModule,
  instantiateWasmKernels,
  WASM_URL,
  type WasmKernels,
} from '../../src/kernels/wasm/index.js';

// ------------------------------------------------------------------ helpers

/** mulberry32: tiny seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let rand = prng(12345);
const uni = (n: number, lo = -1, hi = 1): Float32Array => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
};
const ints = (n: number, hi: number): Int32Array => {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(rand() * hi);
  return a;
};

type Arr = Float32Array | Int32Array;

let heap: Heap;
let wk: WasmKernels;

/**
 * Copies `inputs` into the heap (offsets in `p`) and into fresh arrays for the reference (`r`).
 * `got(name)` reads an array back from the heap; `free()` releases the blocks.
 */
function place<T extends Record<string, Arr>>(inputs: T) {
  const p = {} as Record<keyof T, number>;
  const r = {} as T;
  for (const k of Object.keys(inputs) as (keyof T)[]) {
    const a = inputs[k];
    const off = heap.alloc(Math.max(4, a.byteLength));
    if (a instanceof Int32Array) heap.i32(off, a.length).set(a);
    else heap.f32(off, a.length).set(a);
    p[k] = off;
    r[k] = a.slice() as T[keyof T];
  }
  return {
    p,
    r,
    got: (k: keyof T): Float32Array => heap.f32(p[k], inputs[k].length).slice(),
    free: (): void => {
      for (const k of Object.keys(p) as (keyof T)[]) heap.release(p[k]);
    },
  };
}

/** max |got − want| ≤ tol · max|want|, with nmse and the worst element in the message. */
function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  expect(got.length, `${name}: length`).toBe(want.length);
  let maxErr = 0,
    maxRef = 0,
    se = 0,
    sr = 0,
    worst = -1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i],
      g = got[i];
    const e = Number.isFinite(w) ? Math.abs(g - w) : Object.is(g, w) ? 0 : Infinity;
    const ee = Number.isNaN(e) ? Infinity : e;
    if (ee > maxErr || worst < 0) {
      maxErr = Math.max(maxErr, ee);
      if (ee >= maxErr) worst = i;
    }
    if (Number.isFinite(w)) {
      maxRef = Math.max(maxRef, Math.abs(w));
      sr += w * w;
    }
    se += ee * ee;
  }
  const nmse = sr > 0 ? se / sr : se;
  const ok = maxErr <= tol * maxRef;
  expect(
    ok,
    `${name}: max abs err ${maxErr.toExponential(3)} > ${tol}·max|ref| (${maxRef.toExponential(3)}); ` +
      `nmse ${nmse.toExponential(3)}; worst [${worst}] got ${got[worst]} want ${want[worst]}`,
  ).toBe(true);
}

beforeAll(() => {
  heap = new Heap(64);
  wk = loadWasmKernels(heap.memory);
});

// ------------------------------------------------------------------ module

describe('wasm module', () => {
  it('exports every listed kernel, each with a reference twin', () => {
    const names = wasmKernelNames();
    for (const req of ['matmulNT', 'matmulNN', 'matmulTN', 'scanForward', 'scanBackward', 'scanStep']) {
      expect(names).toContain(req);
    }
    const refs = ref as unknown as Record<string, unknown>;
    const k = wk as unknown as Record<string, unknown>;
    for (const n of names) {
      expect(typeof k[n], n).toBe('function');
      expect(typeof refs[n], `ref twin of ${n}`).toBe('function');
    }
  });

  it('compiles once and can be instantiated again on another memory', () => {
    expect(getWasmModule()).toBe(getWasmModule());
    const h2 = new Heap(4);
    const k2 = instantiateWasmKernels(getWasmModule(), h2.memory);
    const a = h2.alloc(16),
      b = h2.alloc(16),
      o = h2.alloc(16);
    h2.f32(a, 4).set([1, 2, 3, 4]);
    h2.f32(b, 4).set([10, 20, 30, 40]);
    k2.add(o, a, b, 4);
    expect(Array.from(h2.f32(o, 4))).toEqual([11, 22, 33, 44]);
  });

  it("has no data segments or globals (nothing of its own in the heap's reserved first 64 KiB)", () => {
    const bytes = readFileSync(WASM_URL);
    let pos = 8;
    const leb = (): number => {
      let r = 0,
        sh = 0,
        b: number;
      do {
        b = bytes[pos++];
        r |= (b & 0x7f) << sh;
        sh += 7;
      } while (b & 0x80);
      return r >>> 0;
    };
    const ids: number[] = [];
    while (pos < bytes.length) {
      const id = bytes[pos++];
      const size = leb();
      ids.push(id);
      pos += size;
    }
    expect(ids).not.toContain(11); // data
    expect(ids).not.toContain(6); // globals (no stack pointer, no heap base)
  });
});

// ------------------------------------------------------------------ matmul

describe('matmul', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 5, 7],
    [17, 33, 65],
    [4, 8, 16],
    [2, 9, 3],
    [9, 2, 5],
    [64, 96, 80],
    [13, 260, 300],
    [5, 12, 1025],
    [7, 3, 0],
  ];
  for (const kind of ['NT', 'NN', 'TN'] as const) {
    for (const [M, N, K] of shapes) {
      for (const beta of [0, 1]) {
        it(`matmul${kind} ${M}x${N}x${K} beta=${beta}`, () => {
          rand = prng(M * 1000003 + N * 1009 + K * 7 + beta);
          const t = place({ out: uni(M * N), a: uni(M * K), b: uni(N * K) });
          const name = `matmul${kind}` as const;
          const [fast, twin] = (
            { NT: [wk.matmulNT, ref.matmulNT], NN: [wk.matmulNN, ref.matmulNN], TN: [wk.matmulTN, ref.matmulTN] } as const
          )[kind];
          fast(t.p.out, t.p.a, t.p.b, M, N, K, beta);
          twin(t.r.out, t.r.a, t.r.b, M, N, K, beta);
          expectClose(`${name} ${M}x${N}x${K} beta=${beta}`, t.got('out'), t.r.out);
          t.free();
        });
      }
    }
  }
});

// ------------------------------------------------------------------ scan

interface ScanShape {
  B: number;
  L: number;
  ED: number;
  N: number;
  chunk: number;
}
const scanShapes: ScanShape[] = [
  { B: 1, L: 1, ED: 1, N: 1, chunk: 1 },
  { B: 2, L: 7, ED: 3, N: 5, chunk: 3 },
  { B: 2, L: 33, ED: 5, N: 16, chunk: 8 },
  { B: 1, L: 40, ED: 4, N: 19, chunk: 16 },
  { B: 3, L: 10, ED: 2, N: 8, chunk: 4 },
  { B: 1, L: 20, ED: 3, N: 3, chunk: 7 },
  { B: 2, L: 24, ED: 2, N: 36, chunk: 24 },
  { B: 1, L: 9, ED: 2, N: 2, chunk: 100 },
];

function scanInputs(s: ScanShape) {
  const { B, L, ED, N, chunk } = s;
  const nChunks = Math.ceil(L / chunk);
  const A = uni(ED * N, -8, -0.05);
  A[0] = -40; // a very negative Δ·A somewhere: exp underflows toward 0
  return {
    x: uni(B * L * ED),
    delta: uni(B * L * ED, 0.001, 1),
    A,
    Bm: uni(B * L * N),
    Cm: uni(B * L * N),
    D: uni(ED),
    y: uni(B * L * ED),
    h: uni(B * ED * N),
    hck: uni(B * nChunks * ED * N),
  };
}

describe('scan', () => {
  for (const s of scanShapes) {
    const { B, L, ED, N, chunk } = s;
    const tag = `B${B} L${L} ED${ED} N${N} chunk${chunk}`;
    for (const withCk of [true, false]) {
      it(`scanForward ${tag}${withCk ? '' : ' (no hck)'}`, () => {
        rand = prng(B * 7 + L * 131 + ED * 17 + N * 3 + chunk + (withCk ? 1 : 0));
        const t = place(scanInputs(s));
        wk.scanForward(t.p.y, t.p.h, withCk ? t.p.hck : 0, t.p.x, t.p.delta, t.p.A, t.p.Bm, t.p.Cm, t.p.D, B, L, ED, N, chunk);
        ref.scanForward(t.r.y, t.r.h, withCk ? t.r.hck : null, t.r.x, t.r.delta, t.r.A, t.r.Bm, t.r.Cm, t.r.D, B, L, ED, N, chunk);
        expectClose(`scanForward y ${tag}`, t.got('y'), t.r.y);
        expectClose(`scanForward h ${tag}`, t.got('h'), t.r.h);
        expectClose(`scanForward hck ${tag}`, t.got('hck'), t.r.hck);
        t.free();
      });
    }
    for (const withDh0 of [true, false]) {
      it(`scanBackward ${tag}${withDh0 ? '' : ' (no dh0)'}`, () => {
        rand = prng(B * 11 + L * 13 + ED * 19 + N * 23 + chunk + (withDh0 ? 1 : 0));
        const inp = scanInputs(s);
        // checkpoints from the reference forward, shared by both backwards
        ref.scanForward(inp.y, inp.h, inp.hck, inp.x, inp.delta, inp.A, inp.Bm, inp.Cm, inp.D, B, L, ED, N, chunk);
        const t = place({
          dx: uni(B * L * ED),
          ddelta: uni(B * L * ED),
          dA: uni(ED * N),
          dB: uni(B * L * N),
          dC: uni(B * L * N),
          dD: uni(ED),
          dh0: uni(B * ED * N),
          dy: uni(B * L * ED),
          x: inp.x,
          delta: inp.delta,
          A: inp.A,
          Bm: inp.Bm,
          Cm: inp.Cm,
          D: inp.D,
          hck: inp.hck,
          work: new Float32Array((chunk + 1) * N),
        });
        wk.scanBackward(
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
          ED,
          N,
          chunk,
        );
        ref.scanBackward(
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
          ED,
          N,
          chunk,
        );
        for (const k of ['dx', 'ddelta', 'dA', 'dB', 'dC', 'dD', 'dh0'] as const) {
          expectClose(`scanBackward ${k} ${tag}`, t.got(k), t.r[k]);
        }
        t.free();
      });
    }
  }
  for (const [B, ED, N] of [
    [1, 1, 1],
    [2, 5, 16],
    [3, 7, 6],
    [2, 3, 21],
  ]) {
    it(`scanStep B${B} ED${ED} N${N}`, () => {
      rand = prng(B * 5 + ED * 77 + N);
      const t = place({
        y: uni(B * ED),
        h: uni(B * ED * N),
        x: uni(B * ED),
        delta: uni(B * ED, 0.001, 1),
        A: uni(ED * N, -8, -0.05),
        Bm: uni(B * N),
        Cm: uni(B * N),
        D: uni(ED),
      });
      for (let step = 0; step < 3; step++) {
        wk.scanStep(t.p.y, t.p.h, t.p.x, t.p.delta, t.p.A, t.p.Bm, t.p.Cm, t.p.D, B, ED, N);
        ref.scanStep(t.r.y, t.r.h, t.r.x, t.r.delta, t.r.A, t.r.Bm, t.r.Cm, t.r.D, B, ED, N);
      }
      expectClose(`scanStep y`, t.got('y'), t.r.y);
      expectClose(`scanStep h`, t.got('h'), t.r.h);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ conv1d

describe('conv1d', () => {
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [2, 9, 7, 4],
    [1, 3, 8, 4],
    [2, 12, 12, 3],
    [1, 10, 5, 5],
    [2, 6, 9, 1],
    [1, 17, 16, 2],
    [1, 2, 4, 6],
  ];
  for (const [B, L, C, K] of shapes) {
    const tag = `B${B} L${L} C${C} K${K}`;
    it(`conv1dForward ${tag}`, () => {
      rand = prng(B + L * 3 + C * 5 + K * 7);
      const t = place({ out: uni(B * L * C), x: uni(B * L * C), w: uni(C * K), bias: uni(C) });
      wk.conv1dForward(t.p.out, t.p.x, t.p.w, t.p.bias, B, L, C, K);
      ref.conv1dForward(t.r.out, t.r.x, t.r.w, t.r.bias, B, L, C, K);
      expectClose(`conv1dForward ${tag}`, t.got('out'), t.r.out);
      t.free();
    });
    for (const withState of [false, true]) {
      it(`conv1dPrefill ${tag}${withState ? ' from a state' : ' from zeros'}`, () => {
        rand = prng(B + L * 3 + C * 5 + K * 7 + (withState ? 2 : 3));
        const t = place({ out: uni(B * L * C), x: uni(B * L * C), state: uni(B * C * K), w: uni(C * K), bias: uni(C) });
        wk.conv1dPrefill(t.p.out, t.p.x, withState ? t.p.state : 0, t.p.w, t.p.bias, B, L, C, K);
        ref.conv1dPrefill(t.r.out, t.r.x, withState ? t.r.state : null, t.r.w, t.r.bias, B, L, C, K);
        expectClose(`conv1dPrefill ${tag}`, t.got('out'), t.r.out);
        t.free();
      });
    }
    it(`conv1dBackward ${tag}`, () => {
      rand = prng(B + L * 3 + C * 5 + K * 7 + 1);
      const t = place({ dx: uni(B * L * C), dw: uni(C * K), dbias: uni(C), dout: uni(B * L * C), x: uni(B * L * C), w: uni(C * K) });
      wk.conv1dBackward(t.p.dx, t.p.dw, t.p.dbias, t.p.dout, t.p.x, t.p.w, B, L, C, K);
      ref.conv1dBackward(t.r.dx, t.r.dw, t.r.dbias, t.r.dout, t.r.x, t.r.w, B, L, C, K);
      for (const k of ['dx', 'dw', 'dbias'] as const) expectClose(`conv1dBackward ${k} ${tag}`, t.got(k), t.r[k]);
      t.free();
    });
  }
  for (const [B, C, K] of [
    [1, 1, 1],
    [2, 7, 4],
    [3, 8, 3],
    [1, 5, 5],
    [2, 4, 2],
  ]) {
    it(`conv1dPrefill from a state, B${B} C${C} K${K}, L 1, 2 and 9`, () => {
      for (const L of [1, 2, 9]) {
        rand = prng(B * 5 + C * 13 + K + L);
        const t = place({ out: uni(B * L * C), state: uni(B * C * K), x: uni(B * L * C), w: uni(C * K), bias: uni(C) });
        wk.conv1dPrefill(t.p.out, t.p.x, t.p.state, t.p.w, t.p.bias, B, L, C, K);
        ref.conv1dPrefill(t.r.out, t.r.x, t.r.state, t.r.w, t.r.bias, B, L, C, K);
        expectClose(`conv1dPrefill L${L}`, t.got('out'), t.r.out);
        t.free();
      }
    });
    it(`conv1dStep B${B} C${C} K${K}`, () => {
      rand = prng(B * 3 + C * 11 + K);
      const t = place({ out: uni(B * C), state: uni(B * C * K), x: uni(B * C), w: uni(C * K), bias: uni(C) });
      for (let s = 0; s < 3; s++) {
        wk.conv1dStep(t.p.out, t.p.state, t.p.x, t.p.w, t.p.bias, B, C, K);
        ref.conv1dStep(t.r.out, t.r.state, t.r.x, t.r.w, t.r.bias, B, C, K);
      }
      expectClose(`conv1dStep out`, t.got('out'), t.r.out);
      expectClose(`conv1dStep state`, t.got('state'), t.r.state);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ rmsnorm

describe('rmsnorm', () => {
  for (const [rows, D] of [
    [1, 1],
    [3, 5],
    [4, 64],
    [2, 67],
    [7, 130],
  ]) {
    it(`rmsnormForward/Backward rows${rows} D${D}`, () => {
      rand = prng(rows * 97 + D);
      const t = place({
        out: uni(rows * D),
        rstd: uni(rows),
        x: uni(rows * D, -3, 3),
        w: uni(D, 0.5, 1.5),
        dx: uni(rows * D),
        dw: uni(D),
        dout: uni(rows * D),
      });
      wk.rmsnormForward(t.p.out, t.p.rstd, t.p.x, t.p.w, rows, D, 1e-5);
      ref.rmsnormForward(t.r.out, t.r.rstd, t.r.x, t.r.w, rows, D, 1e-5);
      expectClose('rmsnormForward out', t.got('out'), t.r.out);
      expectClose('rmsnormForward rstd', t.got('rstd'), t.r.rstd);
      // backward from the same rstd in both
      heap.f32(t.p.rstd, rows).set(t.r.rstd);
      wk.rmsnormBackward(t.p.dx, t.p.dw, t.p.dout, t.p.x, t.p.w, t.p.rstd, rows, D);
      ref.rmsnormBackward(t.r.dx, t.r.dw, t.r.dout, t.r.x, t.r.w, t.r.rstd, rows, D);
      expectClose('rmsnormBackward dx', t.got('dx'), t.r.dx);
      expectClose('rmsnormBackward dw', t.got('dw'), t.r.dw);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ elementwise

describe('elementwise', () => {
  const sizes = [1, 3, 4, 5, 17, 1000];
  for (const [rows, C, c0, w] of [
    [1, 1, 0, 1],
    [3, 10, 2, 5],
    [7, 256, 128, 128],
    [4, 36, 4, 16],
    [2, 9, 8, 1],
  ]) {
    it(`sliceColumns rows${rows} C${C} [${c0}, ${c0 + w})`, () => {
      rand = prng(rows * 31 + C + c0);
      const t = place({ out: uni(rows * w), x: uni(rows * C) });
      wk.sliceColumns(t.p.out, t.p.x, rows, C, c0, w);
      ref.sliceColumns(t.r.out, t.r.x, rows, C, c0, w);
      expect(Array.from(t.got('out'))).toEqual(Array.from(t.r.out));
      t.free();
    });
  }
  for (const n of sizes) {
    it(`add/mul/accumulate/mulAccumulate n=${n}`, () => {
      rand = prng(n);
      const t = place({ out: uni(n), x: uni(n, -5, 5), y: uni(n, -5, 5), dst: uni(n), dst2: uni(n) });
      wk.add(t.p.out, t.p.x, t.p.y, n);
      ref.add(t.r.out, t.r.x, t.r.y, n);
      expectClose('add', t.got('out'), t.r.out);
      wk.mul(t.p.out, t.p.x, t.p.y, n);
      ref.mul(t.r.out, t.r.x, t.r.y, n);
      expectClose('mul', t.got('out'), t.r.out);
      wk.accumulate(t.p.dst, t.p.x, n);
      ref.accumulate(t.r.dst, t.r.x, n);
      expectClose('accumulate', t.got('dst'), t.r.dst);
      wk.mulAccumulate(t.p.dst2, t.p.x, t.p.y, n);
      ref.mulAccumulate(t.r.dst2, t.r.x, t.r.y, n);
      expectClose('mulAccumulate', t.got('dst2'), t.r.dst2);
      t.free();
    });
    it(`silu/softplus forward+backward n=${n}`, () => {
      rand = prng(n + 1);
      const t = place({ out: uni(n), out2: uni(n), x: uni(n, -12, 12), dout: uni(n), dx: uni(n), dx2: uni(n) });
      wk.siluForward(t.p.out, t.p.x, n);
      ref.siluForward(t.r.out, t.r.x, n);
      expectClose('siluForward', t.got('out'), t.r.out);
      wk.softplusForward(t.p.out2, t.p.x, n);
      ref.softplusForward(t.r.out2, t.r.x, n);
      expectClose('softplusForward', t.got('out2'), t.r.out2);
      wk.siluBackward(t.p.dx, t.p.dout, t.p.x, n);
      ref.siluBackward(t.r.dx, t.r.dout, t.r.x, n);
      expectClose('siluBackward', t.got('dx'), t.r.dx);
      wk.softplusBackward(t.p.dx2, t.p.dout, t.p.x, n);
      ref.softplusBackward(t.r.dx2, t.r.dout, t.r.x, n);
      expectClose('softplusBackward', t.got('dx2'), t.r.dx2);
      t.free();
    });
  }

  it('silu, softplus and their gradients are finite and accurate elementwise on [-100, 100]', () => {
    const n = 40001;
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = -100 + (200 * i) / (n - 1);
    const ones = new Float32Array(n).fill(1);
    const t = place({
      x: xs,
      dout: ones,
      silu: new Float32Array(n),
      sp: new Float32Array(n),
      dsilu: new Float32Array(n),
      dsp: new Float32Array(n),
    });
    wk.siluForward(t.p.silu, t.p.x, n);
    ref.siluForward(t.r.silu, t.r.x, n);
    wk.softplusForward(t.p.sp, t.p.x, n);
    ref.softplusForward(t.r.sp, t.r.x, n);
    wk.siluBackward(t.p.dsilu, t.p.dout, t.p.x, n);
    ref.siluBackward(t.r.dsilu, t.r.dout, t.r.x, n);
    wk.softplusBackward(t.p.dsp, t.p.dout, t.p.x, n);
    ref.softplusBackward(t.r.dsp, t.r.dout, t.r.x, n);
    for (const k of ['silu', 'sp', 'dsilu', 'dsp'] as const) {
      const got = t.got(k),
        want = t.r[k];
      let worst = 0,
        wi = 0;
      for (let i = 0; i < n; i++) {
        expect(Number.isFinite(got[i]), `${k}(${xs[i]}) = ${got[i]}`).toBe(true);
        // relative error, with an absolute floor for results in f32's subnormal range. silu' has a
        // root (x ≈ -1.278) where s + x·s·(1-s) cancels: measure it against its terms' magnitude.
        const x = xs[i],
          sg = 1 / (1 + Math.exp(-x));
        const scale = k === 'dsilu' ? sg + Math.abs(x * sg * (1 - sg)) : Math.abs(want[i]);
        const e = Math.abs(got[i] - want[i]) / (scale + 1e-37);
        if (e > worst) {
          worst = e;
          wi = i;
        }
      }
      expect(worst, `${k}: worst relative error ${worst} at x=${xs[wi]}: got ${got[wi]} want ${want[wi]}`).toBeLessThan(1e-6);
      expectClose(k, got, want);
    }
    t.free();
  });

  it('vector exp is within 1 ulp of exp(x) over a sweep of [-100, 88]; limits are 0 / inf / NaN', () => {
    const n = 200003;
    const xs = new Float32Array(n + 8);
    for (let i = 0; i < n; i++) xs[i] = -100 + (188 * i) / (n - 1);
    xs.set([0, -0, -1e-30, 1e-30, -104, -1000, 89, Number.NaN], n);
    const t = place({ x: xs, out: new Float32Array(n + 8) });
    wk.expForward(t.p.out, t.p.x, n + 8);
    const got = t.got('out');
    const FLT_MIN = 2 ** -126,
      DENORM = 2 ** -149;
    // one ulp at v: the gap from the float32 nearest v to the next float32 up
    const bits = new Float32Array(1),
      word = new Uint32Array(bits.buffer);
    const ulp = (v: number) => {
      bits[0] = v;
      word[0] += 1;
      return bits[0] - Math.fround(v);
    };
    let worstUlp = 0,
      worstX = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.exp(xs[i]); // float64: exact to far below a float32 ulp
      if (want >= FLT_MIN) {
        const e = Math.abs(got[i] - want) / ulp(want);
        if (e > worstUlp) {
          worstUlp = e;
          worstX = xs[i];
        }
      } else {
        expect(Math.abs(got[i] - want), `exp(${xs[i]}) = ${got[i]}, want ${want}`).toBeLessThanOrEqual(DENORM);
      }
    }
    expect(worstUlp, `worst error ${worstUlp} ulp at x=${worstX}`).toBeLessThanOrEqual(1);
    expect(Array.from(got.subarray(n, n + 7))).toEqual([1, 1, 1, 1, 0, 0, Infinity]);
    expect(Number.isNaN(got[n + 7])).toBe(true);
    // and its twin (Math.exp, rounded to f32) over the finite part
    ref.expForward(t.r.out, t.r.x, n);
    expectClose('expForward', got.subarray(0, n), t.r.out.subarray(0, n), 1e-6);
    t.free();
  });
});

// ------------------------------------------------------------------ loss, embedding

describe('loss and embedding', () => {
  for (const [rows, V, scale] of [
    [1, 1, 1],
    [3, 5, 3],
    [4, 7, 1],
    [2, 256, 5],
    [5, 1001, 2],
    [3, 9, 80],
  ]) {
    it(`crossEntropyForward/Backward rows${rows} V${V} scale${scale}`, () => {
      rand = prng(rows * 13 + V + scale);
      const t = place({
        losses: uni(rows),
        lse: uni(rows),
        logits: uni(rows * V, -scale, scale),
        targets: ints(rows, V),
        dlogits: uni(rows * V),
        dloss: uni(rows),
      });
      wk.crossEntropyForward(t.p.losses, t.p.lse, t.p.logits, t.p.targets, rows, V);
      ref.crossEntropyForward(t.r.losses, t.r.lse, t.r.logits, t.r.targets, rows, V);
      expectClose('crossEntropyForward losses', t.got('losses'), t.r.losses);
      expectClose('crossEntropyForward lse', t.got('lse'), t.r.lse);
      heap.f32(t.p.lse, rows).set(t.r.lse);
      wk.crossEntropyBackward(t.p.dlogits, t.p.dloss, t.p.logits, t.p.lse, t.p.targets, rows, V);
      ref.crossEntropyBackward(t.r.dlogits, t.r.dloss, t.r.logits, t.r.lse, t.r.targets, rows, V);
      expectClose('crossEntropyBackward', t.got('dlogits'), t.r.dlogits);
      t.free();
    });
  }
  for (const [V, D, n] of [
    [1, 1, 1],
    [5, 3, 9],
    [11, 16, 20],
    [7, 33, 4],
  ]) {
    it(`embeddingForward/Backward V${V} D${D} n${n}`, () => {
      rand = prng(V * 31 + D * 3 + n);
      const t = place({ out: uni(n * D), table: uni(V * D), ids: ints(n, V), dtable: uni(V * D), dout: uni(n * D) });
      wk.embeddingForward(t.p.out, t.p.table, t.p.ids, n, D);
      ref.embeddingForward(t.r.out, t.r.table, t.r.ids, n, D);
      expectClose('embeddingForward', t.got('out'), t.r.out);
      wk.embeddingBackward(t.p.dtable, t.p.dout, t.p.ids, n, D);
      ref.embeddingBackward(t.r.dtable, t.r.dout, t.r.ids, n, D);
      expectClose('embeddingBackward', t.got('dtable'), t.r.dtable);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ bandwidth probe

describe('readBandwidth', () => {
  for (const [n, S] of [
    [1, 1],
    [63, 16],
    [1000, 3],
    [4096, 16],
    [100_003, 7],
  ]) {
    it(`readBandwidth n=${n} streams=${S}`, () => {
      rand = prng(n + S);
      const t = place({ out: uni(1), x: uni(n, -0.25, 0.75) });
      wk.readBandwidth(t.p.out, t.p.x, n, S);
      ref.readBandwidth(t.r.out, t.r.x, n, S);
      // f32 lane sums against a float64 sum: rounding grows with n (see its twin's comment)
      expect(Math.abs(t.got('out')[0] - t.r.out[0])).toBeLessThan(1e-5 * n + 1e-6);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ optimiser

describe('adamw', () => {
  for (const n of [1, 7, 100, 1003]) {
    it(`adamwStep n=${n}`, () => {
      rand = prng(n * 3);
      const t = place({ p: uni(n), g: uni(n, -0.1, 0.1), m: uni(n, -0.01, 0.01), v: uni(n, 0, 1e-4) });
      const [lr, b1, b2, eps, wd] = [3e-3, 0.9, 0.999, 1e-8, 0.1];
      for (let step = 1; step <= 3; step++) {
        const bc1 = 1 - b1 ** step,
          bc2 = 1 - b2 ** step;
        wk.adamwStep(t.p.p, t.p.g, t.p.m, t.p.v, n, lr, b1, b2, eps, wd, bc1, bc2);
        ref.adamwStep(t.r.p, t.r.g, t.r.m, t.r.v, n, lr, b1, b2, eps, wd, bc1, bc2);
      }
      for (const k of ['p', 'm', 'v'] as const) expectClose(`adamwStep ${k}`, t.got(k), t.r[k]);
      t.free();
    });
  }
});

// ------------------------------------------------------------------ memory growth

describe('after heap growth', () => {
  it('kernels see inputs placed before a grow and results are read through rebuilt views', () => {
    const h = new Heap(4);
    const k = loadWasmKernels(h.memory);
    rand = prng(99);
    const M = 9,
      N = 14,
      K = 11;
    const a = uni(M * K),
      b = uni(N * K);
    const pa = h.alloc(a.byteLength),
      pb = h.alloc(b.byteLength);
    h.f32(pa, a.length).set(a);
    h.f32(pb, b.byteLength / 4).set(b);
    const before = h.byteLength;
    h.grow(40);
    expect(h.byteLength).toBeGreaterThan(before);
    // an allocation far into the grown region
    h.onAlloc = (bytes) => {
      if (bytes === 1 << 20) h.grow(20);
    };
    const big = h.alloc(1 << 20);
    h.onAlloc = null;
    const pout = h.alloc(M * N * 4);
    k.matmulNT(pout, pa, pb, M, N, K, 0);
    const want = new Float32Array(M * N);
    ref.matmulNT(want, a, b, M, N, K, 0);
    expectClose('matmulNT after grow', h.f32(pout, M * N), want);
    // a kernel writing into the far end of the grown memory
    const n = (1 << 20) / 4;
    k.siluForward(big, big, n);
    expect(h.f32(big, n)[n - 1]).toBe(0);
    h.f32(big, n).fill(2);
    k.siluForward(big, big, n);
    expect(h.f32(big, n)[n - 1]).toBeCloseTo(2 / (1 + Math.exp(-2)), 6);
    // and the earlier instance keeps working after yet another grow
    h.grow(3);
    k.matmulNT(pout, pa, pb, M, N, K, 1);
    for (let i = 0; i < want.length; i++) want[i] *= 2;
    expectClose('matmulNT beta=1 after second grow', h.f32(pout, M * N), want);
  });
});
