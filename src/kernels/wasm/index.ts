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
import { setFlagsFromString } from 'node:v8';
import { FrugalError } from '../../io/errors.js';
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
  'transpose',
  'padRows',
  // matmul.ts, weights in panels of four rows (ref/panels.ts)
  'packPanels4',
  'unpackPanels4',
  'matmulNTP4',
  'matmulNTP4Strided',
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
  // mamba1.ts (Mamba-1's decoding step fused around its products; the range form for threads;
  // the prefill's Δ and gate)
  'mambaConvStep',
  'mambaScanStep',
  'mambaScanStepRange',
  'mambaDeltaPrefill',
  'mambaGatePrefill',
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
  'fillZero',
  'accumulate',
  'mulAccumulate',
  'accumulatePartials',
  'sliceColumns',
  'sliceColumnsBackward',
  'swigluForward',
  'swigluBackward',
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
  // quant4x4.ts (q8/q4 weights repacked in groups of four rows, activations prepared once a product)
  'repackQ4x4',
  'repackQ8x4',
  'prepQ4x4',
  'prepQ8x4',
  'matmulQ4x4',
  'matmulQ4x4Strided',
  'matmulQ8x4',
  'matmulQ8x4Strided',
  'dequantizeQ4x4',
  'dequantizeQ8x4',
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

/**
 * The opt-in relaxed-SIMD build of the same kernels (asconfig.json's `relaxed` target): fused
 * multiply-adds and the relaxed integer dot product; `--kernels wasm-relaxed` runs it.
 */
export const RELAXED_WASM_URL = new URL('../../../build/kernels-relaxed.wasm', import.meta.url);

/** Which build of the kernels: plain SIMD (the default: the same bits everywhere) or relaxed SIMD. */
export type WasmBuild = 'simd' | 'relaxed-simd';

const cachedModules = new Map<WasmBuild, WebAssembly.Module>();

function readModuleBytes(url: URL): Uint8Array<ArrayBuffer> {
  try {
    const b = readFileSync(url);
    return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new Error(`frugal: cannot read ${url.pathname} (${(e as Error).message}); run \`npm run build:wasm\``);
  }
}

/** Compile build/kernels.wasm (synchronously). Throws a clear error when it has not been built. */
export function compileWasmModule(): WebAssembly.Module {
  return new WebAssembly.Module(readModuleBytes(WASM_URL));
}

/** Thrown when this JavaScript engine cannot run the relaxed-SIMD build: a usage error (exit 2), pick `wasm`. */
export class RelaxedSimdUnavailable extends FrugalError {
  /** The message without its `--kernels wasm-relaxed: ` head (for an error that names the option itself). */
  readonly reason: string;
  constructor(detail: string) {
    const reason = `this Node (${process.version}) cannot run relaxed SIMD (${detail}); use --kernels wasm`;
    super(`--kernels wasm-relaxed: ${reason}`, 2);
    this.name = 'RelaxedSimdUnavailable';
    this.reason = reason;
  }
}

/**
 * The relaxed-SIMD build's bytes, once `WebAssembly.validate` accepts them. Node 20's V8 has relaxed
 * SIMD behind --experimental-wasm-relaxed-simd (off by default): the flag is turned on here, only
 * when validation fails without it (later V8s ship the feature and may not know the flag). V8 flags
 * are process-wide, so worker threads instantiate the posted module too.
 */
export function relaxedWasmBytes(): Uint8Array<ArrayBuffer> {
  const bytes = readModuleBytes(RELAXED_WASM_URL);
  if (WebAssembly.validate(bytes)) return bytes;
  try {
    setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch (e) {
    throw new RelaxedSimdUnavailable(`cannot set the V8 flag: ${(e as Error).message}`);
  }
  if (!WebAssembly.validate(bytes)) throw new RelaxedSimdUnavailable('WebAssembly.validate rejects build/kernels-relaxed.wasm');
  return bytes;
}

/**
 * Use `module` (compiled elsewhere, e.g. from a fetched build/kernels.wasm in a browser, where there
 * is no file system) as the kernels module from now on.
 */
export function useWasmModule(module: WebAssembly.Module): void {
  cachedModules.set('simd', module);
}

/**
 * The compiled module of `build` (default: plain SIMD), compiled once and cached. A
 * WebAssembly.Module can be posted to worker threads, which instantiate it on the same shared
 * memory with `instantiateWasmKernels`.
 */
export function getWasmModule(build: WasmBuild = 'simd'): WebAssembly.Module {
  let m = cachedModules.get(build);
  if (m === undefined) {
    m = build === 'simd' ? compileWasmModule() : new WebAssembly.Module(relaxedWasmBytes());
    cachedModules.set(build, m);
  }
  return m;
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

/** The kernels of `build`, instantiated on `memory` (synchronous; each module is compiled once per process). */
export function loadWasmKernels(memory: WebAssembly.Memory, build: WasmBuild = 'simd'): WasmKernels {
  return instantiateWasmKernels(getWasmModule(build), memory);
}
