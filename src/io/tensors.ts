/**
 * One description of a stored tensor, whatever file format holds it (safetensors, a shard, a
 * PyTorch zip), and the conversions between the float formats checkpoints use.
 *
 * Readers only index files (names, dtypes, shapes, byte ranges); values are read later, one tensor
 * at a time, straight into the destination (a view of the wasm heap when loading a model), with
 * F16 / BF16 / F64 converted through a small scratch buffer. That keeps peak memory at the size of
 * the f32 weights instead of file + copy + weights.
 */
import { inputError } from './errors.js';
import type { ByteSource } from './bytesource.js';
import { checkRange } from './bytesource.js';

export type FloatDtype = 'F32' | 'F16' | 'BF16' | 'F64';
export const FLOAT_DTYPES: readonly FloatDtype[] = ['F32', 'F16', 'BF16', 'F64'];

/** Bytes per element of every safetensors dtype (decoding accepts all of them). */
export const DTYPE_BYTES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
});

export interface TensorEntry {
  /** Name as stored in the file. */
  name: string;
  /** safetensors dtype code (F32, F16, BF16, F64, I64, ...). */
  dtype: string;
  shape: number[];
  src: ByteSource;
  /** Absolute byte offset of the first element in `src`. */
  offset: number;
  byteLength: number;
  /** Tensors that share one stored buffer (a tied head in a PyTorch state dict) share this key. */
  storage?: string;
}

export function isFloatDtype(d: string): d is FloatDtype {
  return (FLOAT_DTYPES as readonly string[]).includes(d);
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const CHUNK_BYTES = 1 << 20; // scratch for converting reads: 1 MiB, a multiple of every element size
let SCRATCH: Uint8Array | null = null;

/** f16 bit pattern -> f32 value, all 65536 of them (256 KiB, built on first use). */
let F16_TABLE: Float32Array | null = null;
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1,
      exp = (h >> 10) & 0x1f,
      frac = h & 0x3ff;
    t[h] =
      exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac === 0 ? sign * Infinity : NaN) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  F16_TABLE = t;
  return t;
}

/**
 * f32 bit pattern -> f16 bit pattern, rounding to nearest even (IEEE 754 default), overflow to ±Inf,
 * NaN kept quiet. Matches numpy's astype(float16) and torch's .half().
 */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    let r = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (r & 1) === 1)) r++; // a carry into the exponent is still correct
    return sign | r;
  }
  // subnormal f16: value = m · 2^(exp - 150), unit 2^-24, so shift m right by 126 - exp
  const shift = 126 - exp;
  if (shift > 24) return sign;
  const m = mant | 0x800000;
  let r = m >>> shift;
  const rest = m & ((1 << shift) - 1),
    half = 1 << (shift - 1);
  if (rest > half || (rest === half && (r & 1) === 1)) r++;
  return sign | r;
}

/** bf16 bits (the top half of an f32) -> f32 value. */
export function bf16BitsToF32(h: number): number {
  BITS_U32[0] = (h & 0xffff) << 16;
  return BITS_F32[0];
}
const BITS_U32 = new Uint32Array(1);
const BITS_F32 = new Float32Array(BITS_U32.buffer);

/** Convert `n` little-endian elements of `dtype` in `raw` to floats in out[at .. at + n). */
function convertChunk(raw: Uint8Array, dtype: FloatDtype, out: Float32Array | Float64Array, at: number, n: number): void {
  const buf = raw.buffer,
    off = raw.byteOffset; // raw is a fresh scratch array: aligned, host order assumed LE below
  switch (dtype) {
    case 'F32': {
      const s = new Float32Array(buf, off, n);
      out.set(s, at);
      return;
    }
    case 'F64': {
      const s = new Float64Array(buf, off, n);
      out.set(s, at);
      return;
    }
    case 'F16': {
      const s = new Uint16Array(buf, off, n),
        t = f16Table();
      for (let i = 0; i < n; i++) out[at + i] = t[s[i]];
      return;
    }
    case 'BF16': {
      const s = new Uint16Array(buf, off, n);
      if (out instanceof Float32Array) {
        const o = new Uint32Array(out.buffer, out.byteOffset + at * 4, n);
        for (let i = 0; i < n; i++) o[i] = s[i] << 16;
      } else {
        for (let i = 0; i < n; i++) out[at + i] = bf16BitsToF32(s[i]);
      }
      return;
    }
  }
}

function requireFloat(e: TensorEntry, what: string): FloatDtype {
  if (!isFloatDtype(e.dtype)) {
    throw inputError(`${e.src.file}: tensor '${e.name}' has dtype ${e.dtype}; ${what} needs F32, F16, BF16 or F64 weights`);
  }
  if (!HOST_LE) throw new Error('frugal reads checkpoints on little-endian hosts only');
  return e.dtype;
}

/**
 * Read a float tensor into `out` (its element count must match), converting to out's precision.
 * F32 into a Float32Array is read directly into out's bytes: no intermediate copy.
 */
export function readFloatsInto(e: TensorEntry, out: Float32Array | Float64Array): void {
  const dtype = requireFloat(e, 'loading');
  const size = DTYPE_BYTES[dtype];
  const n = e.byteLength / size;
  if (n !== out.length) throw new Error(`readFloatsInto: ${e.name} has ${n} elements, destination ${out.length}`);
  checkRange(e.src, e.offset, e.byteLength, `tensor '${e.name}'`);
  if ((dtype === 'F32' && out instanceof Float32Array) || (dtype === 'F64' && out instanceof Float64Array)) {
    e.src.readInto(new Uint8Array(out.buffer, out.byteOffset, out.byteLength), e.offset);
    return;
  }
  // one scratch buffer for every conversion: a fresh one per tensor would leave hundreds of
  // megabytes of garbage for the collector during a large load
  SCRATCH ??= new Uint8Array(CHUNK_BYTES);
  const scratch = SCRATCH;
  const per = scratch.length / size;
  for (let i = 0; i < n; i += per) {
    const k = Math.min(per, n - i);
    const piece = scratch.subarray(0, k * size);
    e.src.readInto(piece, e.offset + i * size);
    convertChunk(piece, dtype, out, i, k);
  }
}

/** A tensor's values as a new Float32Array (tests and small tensors). */
export function readFloat32(e: TensorEntry): Float32Array {
  const out = new Float32Array(e.byteLength / (DTYPE_BYTES[e.dtype] ?? 1));
  readFloatsInto(e, out);
  return out;
}

/** Read a tensor's raw stored bytes into `dst` (e.g. a heap view of quantised int8 weights). */
export function readRawInto(e: TensorEntry, dst: Uint8Array): void {
  if (dst.length !== e.byteLength) throw new Error(`readRawInto: ${e.name} has ${e.byteLength} bytes, destination ${dst.length}`);
  checkRange(e.src, e.offset, e.byteLength, `tensor '${e.name}'`);
  e.src.readInto(dst, e.offset);
}

/** The raw stored bytes of a tensor (a new array). */
export function readRaw(e: TensorEntry): Uint8Array {
  checkRange(e.src, e.offset, e.byteLength, `tensor '${e.name}'`);
  const out = new Uint8Array(e.byteLength);
  e.src.readInto(out, e.offset);
  return out;
}

/** Index of the first non-finite value, or -1. */
export function firstNonFinite(v: Float32Array | Float64Array): number {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return i;
  return -1;
}

/** f32 values -> f16 bits. Throws an input error naming `what` when a finite value overflows f16. */
export function toF16Bits(v: Float32Array, what: string): Uint16Array {
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const h = f32BitsToF16Bits(bits[i]);
    if ((h & 0x7c00) === 0x7c00 && Number.isFinite(v[i])) {
      throw inputError(`${what}: value ${v[i]} at index ${i} is beyond the float16 range (±65504); keep this checkpoint in f32`);
    }
    out[i] = h;
  }
  return out;
}

/** Raw tensor bytes in `from` -> raw bytes in `to` (F32 or F16; same dtype returns the input). */
export function convertRaw(raw: Uint8Array, from: string, to: 'F32' | 'F16' | 'BF16', what: string): Uint8Array {
  if (from === to) return raw;
  if (to === 'BF16') throw inputError(`${what}: converting to bf16 is not supported; choose f32 or f16`);
  const n = raw.length / (DTYPE_BYTES[from] ?? 1);
  const f32 = new Float32Array(n);
  const aligned = new Uint8Array(raw); // copy: raw may sit at an odd offset
  if (!isFloatDtype(from)) throw inputError(`${what}: dtype ${from} is not a float type`);
  convertChunk(aligned, from, f32, 0, n);
  if (to === 'F32') return new Uint8Array(f32.buffer);
  const h = toF16Bits(f32, what);
  return new Uint8Array(h.buffer);
}
