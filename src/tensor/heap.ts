/**
 * One shared WebAssembly memory for every parameter, activation, gradient and optimiser moment.
 *
 * Tensors hold byte offsets into this memory, never long-lived typed-array views: growing a
 * WebAssembly memory replaces `memory.buffer`, and a view made before the growth no longer sees
 * the whole memory (for a non-shared memory it is detached and silently reads nothing). Every view
 * is therefore built on demand through `f32()` / `f64()` / `i32()`, which rebuild their cached
 * buffer whenever `memory.buffer` changed.
 *
 * Allocation is a first-fit free list over 64-byte-aligned blocks with coalescing on free; the
 * memory grows (in 64 KiB pages) when no free block fits. Offsets below `BASE` are left to the
 * WebAssembly kernels' own static data.
 */
import { inputError } from '../io/errors.js';

export const PAGE = 65536;
export const BASE = PAGE; // first 64 KiB reserved for the kernels module's static data and stack
export const ALIGN = 64;
export const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit

interface Block {
  offset: number;
  bytes: number;
}

export class Heap {
  readonly memory: WebAssembly.Memory;
  private buf: ArrayBufferLike;
  private u8v: Uint8Array;
  private free: Block[] = []; // sorted by offset, coalesced
  private used = new Map<number, number>(); // offset -> bytes
  private top = BASE; // end of the highest block ever handed out
  /** Test hook: called before every allocation (used to force growth at chosen moments). */
  onAlloc: ((bytes: number) => void) | null = null;
  /**
   * Zeroes `bytes` at `off` for alloc when set: the wasm backend's fillZero kernel (memory.fill, a
   * native memset: 4–5× the rate of the typed-array fill below, which a training step spends about
   * 1% of its time in at one thread).
   */
  zeroWith: ((off: number, bytes: number) => void) | null = null;

  constructor(initialPages = 32) {
    this.memory = new WebAssembly.Memory({ initial: Math.max(2, initialPages), maximum: MAX_PAGES, shared: true });
    this.buf = this.memory.buffer;
    this.u8v = new Uint8Array(this.buf);
  }

  /** Bytes currently handed out. */
  get usedBytes(): number {
    let s = 0;
    for (const b of this.used.values()) s += b;
    return s;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** Grow the memory by `pages` pages (also used by tests to grow it mid-computation). */
  grow(pages: number): void {
    const cur = this.memory.buffer.byteLength / PAGE;
    if (cur + pages > MAX_PAGES) {
      throw inputError(
        `frugal needs ${(((cur + pages) * PAGE) / 2 ** 30).toFixed(2)} GiB of WebAssembly memory, over the 4 GiB limit of wasm32; use a smaller model, batch or sequence length (or a quantised model)`,
      );
    }
    this.memory.grow(pages);
  }

  /**
   * Allocate `bytes` (rounded up to 64) and return the byte offset. Memory is zero-filled unless
   * `zero` is false (for outputs a kernel overwrites in full: filling them first is wasted traffic).
   */
  alloc(bytes: number, zero = true): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`heap: cannot allocate ${bytes} bytes`);
    if (this.onAlloc) this.onAlloc(bytes);
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.bytes >= size) {
        const off = b.offset;
        if (b.bytes === size) this.free.splice(i, 1);
        else {
          b.offset += size;
          b.bytes -= size;
        }
        this.used.set(off, size);
        if (zero) this.zeroFill(off, size);
        return off;
      }
    }
    const off = this.top;
    const end = off + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // grow by what is needed plus 1/8 slack, the slack capped so it never pushes past 4 GiB
      const need = Math.ceil((end - have) / PAGE),
        cur = have / PAGE;
      this.grow(need + Math.max(0, Math.min(Math.ceil(cur / 8), MAX_PAGES - cur - need)));
    }
    this.top = end;
    this.used.set(off, size);
    if (zero) this.zeroFill(off, size); // a block may have been used before and returned to the top
    return off;
  }

  /**
   * Zero `bytes` (a multiple of 64) at `off` (64-aligned) through 8-byte lanes: on a shared memory
   * V8 fills a Uint8Array byte by byte (about 7× slower here than a Float64Array over the same bytes).
   */
  private zeroFill(off: number, bytes: number): void {
    if (this.zeroWith) this.zeroWith(off, bytes);
    else this.f64(off, bytes / 8).fill(0);
  }

  /** Return a block to the free list. */
  release(offset: number): void {
    const size = this.used.get(offset);
    if (size === undefined) throw new Error(`heap: release of unknown offset ${offset}`);
    this.used.delete(offset);
    if (offset + size === this.top) {
      this.top = offset;
      // fold a free block that now touches the top back into it
      const last = this.free[this.free.length - 1];
      if (last && last.offset + last.bytes === this.top) {
        this.top = last.offset;
        this.free.pop();
      }
      return;
    }
    let lo = 0,
      hi = this.free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.free[mid].offset < offset) lo = mid + 1;
      else hi = mid;
    }
    this.free.splice(lo, 0, { offset, bytes: size });
    const next = this.free[lo + 1];
    const cur = this.free[lo];
    if (next && cur.offset + cur.bytes === next.offset) {
      cur.bytes += next.bytes;
      this.free.splice(lo + 1, 1);
    }
    const prev = this.free[lo - 1];
    if (prev && prev.offset + prev.bytes === cur.offset) {
      prev.bytes += cur.bytes;
      this.free.splice(lo, 1);
    }
  }

  private refresh(): void {
    if (this.memory.buffer !== this.buf) {
      this.buf = this.memory.buffer;
      this.u8v = new Uint8Array(this.buf);
    }
  }

  u8(): Uint8Array {
    this.refresh();
    return this.u8v;
  }
  f32(offset: number, length: number): Float32Array {
    this.refresh();
    return new Float32Array(this.buf, offset, length);
  }
  f64(offset: number, length: number): Float64Array {
    this.refresh();
    return new Float64Array(this.buf, offset, length);
  }
  i32(offset: number, length: number): Int32Array {
    this.refresh();
    return new Int32Array(this.buf, offset, length);
  }
}
