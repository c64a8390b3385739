import type { Weight } from '../tensor/index.js';
import type { LoraPair } from './ops.js';
import { Heap, Tensor } from '../tensor/index.js';
import type { DType } from '../tensor/index.js';
import { createBackend, isWasm } from '../kernels/backend.js';
import type { Backend, KernelKind } from '../kernels/backend.js';
import type { Tape } from './tape.js';

export interface EngineOptions {
  kernels?: KernelKind; // default 'wasm'; 'wasm-relaxed' throws FrugalError (exit 2) where relaxed SIMD cannot run
  dtype?: 'f32' | 'f64'; // float64 needs the reference kernels (gradient checks)
  initialPages?: number;
  threads?: number; // worker threads for the wasm kernels (default 1: the calling thread only)
  /** false: inference keeps every weight in the row layout instead of panels of four rows (ops/panels.ts); same bits, slower products. */
  panels?: boolean;
}

/**
 * The engine owns the shared memory, the kernel backend, the float dtype, the allocation scopes
 * and, while training, the tape. Every op takes the engine as its first argument.
 */
export class Engine {
  readonly heap: Heap;
  readonly k: Backend;
  readonly dtype: 'f32' | 'f64';
  /** Whether inference may hold weights in panels of four rows (EngineOptions.panels). */
  readonly panels: boolean;
  /** Set while recording a differentiable computation. */
  tape: Tape | null = null;
  /**
   * The attached LoRA adapter's pairs, by the base weight each updates (models/lora.ts): every
   * product over such a weight, taped (`linear`) or not (`linearInto`), adds its update unmerged,
   * so every architecture runs adapters on every path without knowing of them. Empty: no adapter.
   */
  readonly lora = new Map<Weight, LoraPair>();
  private scopes: Tensor[][] = [];

  constructor(opts: EngineOptions = {}) {
    const kernels = opts.kernels ?? 'wasm';
    this.dtype = opts.dtype ?? 'f32';
    this.panels = opts.panels ?? true;
    if (isWasm(kernels) && this.dtype === 'f64') throw new Error('float64 engines need --kernels ref (the wasm kernels are f32)');
    this.heap = new Heap(opts.initialPages);
    this.k = createBackend(kernels, this.heap, opts.threads ?? 1);
  }

  /** Stop the engine's worker threads (its tensors stay readable). */
  dispose(): void {
    this.k.dispose();
  }

  /** A new zero-filled tensor of the engine's float dtype (or `dtype`), owned by the current scope. */
  zeros(shape: readonly number[], dtype: DType = this.dtype): Tensor {
    return this.owned(new Tensor(this.heap, shape, dtype));
  }

  /**
   * A new tensor whose values are left as the memory held them, owned by the current scope: only
   * for the output of a kernel that writes every element before anything reads it (a product with
   * beta 0, an elementwise op). Skipping the zero-fill saves a pass over every activation.
   */
  empty(shape: readonly number[], dtype: DType = this.dtype): Tensor {
    return this.owned(new Tensor(this.heap, shape, dtype, false));
  }

  private owned(t: Tensor): Tensor {
    const s = this.scopes[this.scopes.length - 1];
    if (s) s.push(t);
    return t;
  }

  /** A tensor that outlives every scope (parameters, optimiser moments, recurrent state). */
  persistent(shape: readonly number[], dtype: DType = this.dtype): Tensor {
    return new Tensor(this.heap, shape, dtype);
  }

  fromValues(shape: readonly number[], values: ArrayLike<number>, dtype: DType = this.dtype): Tensor {
    return this.zeros(shape, dtype).set(values);
  }

  ids(values: ArrayLike<number>, shape: readonly number[] = [values.length]): Tensor {
    return this.fromValues(shape, values, 'i32');
  }

  /**
   * Run `fn` in an allocation scope: every tensor allocated inside is released at the end, except
   * those listed in `keep` (moved to the enclosing scope). Returns fn's result.
   */
  scope<T>(fn: () => T, keep: (r: T) => Tensor[] = () => []): T {
    this.scopes.push([]);
    let result: T;
    let kept: Tensor[] = [];
    try {
      result = fn();
      kept = keep(result);
    } finally {
      const owned = this.scopes.pop() as Tensor[];
      const outer = this.scopes[this.scopes.length - 1];
      for (const t of owned) {
        if (kept.includes(t)) {
          if (outer) outer.push(t);
        } else t.dispose();
      }
    }
    return result;
  }

  /** The gradient buffer of t, allocated (zeroed) in the current scope on first use. */
  gradOf(t: Tensor): Tensor {
    if (!t.grad) t.grad = this.zeros(t.shape, t.dtype);
    return t.grad;
  }
}
