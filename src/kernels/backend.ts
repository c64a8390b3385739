import * as ref from './ref/index.js';
import type { F } from './ref/types.js';
import { Tensor } from '../tensor/index.js';
import type { Heap } from '../tensor/index.js';
import { getWasmModule, instantiateWasmKernels } from './wasm/index.js';
import { ThreadPool, callKernel } from './threads.js';
import type { PoolStats } from './threads.js';
import { threadedKernels } from './parallel.js';

/**
 * A backend is the set of kernels with tensor arguments. It is derived from the reference kernels'
 * own signatures (every typed-array parameter becomes a Tensor), so the list is kept in one place.
 * - `ref`: each tensor becomes a fresh typed-array view (f32 or f64) and the TypeScript twin runs.
 * - `wasm`: each tensor becomes its byte offset and the WebAssembly SIMD kernel runs (f32 only);
 *   kernels without a wasm twin run their reference version on f32 views.
 */
type RefKernels = typeof ref;
type KernelName = {
  [K in keyof RefKernels]: RefKernels[K] extends (a: never, b: never, ...rest: never[]) => unknown ? K : never;
}[keyof RefKernels];
type ToTensor<P> = P extends F ? Tensor : P extends F | null ? Tensor | null : P extends Int32Array | Int8Array | Uint8Array ? Tensor : P;
type TensorArgs<T extends unknown[]> = { [I in keyof T]: ToTensor<T[I]> };
export type Backend = {
  readonly [K in KernelName]: (...args: TensorArgs<Parameters<RefKernels[K]>>) => ReturnType<RefKernels[K]>;
} & {
  readonly kind: KernelKind;
  readonly wasmKernels: readonly string[];
  readonly threads: number;
  dispose(): void;
  parallelRuns(): number;
  /** The thread pool's counters (zeros without workers). */
  poolStats(): PoolStats;
};

/**
 * Which kernels run the model: WebAssembly SIMD (`'wasm'`, the default: the same bits in Node and
 * every browser), the opt-in relaxed-SIMD build of the same kernels (`'wasm-relaxed'`: fused
 * multiply-adds and the relaxed integer dot product, faster where the CPU has them, last bits not
 * identical), or their plain TypeScript reference twins (`'ref'`).
 */
export type KernelKind = 'wasm' | 'wasm-relaxed' | 'ref';
export const KERNEL_KINDS: readonly KernelKind[] = ['wasm', 'wasm-relaxed', 'ref'];

/** The WebAssembly builds among the kernel kinds. */
export type WasmKind = Exclude<KernelKind, 'ref'>;
export const WASM_KINDS: readonly WasmKind[] = ['wasm', 'wasm-relaxed'];

/** Whether `kind` runs a WebAssembly build (f32 only, worker threads, the blocked attention). */
export function isWasm(kind: KernelKind): kind is WasmKind {
  return kind !== 'ref';
}

type AnyKernel = (...args: unknown[]) => unknown;

function isKernel(v: unknown): v is AnyKernel {
  return typeof v === 'function' && v.length > 1;
}

/**
 * `threads` > 1 starts worker threads for the wasm kernels (see threads.ts and parallel.ts); the
 * reference kernels always run on the calling thread.
 */
export function createBackend(kind: KernelKind, heap: Heap, threads = 1): Backend {
  const table: Record<string, unknown> = {
    kind,
    wasmKernels: [],
    threads: isWasm(kind) ? threads : 1,
    dispose: () => {},
    parallelRuns: () => 0,
    poolStats: (): PoolStats => ({ runs: 0, joinMs: 0, lateJoins: 0, sleeps: 0, wakes: 0, chunks: 0, callerChunks: 0 }),
  };
  let wasm: Record<string, AnyKernel | undefined> | null = null;
  if (isWasm(kind)) {
    const module = getWasmModule(kind === 'wasm-relaxed' ? 'relaxed-simd' : 'simd');
    const main = instantiateWasmKernels(module, heap.memory);
    heap.zeroWith = (off, bytes) => main.fillZero(off, bytes / 4);
    const pool = new ThreadPool(heap.memory, module, main, threads);
    wasm = { ...main, ...threadedKernels(pool, main, heap) } as unknown as Record<string, AnyKernel | undefined>;
    table.dispose = () => pool.dispose();
    table.parallelRuns = () => pool.parallelRuns;
    table.poolStats = () => pool.stats();
  }
  const wasmNames: string[] = [];
  for (const [name, fn] of Object.entries(ref)) {
    if (!isKernel(fn)) continue;
    const fast = wasm?.[name];
    if (fast) {
      wasmNames.push(name);
      table[name] = (...args: unknown[]) => {
        for (let i = 0; i < args.length; i++) {
          const a = args[i];
          if (a instanceof Tensor) {
            if (a.dtype === 'f64') throw new Error(`wasm kernel ${name}: float64 tensors need --kernels ref`);
            args[i] = a.offset;
          } else if (a === null) args[i] = 0;
        }
        // spelled out, not spread: a spread call into wasm costs a page's V8 about a microsecond
        // (threads.ts callKernel), and a decoding step makes some thirty kernel calls
        return callKernel(fast as (...a: number[]) => unknown, args as number[], args.length);
      };
    } else {
      table[name] = (...args: unknown[]) => {
        for (let i = 0; i < args.length; i++) {
          const a = args[i];
          if (a instanceof Tensor) args[i] = a.data();
        }
        return (fn as AnyKernel)(...args);
      };
    }
  }
  table.wasmKernels = wasmNames;
  return table as unknown as Backend;
}
