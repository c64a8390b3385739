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
import type * as ref from '../ref/index.js';
import type { F } from '../ref/types.js';

/** Byte offset into the shared memory. */
export type Ptr = number;

/**
 * The kernels build/kernels.wasm exports, listed once. Each is the f32 twin of the reference kernel
 * of the same name (src/kernels/ref/, which documents it), so its signature is derived from that
 * kernel's below; a name without a reference kernel does not compile. assembly/kernels.ts exports
 * the same names, and instantiating a module that lacks one fails with its name.
 */
export const WASM_KERNELS = [
  // matmul.ts (beta 0 overwrites out, otherwise accumulates; the strided forms compute one block for threads)
  'matmulNT',
  'matmulNN',
  'matmulTN',
  'matmulNTStrided',
  'matmulNNStrided',
  'matmulTNStrided',
  // scan.ts (hck = 0 / dh0 = 0 skip; the range forms compute some channels for threads)
  'scanForward',
  'scanBackward',
  'scanStep',
  'scanForwardRange',
  'scanBackwardRange',
  // ssd.ts, mamba2.ts (Mamba-2: work = ssdWorkSize floats of scratch)
  'ssdRecurrent',
  'ssdChunkForward',
  'ssdChunkBackward',
  'dtSoftplusForward',
  'dtSoftplusBackward',
  'gatedRmsnormForward',
  'gatedRmsnormBackward',
  // mamba3.ts (Mamba-3's scan forward, SISO and MIMO: prefill, decoding and the taped forward; work = 2RN floats)
  'mamba3ScanForward',
  'mamba3MimoScanForward',
  // mamba3-back.ts (the scan backward of both: work = mamba3WorkSize floats)
  'mamba3MimoScanBackward',
  // mimo.ts (Mamba-3 MIMO's rank projections; dx, dO, dw = 0 skip)
  'mimoUpForward',
  'mimoUpBackward',
  'mimoDownForward',
  'mimoDownBackward',
  // mamba1.ts (Mamba-1's decoding step fused around its products; the range form for threads)
  'mambaConvStep',
  'mambaScanStep',
  'mambaScanStepRange',
  // conv.ts, norm.ts
  'conv1dForward',
  'conv1dPrefill',
  'conv1dBackward',
  'conv1dStep',
  'rmsnormForward',
  'rmsnormBackward',
  'addRmsnormForward',
  // elementwise.ts
  'add',
  'mul',
  'accumulate',
  'mulAccumulate',
  'accumulatePartials',
  'sliceColumns',
  'siluForward',
  'siluBackward',
  'softplusForward',
  'softplusBackward',
  'expForward',
  // loss.ts, optim.ts, bench.ts
  'crossEntropyForward',
  'crossEntropyBackward',
  'embeddingForward',
  'embeddingBackward',
  'adamwStep',
  'readBandwidth',
  // quant.ts (q8 / q4 blocks of 32)
  'quantizeQ8',
  'quantizeQ4',
  'dequantizeQ8',
  'dequantizeQ4',
  'embeddingQ8',
  'embeddingQ4',
  'matmulQ8',
  'matmulQ4',
  'matmulQ8Strided',
  'matmulQ4Strided',
] as const satisfies readonly (keyof typeof ref)[];

export type WasmKernelName = (typeof WASM_KERNELS)[number];

/**
 * A reference parameter as the wasm kernel takes it: arrays (and absent optional arrays) as byte
 * offsets, 0 for absent; flags as 0 or 1 (a wasm bool is an i32, and thread jobs carry numbers only).
 */
type ToPtr<P> = P extends F | Int32Array | Int8Array | Uint8Array | null ? Ptr : P extends boolean ? number : P;
/** A reference kernel's parameter list with every array replaced by its byte offset. */
export type PtrArgs<T extends readonly unknown[]> = { [I in keyof T]: ToPtr<T[I]> };

/** The wasm kernels, each typed from its reference twin's signature. */
export type WasmKernels = { readonly [K in WasmKernelName]: (...args: PtrArgs<Parameters<(typeof ref)[K]>>) => void };

/** Names of the kernels the wasm module provides (the rest stay reference-only). */
export function wasmKernelNames(): WasmKernelName[] {
  return [...WASM_KERNELS];
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
 * Use `module` (compiled elsewhere, e.g. from a fetched build/kernels.wasm in a browser, where there
 * is no file system) as the kernels module from now on.
 */
export function useWasmModule(module: WebAssembly.Module): void {
  cachedModule = module;
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
      abort: (): never => {
        throw new Error('frugal: wasm kernel aborted');
      },
    },
  });
  const ex = instance.exports as Record<string, unknown>;
  const out: Partial<Record<WasmKernelName, unknown>> = {};
  for (const name of WASM_KERNELS) {
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
