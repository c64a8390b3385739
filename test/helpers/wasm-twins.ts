/**
 * The harness of the wasm-vs-reference twin tests: seeded inputs, a heap with the wasm kernels on
 * it, arrays placed in both worlds, and the closeness criterion (max abs error ≤ tol · max|ref|).
 */
import { beforeAll, expect } from 'vitest';
import { Heap } from '../../src/tensor/heap.js';
import { loadWasmKernels, type WasmBuild, type WasmKernels } from '../../src/kernels/wasm/index.js';
import type { KernelKind } from '../../src/kernels/backend.js';

/**
 * The kernels build the twin tests run: plain SIMD, or the relaxed-SIMD build when the `relaxed-simd`
 * project of vitest.config.ts runs the same files again (it sets FRUGAL_TEST_WASM_BUILD). Loading
 * the relaxed build throws where this Node cannot run it: those tests fail, they are not skipped.
 */
export const TEST_BUILD: WasmBuild = process.env.FRUGAL_TEST_WASM_BUILD === 'relaxed-simd' ? 'relaxed-simd' : 'simd';
/** The engine kernels of TEST_BUILD. */
export const TEST_WASM: KernelKind = TEST_BUILD === 'relaxed-simd' ? 'wasm-relaxed' : 'wasm';

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

/** Restart the input stream at `s`: each test seeds its own inputs. */
export function seed(s: number): void {
  rand = prng(s);
}

export const uni = (n: number, lo = -1, hi = 1): Float32Array => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
};
export const ints = (n: number, hi: number): Int32Array => {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(rand() * hi);
  return a;
};

type Arr = Float32Array | Int32Array;

export let heap: Heap;
export let wk: WasmKernels;

/** A fresh heap with the wasm kernels on it, made before the calling file's tests. */
export function useWasmHeap(): void {
  beforeAll(() => {
    heap = new Heap(64);
    wk = loadWasmKernels(heap.memory, TEST_BUILD);
  });
}

/**
 * Copies `inputs` into the heap (offsets in `p`) and into fresh arrays for the reference (`r`).
 * `got(name)` reads an array back from the heap; `free()` releases the blocks.
 */
export function place<T extends Record<string, Arr>>(inputs: T) {
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
export function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
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
