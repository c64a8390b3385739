import type { Heap } from './heap.js';

export type DType = 'f32' | 'f64' | 'i32' | 'i8' | 'u8';
export const BYTES: Readonly<Record<DType, number>> = { f32: 4, f64: 8, i32: 4, i8: 1, u8: 1 };

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/**
 * A tensor is a shape, a dtype and a byte offset into the engine's one shared memory.
 * It never keeps a typed-array view: `data()` builds a fresh one (see heap.ts for why).
 */
export class Tensor {
  readonly heap: Heap;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  offset: number;
  /** Gradient, allocated on demand by the tape (or up front for parameters). */
  grad: Tensor | null = null;
  /** Whether gradients flow into this tensor (parameters, and outputs of ops on them). */
  requiresGrad = false;
  /**
   * A 2-D f32 weight whose values are held in panels of four rows (src/kernels/ref/panels.ts), the
   * layout inference products read; false: the row layout everything else reads (src/ops/panels.ts).
   */
  panels = false;
  private disposed = false;

  /** `zero` false leaves the values as the memory held them (see Engine.empty). */
  constructor(heap: Heap, shape: readonly number[], dtype: DType, zero = true) {
    this.heap = heap;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.offset = heap.alloc(this.size * BYTES[dtype], zero);
  }

  get byteLength(): number {
    return this.size * BYTES[this.dtype];
  }

  /** A fresh view of the values (Float32Array, Float64Array, Int32Array, Int8Array or Uint8Array by dtype). */
  data(): Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array {
    this.check();
    switch (this.dtype) {
      case 'f32':
        return this.heap.f32(this.offset, this.size);
      case 'f64':
        return this.heap.f64(this.offset, this.size);
      case 'i32':
        return this.heap.i32(this.offset, this.size);
      case 'i8':
        return new Int8Array(this.heap.u8().buffer, this.offset, this.size);
      case 'u8':
        return new Uint8Array(this.heap.u8().buffer, this.offset, this.size);
    }
  }

  /** A fresh float view; throws for integer tensors. */
  floats(): Float32Array | Float64Array {
    const d = this.data();
    if (!(d instanceof Float32Array || d instanceof Float64Array)) throw new Error(`tensor of shape [${this.shape}] holds i32, not floats`);
    return d;
  }

  ints(): Int32Array {
    const d = this.data();
    if (!(d instanceof Int32Array)) throw new Error(`tensor of shape [${this.shape}] holds ${this.dtype}, not i32`);
    return d;
  }

  /** Copy values in (converting precision as needed). */
  set(values: ArrayLike<number>): this {
    if (values.length !== this.size) throw new Error(`set: ${values.length} values for a tensor of size ${this.size} [${this.shape}]`);
    this.data().set(values);
    return this;
  }

  /** A copy of the values as a plain Float64Array (for tests and reports). */
  toFloat64(): Float64Array {
    return Float64Array.from(this.data());
  }

  zero(): void {
    this.data().fill(0);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.heap.release(this.offset);
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  private check(): void {
    if (this.disposed) throw new Error(`use of a disposed tensor of shape [${this.shape}]`);
  }
}
