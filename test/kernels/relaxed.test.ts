/**
 * The opt-in relaxed-SIMD build (build/kernels-relaxed.wasm: the same kernels, with the matrix
 * products' multiply-adds fused where the CPU allows) against the reference twins. Node 20 validates
 * relaxed SIMD only behind a V8 flag, set here before compiling; browsers that support it need none.
 * Criterion as for the default build: max abs error ≤ 1e-5 · max|ref|.
 */
import { setFlagsFromString } from 'node:v8';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import * as ref from '../../src/kernels/ref/index.js';
import { instantiateWasmKernels, WASM_URL } from '../../src/kernels/wasm/index.js';
import type { WasmKernels } from '../../src/kernels/wasm/index.js';

const RELAXED = new URL('kernels-relaxed.wasm', WASM_URL);
let relaxed: WebAssembly.Module;
let heap: Heap;
let k: WasmKernels;

beforeAll(() => {
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  relaxed = new WebAssembly.Module(readFileSync(RELAXED));
  heap = new Heap(64);
  k = instantiateWasmKernels(relaxed, heap.memory);
});

/** Seeded uniform values in [-1, 1) (an LCG: only reproducibility matters here). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

describe('the relaxed-SIMD kernels build', () => {
  it('exports what the default build does, and is a different module', () => {
    const names = (m: WebAssembly.Module) => WebAssembly.Module.exports(m).map((e) => e.name);
    const plain = new WebAssembly.Module(readFileSync(WASM_URL));
    expect(names(relaxed)).toEqual(names(plain));
    expect(readFileSync(RELAXED).equals(readFileSync(WASM_URL))).toBe(false);
  });

  const shapes = [
    [1, 64, 64],
    [3, 17, 33],
    [8, 40, 96],
    [5, 7, 3],
    [13, 29, 130],
  ] as const;
  it.each(['NT', 'NN', 'TN'] as const)('matmul%s equals its reference twin within 1e-5 of the largest value', (form) => {
    const fast = { NT: k.matmulNT, NN: k.matmulNN, TN: k.matmulTN }[form];
    const slow = { NT: ref.matmulNT, NN: ref.matmulNN, TN: ref.matmulTN }[form];
    for (const [M, N, K] of shapes) {
      for (const beta of [0, 1]) {
        const a = values(M * K, M + 7 * K),
          b = values(N * K, N + 3 * K),
          out = values(M * N, M * N + beta);
        const [pa, pb, po] = [a, b, out].map((x) => {
          const p = heap.alloc(x.byteLength);
          heap.f32(p, x.length).set(x);
          return p;
        });
        fast(po, pa, pb, M, N, K, beta);
        const want = out.slice();
        slow(want, a, b, M, N, K, beta);
        const got = heap.f32(po, M * N);
        const scale = Math.max(...Array.from(want, Math.abs));
        const worst = Math.max(...Array.from(want, (w, i) => Math.abs(got[i] - w)));
        expect(worst, `${form} ${M}x${N}x${K} beta ${beta}`).toBeLessThanOrEqual(1e-5 * scale);
        for (const p of [pa, pb, po]) heap.release(p);
      }
    }
  });
});
