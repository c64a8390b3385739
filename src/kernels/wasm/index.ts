/**
 * WebAssembly SIMD kernels (assembly/*.ts, built to build/kernels.wasm by `npm run build:wasm`).
 *
 * Every kernel is the f32 twin of the reference kernel of the same name in src/kernels/ref/: same
 * argument order (outputs first, sizes last), same overwrite/accumulate semantics, but each array
 * argument is a byte offset into the shared heap memory (src/tensor/heap.ts). Int32 arrays (ids,
 * targets) are offsets too. Optional outputs (`hck`, `dh0`) take offset 0 to mean "skip".
 * Scalars are plain numbers. The module allocates nothing and has no static data: it only touches
 * the memory it is pointed at.
 */
import { readFileSync } from 'node:fs';

/** Byte offset into the shared memory. */
export type Ptr = number;

export interface WasmKernels {
  // ---- matmul.ts (beta 0 overwrites out, otherwise accumulates)
  /** out (M,N) = beta·out + a (M,K) @ b (N,K)^T */
  matmulNT(out: Ptr, a: Ptr, b: Ptr, M: number, N: number, K: number, beta: number): void;
  /** out (M,N) = beta·out + a (M,K) @ b (K,N) */
  matmulNN(out: Ptr, a: Ptr, b: Ptr, M: number, N: number, K: number, beta: number): void;
  /** out (M,N) = beta·out + a (K,M)^T @ b (K,N) */
  matmulTN(out: Ptr, a: Ptr, b: Ptr, M: number, N: number, K: number, beta: number): void;
  /** Strided blocks of the same products, for threads (lda/ldb/ldo: row lengths of the full matrices). */
  matmulNTStrided(out: Ptr, a: Ptr, b: Ptr, M: number, N: number, K: number, beta: number, ldo: number): void;
  matmulNNStrided(out: Ptr, a: Ptr, b: Ptr, M: number, N: number, K: number, beta: number, lda: number, ldb: number, ldo: number): void;
  matmulTNStrided(out: Ptr, a: Ptr, b: Ptr, M: number, N: number, K: number, beta: number, lda: number, ldb: number, ldo: number): void;

  // ---- scan.ts (hck = 0 / dh0 = 0 skip; work holds (chunk+1)·N f32)
  scanForward(y: Ptr, h: Ptr, hck: Ptr, x: Ptr, delta: Ptr, A: Ptr, Bm: Ptr, Cm: Ptr, D: Ptr,
    B: number, L: number, ED: number, N: number, chunk: number): void;
  scanBackward(dx: Ptr, ddelta: Ptr, dA: Ptr, dB: Ptr, dC: Ptr, dD: Ptr, dh0: Ptr,
    dy: Ptr, x: Ptr, delta: Ptr, A: Ptr, Bm: Ptr, Cm: Ptr, D: Ptr, hck: Ptr, work: Ptr,
    B: number, L: number, ED: number, N: number, chunk: number): void;
  scanStep(y: Ptr, h: Ptr, x: Ptr, delta: Ptr, A: Ptr, Bm: Ptr, Cm: Ptr, D: Ptr, B: number, ED: number, N: number): void;
  /** scanForward over (batch, channel) pairs c = b·ED + d in [c0, c1) */
  scanForwardRange(y: Ptr, h: Ptr, hck: Ptr, x: Ptr, delta: Ptr, A: Ptr, Bm: Ptr, Cm: Ptr, D: Ptr,
    B: number, L: number, ED: number, N: number, chunk: number, c0: number, c1: number): void;
  /** scanBackward over channels [d0, d1) of every batch element; dB/dC get this range's contribution */
  scanBackwardRange(dx: Ptr, ddelta: Ptr, dA: Ptr, dB: Ptr, dC: Ptr, dD: Ptr, dh0: Ptr,
    dy: Ptr, x: Ptr, delta: Ptr, A: Ptr, Bm: Ptr, Cm: Ptr, D: Ptr, hck: Ptr, work: Ptr,
    B: number, L: number, ED: number, N: number, chunk: number, d0: number, d1: number): void;

  // ---- conv.ts
  conv1dForward(out: Ptr, x: Ptr, w: Ptr, bias: Ptr, B: number, L: number, C: number, K: number): void;
  conv1dBackward(dx: Ptr, dw: Ptr, dbias: Ptr, dout: Ptr, x: Ptr, w: Ptr, B: number, L: number, C: number, K: number): void;
  conv1dStep(out: Ptr, state: Ptr, x: Ptr, w: Ptr, bias: Ptr, B: number, C: number, K: number): void;

  // ---- norm.ts
  rmsnormForward(out: Ptr, rstd: Ptr, x: Ptr, w: Ptr, rows: number, D: number, eps: number): void;
  rmsnormBackward(dx: Ptr, dw: Ptr, dout: Ptr, x: Ptr, w: Ptr, rstd: Ptr, rows: number, D: number): void;
  /** hOut = h + delta; out = RMSNorm(hOut)·w (hOut may alias h) */
  addRmsnormForward(hOut: Ptr, out: Ptr, rstd: Ptr, h: Ptr, delta: Ptr, w: Ptr, rows: number, D: number, eps: number): void;

  // ---- elementwise.ts
  add(out: Ptr, x: Ptr, y: Ptr, n: number): void;
  mul(out: Ptr, x: Ptr, y: Ptr, n: number): void;
  accumulate(dst: Ptr, src: Ptr, n: number): void;
  mulAccumulate(dst: Ptr, x: Ptr, y: Ptr, n: number): void;
  siluForward(out: Ptr, x: Ptr, n: number): void;
  siluBackward(dx: Ptr, dout: Ptr, x: Ptr, n: number): void;
  softplusForward(out: Ptr, x: Ptr, n: number): void;
  softplusBackward(dx: Ptr, dout: Ptr, x: Ptr, n: number): void;
  /** out (n) = exp(x) with the kernels' vector exp (no reference twin; used to test it). */
  expForward(out: Ptr, x: Ptr, n: number): void;
  /** dst (n) += Σ_g partials[g] (partial g at partials + g·ld floats), in the fixed order g = 0, 1, … */
  accumulatePartials(dst: Ptr, partials: Ptr, G: number, n: number, ld: number): void;

  // ---- loss.ts (ids / targets are offsets of Int32 arrays)
  crossEntropyForward(losses: Ptr, lse: Ptr, logits: Ptr, targets: Ptr, rows: number, V: number): void;
  crossEntropyBackward(dlogits: Ptr, dloss: Ptr, logits: Ptr, lse: Ptr, targets: Ptr, rows: number, V: number): void;
  embeddingForward(out: Ptr, table: Ptr, ids: Ptr, n: number, D: number): void;
  embeddingBackward(dtable: Ptr, dout: Ptr, ids: Ptr, n: number, D: number): void;

  // ---- quant.ts (q8 / q4 blocks of 32; see src/kernels/ref/quant.ts)
  quantizeQ8(q: Ptr, scales: Ptr, x: Ptr, rows: number, K: number): void;
  quantizeQ4(q: Ptr, scales: Ptr, x: Ptr, rows: number, K: number): void;
  dequantizeQ8(out: Ptr, q: Ptr, scales: Ptr, rows: number, K: number): void;
  dequantizeQ4(out: Ptr, q: Ptr, scales: Ptr, rows: number, K: number): void;
  embeddingQ8(out: Ptr, q: Ptr, scales: Ptr, ids: Ptr, n: number, D: number): void;
  embeddingQ4(out: Ptr, q: Ptr, scales: Ptr, ids: Ptr, n: number, D: number): void;
  matmulQ8(out: Ptr, qx: Ptr, sx: Ptr, qw: Ptr, sw: Ptr, M: number, N: number, K: number): void;
  matmulQ4(out: Ptr, qx: Ptr, sx: Ptr, qw: Ptr, sw: Ptr, M: number, N: number, K: number): void;
  matmulQ8Strided(out: Ptr, qx: Ptr, sx: Ptr, qw: Ptr, sw: Ptr, M: number, N: number, K: number, ldo: number): void;
  matmulQ4Strided(out: Ptr, qx: Ptr, sx: Ptr, qw: Ptr, sw: Ptr, M: number, N: number, K: number, ldo: number): void;

  // ---- bench.ts (measurement only, no reference twin)
  /** out[0] = Σ x (n), read as `streams` parts side by side: `frugal bench`'s bandwidth figure. */
  readBandwidth(out: Ptr, x: Ptr, n: number, streams: number): void;

  // ---- optim.ts
  adamwStep(p: Ptr, g: Ptr, m: Ptr, v: Ptr, n: number, lr: number, beta1: number, beta2: number,
    eps: number, wd: number, bc1: number, bc2: number): void;
}

export type WasmKernelName = keyof WasmKernels;

const NAMES: readonly WasmKernelName[] = [
  'matmulNT', 'matmulNN', 'matmulTN', 'matmulNTStrided', 'matmulNNStrided', 'matmulTNStrided',
  'scanForward', 'scanBackward', 'scanStep', 'scanForwardRange', 'scanBackwardRange', 'accumulatePartials',
  'conv1dForward', 'conv1dBackward', 'conv1dStep',
  'rmsnormForward', 'rmsnormBackward', 'addRmsnormForward',
  'add', 'mul', 'accumulate', 'mulAccumulate',
  'siluForward', 'siluBackward', 'softplusForward', 'softplusBackward', 'expForward',
  'crossEntropyForward', 'crossEntropyBackward', 'embeddingForward', 'embeddingBackward',
  'adamwStep', 'readBandwidth',
  'quantizeQ8', 'quantizeQ4', 'dequantizeQ8', 'dequantizeQ4', 'embeddingQ8', 'embeddingQ4',
  'matmulQ8', 'matmulQ4', 'matmulQ8Strided', 'matmulQ4Strided',
];

/** Names of the kernels the wasm module provides (the rest stay reference-only). */
export function wasmKernelNames(): string[] {
  return [...NAMES];
}

/** Location of the compiled module: build/ at the package root, from src/kernels/wasm/ or dist/kernels/wasm/. */
export const WASM_URL = new URL('../../../build/kernels.wasm', import.meta.url);

let cachedModule: WebAssembly.Module | null = null;

/** Compile build/kernels.wasm (synchronously). Throws a clear error when it has not been built. */
export function compileWasmModule(): WebAssembly.Module {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    const b = readFileSync(WASM_URL);
    bytes = new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new Error(`frugal: cannot read ${WASM_URL.pathname} (${(e as Error).message}); run \`npm run build:wasm\``);
  }
  return new WebAssembly.Module(bytes);
}

/**
 * The compiled module, compiled once and cached. A WebAssembly.Module can be posted to worker
 * threads, which instantiate it on the same shared memory with `instantiateWasmKernels`.
 */
export function getWasmModule(): WebAssembly.Module {
  if (cachedModule === null) cachedModule = compileWasmModule();
  return cachedModule;
}

/** Instantiate a compiled kernels module on `memory` (a shared memory, e.g. Heap.memory). */
export function instantiateWasmKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): WasmKernels {
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: (): never => { throw new Error('frugal: wasm kernel aborted'); },
    },
  });
  const ex = instance.exports as Record<string, unknown>;
  const out: Partial<Record<WasmKernelName, unknown>> = {};
  for (const name of NAMES) {
    const f = ex[name];
    if (typeof f !== 'function') throw new Error(`frugal: build/kernels.wasm lacks kernel ${name}; rebuild with \`npm run build:wasm\``);
    out[name] = f;
  }
  return out as WasmKernels;
}

/** The kernels, instantiated on `memory` (synchronous; the module is compiled once per process). */
export function loadWasmKernels(memory: WebAssembly.Memory): WasmKernels {
  return instantiateWasmKernels(getWasmModule(), memory);
}
