/**
 * Every WebAssembly kernel against its reference twin (src/kernels/ref), on seeded random inputs
 * over several shapes including odd and tiny ones: the module itself, the products, the scan and
 * conv1d here; norms, elementwise, loss, optimiser and heap growth in wasm-vs-ref-ops.test.ts.
 * Inputs live in a Heap; the reference runs on Float32Array copies. Outputs (and accumulated
 * gradients) start at non-zero random values in both, so overwrite-vs-accumulate mistakes show.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { BASE, Heap } from '../../src/tensor/heap.js';
import * as ref from '../../src/kernels/ref/index.js';
import { wasmKernelNames, getWasmModule, instantiateWasmKernels, WASM_URL } from '../../src/kernels/wasm/index.js';
import { expectClose, heap, place, seed, uni, useWasmHeap, wk } from '../helpers/wasm-twins.js';

useWasmHeap();

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

  it("keeps its static data (constant tables) inside the heap's reserved first 64 KiB and has no globals", () => {
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
    const segments: { offset: number; size: number }[] = [];
    while (pos < bytes.length) {
      const id = bytes[pos++];
      const size = leb();
      const end = pos + size;
      ids.push(id);
      if (id === 11) {
        // data: active segments at a constant offset (flags 0, i32.const N, end)
        for (let n = leb(); n > 0; n--) {
          expect(leb(), 'an active segment of memory 0').toBe(0);
          expect(bytes[pos++], 'offset given by i32.const').toBe(0x41);
          const offset = leb();
          expect(bytes[pos++], 'a constant offset expression').toBe(0x0b);
          const len = leb();
          segments.push({ offset, size: len });
          pos += len;
        }
      }
      pos = end;
    }
    expect(ids).not.toContain(6); // globals (no stack pointer, no heap base)
    // the tables of constants the kernels read by broadcast loads (assembly/vmath.ts), nothing else
    expect(segments.length).toBeGreaterThan(0);
    for (const s of segments) expect(s.offset + s.size, `segment at ${s.offset}`).toBeLessThanOrEqual(BASE);
    expect(segments.reduce((a, s) => a + s.size, 0)).toBeLessThan(1024);
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
          seed(M * 1000003 + N * 1009 + K * 7 + beta);
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
  // four channels a vector (N = 16, ED a multiple of 4, L ≥ 8): whole groups, and a group with a chunk of 1
  { B: 2, L: 33, ED: 8, N: 16, chunk: 8 },
  { B: 1, L: 8, ED: 4, N: 16, chunk: 1 },
  { B: 1, L: 40, ED: 4, N: 19, chunk: 16 },
  { B: 3, L: 10, ED: 2, N: 8, chunk: 4 },
  { B: 1, L: 20, ED: 3, N: 3, chunk: 7 },
  { B: 2, L: 24, ED: 2, N: 36, chunk: 24 },
  { B: 1, L: 9, ED: 2, N: 2, chunk: 100 },
  // the backward keeps decays in another group's lanes from N = 16: a tail group of 4, three groups of 8
  { B: 2, L: 21, ED: 3, N: 20, chunk: 5 },
  { B: 1, L: 17, ED: 2, N: 24, chunk: 16 },
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
        seed(B * 7 + L * 131 + ED * 17 + N * 3 + chunk + (withCk ? 1 : 0));
        const t = place(scanInputs(s));
        wk.scanForward(t.p.y, t.p.h, withCk ? t.p.hck : 0, t.p.x, t.p.delta, t.p.A, t.p.Bm, t.p.Cm, t.p.D, B, L, ED, N, chunk);
        ref.scanForward(t.r.y, t.r.h, withCk ? t.r.hck : null, t.r.x, t.r.delta, t.r.A, t.r.Bm, t.r.Cm, t.r.D, B, L, ED, N, chunk);
        expectClose(`scanForward y ${tag}`, t.got('y'), t.r.y);
        expectClose(`scanForward h ${tag}`, t.got('h'), t.r.h);
        expectClose(`scanForward hck ${tag}`, t.got('hck'), t.r.hck);
        t.free();
      });
    }
    it(`scanForward without checkpoints gives the bits of the run that writes them, ${tag}`, () => {
      // N = 16 without checkpoints takes its own compiled copy of the 16-lane loop
      seed(B * 5 + L * 7 + ED * 11 + N * 13 + chunk);
      const inp = scanInputs(s);
      const a = place(inp),
        b = place(inp);
      for (const [t, ck] of [
        [a, a.p.hck],
        [b, 0],
      ] as const)
        wk.scanForward(t.p.y, t.p.h, ck, t.p.x, t.p.delta, t.p.A, t.p.Bm, t.p.Cm, t.p.D, B, L, ED, N, chunk);
      for (const k of ['y', 'h'] as const) expect(Buffer.from(b.got(k).buffer).equals(Buffer.from(a.got(k).buffer)), k).toBe(true);
      a.free();
      b.free();
    });
    for (const withDh0 of [true, false]) {
      it(`scanBackward ${tag}${withDh0 ? '' : ' (no dh0)'}`, () => {
        seed(B * 11 + L * 13 + ED * 19 + N * 23 + chunk + (withDh0 ? 1 : 0));
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
          work: new Float32Array((2 * chunk + 1) * N),
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
      seed(B * 5 + ED * 77 + N);
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
      seed(B + L * 3 + C * 5 + K * 7);
      const t = place({ out: uni(B * L * C), x: uni(B * L * C), w: uni(C * K), bias: uni(C) });
      wk.conv1dForward(t.p.out, t.p.x, t.p.w, t.p.bias, B, L, C, K);
      ref.conv1dForward(t.r.out, t.r.x, t.r.w, t.r.bias, B, L, C, K);
      expectClose(`conv1dForward ${tag}`, t.got('out'), t.r.out);
      t.free();
    });
    for (const withState of [false, true]) {
      it(`conv1dPrefill ${tag}${withState ? ' from a state' : ' from zeros'}`, () => {
        seed(B + L * 3 + C * 5 + K * 7 + (withState ? 2 : 3));
        const t = place({ out: uni(B * L * C), x: uni(B * L * C), state: uni(B * C * K), w: uni(C * K), bias: uni(C) });
        wk.conv1dPrefill(t.p.out, t.p.x, withState ? t.p.state : 0, t.p.w, t.p.bias, B, L, C, K);
        ref.conv1dPrefill(t.r.out, t.r.x, withState ? t.r.state : null, t.r.w, t.r.bias, B, L, C, K);
        expectClose(`conv1dPrefill ${tag}`, t.got('out'), t.r.out);
        t.free();
      });
    }
    it(`conv1dBackward ${tag}`, () => {
      seed(B + L * 3 + C * 5 + K * 7 + 1);
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
        seed(B * 5 + C * 13 + K + L);
        const t = place({ out: uni(B * L * C), state: uni(B * C * K), x: uni(B * L * C), w: uni(C * K), bias: uni(C) });
        wk.conv1dPrefill(t.p.out, t.p.x, t.p.state, t.p.w, t.p.bias, B, L, C, K);
        ref.conv1dPrefill(t.r.out, t.r.x, t.r.state, t.r.w, t.r.bias, B, L, C, K);
        expectClose(`conv1dPrefill L${L}`, t.got('out'), t.r.out);
        t.free();
      }
    });
    it(`conv1dPrefill in two chunks gives the bits of one call, B${B} C${C} K${K}`, () => {
      // 20 rows cross the kernel's blocks of 8; the second chunk starts from the state the first left
      const L = 20,
        L1 = 11;
      seed(B * 7 + C * 17 + K);
      const state = uni(B * C * K),
        x = uni(B * L * C);
      const one = place({ out: new Float32Array(B * L * C), state, x, w: uni(C * K), bias: uni(C) });
      wk.conv1dPrefill(one.p.out, one.p.x, one.p.state, one.p.w, one.p.bias, B, L, C, K);
      const whole = one.got('out');
      const rows = (b: number, t0: number, t1: number) => x.slice((b * L + t0) * C, (b * L + t1) * C);
      const parts = [
        [0, L1],
        [L1, L],
      ].map(([t0, t1]) =>
        Float32Array.from({ length: B * (t1 - t0) * C }, (_, i) => rows(Math.floor(i / ((t1 - t0) * C)), t0, t1)[i % ((t1 - t0) * C)]),
      );
      const two = place({
        out: new Float32Array(B * L * C),
        state,
        a: parts[0],
        b: parts[1],
        w: one.r.w,
        bias: one.r.bias,
        o1: new Float32Array(B * L1 * C),
        o2: new Float32Array(B * (L - L1) * C),
      });
      wk.conv1dPrefill(two.p.o1, two.p.a, two.p.state, two.p.w, two.p.bias, B, L1, C, K);
      ref.conv1dFillState(heap.f32(two.p.state, B * C * K), heap.f32(two.p.a, B * L1 * C), B, L1, C, K);
      wk.conv1dPrefill(two.p.o2, two.p.b, two.p.state, two.p.w, two.p.bias, B, L - L1, C, K);
      const o1 = two.got('o1'),
        o2 = two.got('o2');
      for (let b = 0; b < B; b++) {
        const want = whole.subarray(b * L * C, (b + 1) * L * C),
          got = Float32Array.from([...o1.subarray(b * L1 * C, (b + 1) * L1 * C), ...o2.subarray(b * (L - L1) * C, (b + 1) * (L - L1) * C)]);
        expect(Buffer.from(got.buffer).equals(Buffer.from(Float32Array.from(want).buffer)), `stream ${b}`).toBe(true);
      }
      one.free();
      two.free();
    });
    it(`conv1dStep B${B} C${C} K${K}`, () => {
      seed(B * 3 + C * 11 + K);
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
