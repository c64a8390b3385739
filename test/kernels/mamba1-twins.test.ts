/**
 * Mamba-1's fused decoding step (assembly/mamba1.ts) against its reference twin
 * (src/kernels/ref/mamba1.ts) on random and odd shapes, and bit for bit against the chain of
 * unfused wasm kernels the decoding step ran before (conv1dStep, siluForward, sliceColumns,
 * matmulNT, the bias add, softplusForward, scanForward at L = 1, siluForward, mul).
 */
import { describe, it, expect } from 'vitest';
import * as ref from '../../src/kernels/ref/index.js';
import { TEST_BUILD, expectClose, heap, place, seed, uni, useWasmHeap, wk } from '../helpers/wasm-twins.js';

useWasmHeap();

const shapes = [
  { B: 1, ED: 256, N: 16, R: 8, K: 4 },
  { B: 3, ED: 37, N: 5, R: 3, K: 4 },
  { B: 2, ED: 20, N: 20, R: 1, K: 3 },
  { B: 2, ED: 7, N: 36, R: 48, K: 1 },
  { B: 3, ED: 10, N: 16, R: 12, K: 4 },
];

function inputs(s: (typeof shapes)[number]) {
  const { B, ED, N, R, K } = s;
  return {
    xc: uni(B * ED),
    state: uni(B * ED * K),
    xz: uni(B * 2 * ED, -3, 3),
    convW: uni(ED * K),
    convB: uni(ED),
    out: uni(B * ED),
    delta: uni(B * ED),
    h: uni(B * ED * N),
    xdbl: uni(B * (R + 2 * N)),
    dtW: uni(ED * R, -2, 2),
    dtBias: uni(ED, -4, 1),
    A: uni(ED * N, -4, -0.05),
    D: uni(ED),
  };
}

const bitsOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('Mamba-1 fused decoding step', () => {
  for (const s of shapes) {
    const { B, ED, N, R, K } = s;
    const tag = `B${B} ED${ED} N${N} R${R} K${K}`;

    it(`mambaConvStep and mambaScanStep match their reference twins, ${tag}`, () => {
      seed(B * 7 + ED * 13 + N * 17 + R * 19 + K);
      const t = place(inputs(s));
      const { p, r } = t;
      wk.mambaConvStep(p.xc, p.state, p.xz, p.convW, p.convB, B, ED, K);
      ref.mambaConvStep(r.xc, r.state, r.xz, r.convW, r.convB, B, ED, K);
      expectClose(`xc ${tag}`, t.got('xc'), r.xc);
      expectClose(`conv state ${tag}`, t.got('state'), r.state);
      wk.mambaScanStep(p.out, p.delta, p.h, p.xc, p.xdbl, p.xz, p.dtW, p.dtBias, p.A, p.D, B, ED, N, R);
      ref.mambaScanStep(r.out, r.delta, r.h, r.xc, r.xdbl, r.xz, r.dtW, r.dtBias, r.A, r.D, B, ED, N, R);
      expectClose(`delta ${tag}`, t.got('delta'), r.delta);
      expectClose(`h ${tag}`, t.got('h'), r.h);
      expectClose(`out ${tag}`, t.got('out'), r.out);
      t.free();
    });

    it(`mambaScanStepRange over a split of the channels gives the whole call's bits and its twin's values, ${tag}`, () => {
      seed(B * 5 + ED * 3 + N + R * 29 + K);
      const inp = inputs(s);
      const whole = place(inp),
        split = place(inp);
      const run = (p: typeof whole.p, c0: number, c1: number) =>
        wk.mambaScanStepRange(p.out, p.delta, p.h, p.xc, p.xdbl, p.xz, p.dtW, p.dtBias, p.A, p.D, B, ED, N, R, c0, c1);
      run(whole.p, 0, B * ED);
      const cut = [0, 5, Math.floor((B * ED) / 2) + 1, B * ED].sort((a, b) => a - b);
      const r = split.r;
      for (let i = 0; i + 1 < cut.length; i++) {
        run(split.p, cut[i], cut[i + 1]);
        ref.mambaScanStepRange(r.out, r.delta, r.h, r.xc, r.xdbl, r.xz, r.dtW, r.dtBias, r.A, r.D, B, ED, N, R, cut[i], cut[i + 1]);
      }
      for (const k of ['out', 'delta', 'h'] as const) {
        expect(bitsOf(split.got(k)).equals(bitsOf(whole.got(k))), k).toBe(true);
        expectClose(`${k} by ranges ${tag}`, split.got(k), r[k]);
      }
      whole.free();
      split.free();
    });

    it(`computes the bits of the unfused kernels it replaces, ${tag}`, () => {
      seed(B * 31 + ED + N * 37 + R * 41 + K);
      const inp = inputs(s);
      const f = place(inp);
      wk.mambaConvStep(f.p.xc, f.p.state, f.p.xz, f.p.convW, f.p.convB, B, ED, K);
      wk.mambaScanStep(f.p.out, f.p.delta, f.p.h, f.p.xc, f.p.xdbl, f.p.xz, f.p.dtW, f.p.dtBias, f.p.A, f.p.D, B, ED, N, R);
      const S = R + 2 * N;
      const u = place({
        ...inp,
        x: new Float32Array(B * ED),
        z: new Float32Array(B * ED),
        xconv: new Float32Array(B * ED),
        dt: new Float32Array(B * Math.max(R, 1)),
        Bm: new Float32Array(B * N),
        Cm: new Float32Array(B * N),
        dtp: new Float32Array(B * ED),
        y: new Float32Array(B * ED),
        gate: new Float32Array(B * ED),
      });
      const p = u.p;
      wk.sliceColumns(p.x, p.xz, B, 2 * ED, 0, ED);
      wk.sliceColumns(p.z, p.xz, B, 2 * ED, ED, ED);
      wk.conv1dStep(p.xconv, p.state, p.x, p.convW, p.convB, B, ED, K);
      wk.siluForward(p.xc, p.xconv, B * ED);
      wk.sliceColumns(p.dt, p.xdbl, B, S, 0, R);
      wk.sliceColumns(p.Bm, p.xdbl, B, S, R, N);
      wk.sliceColumns(p.Cm, p.xdbl, B, S, R + N, N);
      wk.matmulNT(p.dtp, p.dt, p.dtW, B, ED, R, 0);
      ref.addBias(heap.f32(p.dtp, B * ED), heap.f32(p.dtp, B * ED), heap.f32(p.dtBias, ED), B, ED); // as the decoding step ran it
      wk.softplusForward(p.delta, p.dtp, B * ED);
      wk.scanForward(p.y, p.h, 0, p.xc, p.delta, p.A, p.Bm, p.Cm, p.D, B, 1, ED, N, 1);
      wk.siluForward(p.gate, p.z, B * ED);
      wk.mul(p.out, p.y, p.gate, B * ED);
      for (const k of ['xc', 'state', 'delta', 'h', 'out'] as const) {
        // the relaxed-SIMD build fuses the chain's matmulNT multiply-adds, which the step does not
        if (TEST_BUILD === 'relaxed-simd') expectClose(`${k} ${tag}`, f.got(k), u.got(k));
        else expect(bitsOf(f.got(k)).equals(bitsOf(u.got(k))), `${k} ${tag}`).toBe(true);
      }
      f.free();
      u.free();
    });
  }
});

describe('Mamba-1 prefill kernels (Δ and the gate)', () => {
  for (const [M, ED] of [
    [1, 5],
    [7, 37],
    [33, 64],
    [3, 1],
  ] as const) {
    const tag = `M${M} ED${ED}`;

    it(`mambaDeltaPrefill and mambaGatePrefill match their reference twins, ${tag}`, () => {
      seed(M * 101 + ED);
      const t = place({
        delta: uni(M * ED),
        dtp: uni(M * ED, -6, 6),
        bias: uni(ED, -4, 1),
        out: uni(M * ED),
        y: uni(M * ED, -2, 2),
        xz: uni(M * 2 * ED, -8, 8),
      });
      const { p, r } = t;
      wk.mambaDeltaPrefill(p.delta, p.dtp, p.bias, M, ED);
      ref.mambaDeltaPrefill(r.delta, r.dtp, r.bias, M, ED);
      expectClose(`delta ${tag}`, t.got('delta'), r.delta);
      wk.mambaGatePrefill(p.out, p.y, p.xz, M, ED);
      ref.mambaGatePrefill(r.out, r.y, r.xz, M, ED);
      expectClose(`gated ${tag}`, t.got('out'), r.out);
      t.free();
    });

    it(`compute the bits of the unfused kernels they replace (bias add, softplus; slice, silu, mul), ${tag}`, () => {
      seed(M * 103 + ED * 7);
      const inp = {
        delta: new Float32Array(M * ED),
        dtp: uni(M * ED, -6, 6),
        bias: uni(ED, -4, 1),
        out: new Float32Array(M * ED),
        y: uni(M * ED, -2, 2),
        xz: uni(M * 2 * ED, -8, 8),
      };
      const f = place(inp),
        u = place({ ...inp, z: new Float32Array(M * ED), gate: new Float32Array(M * ED) });
      wk.mambaDeltaPrefill(f.p.delta, f.p.dtp, f.p.bias, M, ED);
      wk.mambaGatePrefill(f.p.out, f.p.y, f.p.xz, M, ED);
      const p = u.p;
      ref.addBias(heap.f32(p.dtp, M * ED), heap.f32(p.dtp, M * ED), heap.f32(p.bias, ED), M, ED); // as linearInto adds it
      wk.softplusForward(p.delta, p.dtp, M * ED);
      wk.sliceColumns(p.z, p.xz, M, 2 * ED, ED, ED);
      wk.siluForward(p.gate, p.z, M * ED);
      wk.mul(p.out, p.y, p.gate, M * ED);
      for (const k of ['delta', 'out'] as const) expect(bitsOf(f.got(k)).equals(bitsOf(u.got(k))), `${k} ${tag}`).toBe(true);
      f.free();
      u.free();
    });
  }
});
