/**
 * GGUF, llama.cpp's file format (version 3): magic "GGUF", version, tensor and key-value counts,
 * typed key-values (model hyperparameters, tokenizer), tensor infos (name, dimensions innermost
 * first, ggml type, offset), then the tensor data, each tensor aligned to `general.alignment`
 * (32). Written as a stream, one tensor at a time.
 *
 * ggml type codes are fixed by ggml and never renumbered: F32 0, F16 1, Q4_0 2, Q8_0 8.
 */
import { inputError } from './errors.js';
import type { FileProducer } from './atomic.js';
import { f32BitsToF16Bits } from './tensors.js';

export const GGML_TYPES = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type GgmlType = keyof typeof GGML_TYPES;
export const GGUF_ALIGNMENT = 32;
const QK = 32, // weights per block of every block type here (ggml QK8_0 = QK4_0)
  Q8_BYTES = 34, // 32 int8 values and one f16 scale
  Q4_BYTES = 18; // one f16 scale and 32 4-bit values, two to a byte

/** GGUF metadata value types. */
const VT = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: string[] }
  | { type: 'i32[]'; value: number[] };

export interface GgufTensor {
  name: string;
  /** Row-major (PyTorch / numpy) shape; GGUF stores it reversed. */
  shape: number[];
  type: GgmlType;
  /** The tensor's ggml bytes (see quantizeQ8_0, or F32 / F16 little-endian). */
  data: () => Uint8Array;
}

/** Bytes a tensor of `shape` occupies as `type`. */
export function ggmlBytes(type: GgmlType, shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  if (type === 'F32') return n * 4;
  if (type === 'F16') return n * 2;
  const row = shape[shape.length - 1] ?? 1;
  if (row % QK !== 0) throw new Error(`${type} needs rows that are a multiple of ${QK}, got ${row}`);
  return (n / QK) * (type === 'Q4_0' ? Q4_BYTES : Q8_BYTES);
}

/**
 * Q8_0 as ggml defines it, bit for bit: per block of 32, d = max|x| / 127 and q = round(x / d)
 * (round half away from zero, x multiplied by the f32 reciprocal), d stored as f16.
 */
export function quantizeQ8_0(v: Float32Array): Uint8Array {
  if (v.length % QK !== 0) throw new Error(`quantizeQ8_0: ${v.length} values is not a multiple of ${QK}`);
  const out = new Uint8Array((v.length / QK) * Q8_BYTES);
  const dv = new DataView(out.buffer);
  for (let b = 0, o = 0; b < v.length; b += QK, o += Q8_BYTES) {
    let amax = 0;
    for (let i = 0; i < QK; i++) amax = Math.max(amax, Math.abs(v[b + i]));
    const d = Math.fround(amax / 127);
    const id = d === 0 ? 0 : Math.fround(1 / d);
    dv.setUint16(o, f32ToF16Bits(d), true);
    for (let i = 0; i < QK; i++) {
      const x = Math.fround(v[b + i] * id);
      const r = Math.sign(x) * Math.floor(Math.abs(x) + 0.5); // roundf: half away from zero
      dv.setInt8(o + 2 + i, r);
    }
  }
  return out;
}

const f16Scratch = new Float32Array(1),
  f16ScratchBits = new Uint32Array(f16Scratch.buffer);
/** A block scale as ggml stores it: the f32 value rounded to f16 bits. */
function f32ToF16Bits(x: number): number {
  f16Scratch[0] = x;
  return f32BitsToF16Bits(f16ScratchBits[0]);
}

/** Dequantise blocks of `blockBytes` (an f16 scale d first): `put(out, b, o, d)` fills out[b .. b + 32) from bytes[o + 2 ..]. */
function dequantizeBlocks(
  bytes: Uint8Array,
  blockBytes: number,
  f16ToF32: (h: number) => number,
  put: (out: Float32Array, b: number, o: number, d: number) => void,
): Float32Array {
  const n = (bytes.length / blockBytes) * QK;
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0, o = 0; b < n; b += QK, o += blockBytes) put(out, b, o, f16ToF32(dv.getUint16(o, true)));
  return out;
}

/** Dequantise Q8_0 bytes (for tests and read-back checks). */
export function dequantizeQ8_0(bytes: Uint8Array, f16ToF32: (h: number) => number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return dequantizeBlocks(bytes, Q8_BYTES, f16ToF32, (out, b, o, d) => {
    for (let i = 0; i < QK; i++) out[b + i] = Math.fround(dv.getInt8(o + 2 + i) * d);
  });
}

/**
 * Q4_0 as ggml's reference quantiser defines it: per block of 32, the value of largest magnitude
 * (the first, on a tie) maps to -8, so d = that value / -8 (the sign matters: the other end of the
 * range, +7, is one step short); q = min(15, trunc(x/d + 8.5)), all in f32. Byte j holds value j
 * in its low nibble and value j + 16 in its high nibble; value = (q - 8) * d.
 */
export function quantizeQ4_0(v: Float32Array): Uint8Array {
  if (v.length % QK !== 0) throw new Error(`quantizeQ4_0: ${v.length} values is not a multiple of ${QK}`);
  const out = new Uint8Array((v.length / QK) * Q4_BYTES);
  const dv = new DataView(out.buffer);
  const nibble = (x: number, id: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(x * id) + 8.5)));
  for (let b = 0, o = 0; b < v.length; b += QK, o += Q4_BYTES) {
    let amax = 0,
      max = 0;
    for (let i = 0; i < QK; i++) {
      if (Math.abs(v[b + i]) > amax) {
        amax = Math.abs(v[b + i]);
        max = v[b + i];
      }
    }
    const d = Math.fround(max / -8);
    const id = d === 0 ? 0 : Math.fround(1 / d);
    dv.setUint16(o, f32ToF16Bits(d), true);
    for (let j = 0; j < QK / 2; j++) out[o + 2 + j] = nibble(v[b + j], id) | (nibble(v[b + j + 16], id) << 4);
  }
  return out;
}

/** Dequantise Q4_0 bytes (for read-back checks). */
export function dequantizeQ4_0(bytes: Uint8Array, f16ToF32: (h: number) => number): Float32Array {
  return dequantizeBlocks(bytes, Q4_BYTES, f16ToF32, (out, b, o, d) => {
    for (let j = 0; j < QK / 2; j++) {
      const q = bytes[o + 2 + j];
      out[b + j] = Math.fround(((q & 15) - 8) * d);
      out[b + j + 16] = Math.fround(((q >> 4) - 8) * d);
    }
  });
}

class Buf {
  private parts: number[] = [];
  u8(x: number) {
    this.parts.push(x & 0xff);
  }
  u32(x: number) {
    for (let i = 0; i < 4; i++) this.parts.push((x >>> (8 * i)) & 0xff);
  }
  u64(x: number) {
    const b = new DataView(new ArrayBuffer(8));
    b.setBigUint64(0, BigInt(x), true);
    for (let i = 0; i < 8; i++) this.parts.push(b.getUint8(i));
  }
  f32(x: number) {
    const b = new DataView(new ArrayBuffer(4));
    b.setFloat32(0, x, true);
    for (let i = 0; i < 4; i++) this.parts.push(b.getUint8(i));
  }
  str(s: string) {
    const e = new TextEncoder().encode(s);
    this.u64(e.length);
    for (const c of e) this.parts.push(c);
  }
  get length() {
    return this.parts.length;
  }
  bytes() {
    return Uint8Array.from(this.parts);
  }
}

function writeValue(b: Buf, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      b.u32(VT.UINT32);
      b.u32(v.value);
      return;
    case 'f32':
      b.u32(VT.FLOAT32);
      b.f32(v.value);
      return;
    case 'bool':
      b.u32(VT.BOOL);
      b.u8(v.value ? 1 : 0);
      return;
    case 'string':
      b.u32(VT.STRING);
      b.str(v.value);
      return;
    case 'string[]':
      b.u32(VT.ARRAY);
      b.u32(VT.STRING);
      b.u64(v.value.length);
      for (const s of v.value) b.str(s);
      return;
    case 'i32[]':
      b.u32(VT.ARRAY);
      b.u32(VT.INT32);
      b.u64(v.value.length);
      for (const x of v.value) b.u32(x >>> 0);
      return;
  }
}

/** Stream a GGUF v3 file: header, key-values, tensor infos, then each tensor's data, aligned. */
export function ggufProducer(kv: [string, GgufValue][], tensors: GgufTensor[]): FileProducer {
  const align = (x: number) => Math.ceil(x / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  const seen = new Set<string>();
  for (const [k] of kv) {
    if (seen.has(k)) throw new Error(`gguf: key ${k} twice`);
    seen.add(k);
  }
  return (write) => {
    const h = new Buf();
    for (const c of [0x47, 0x47, 0x55, 0x46]) h.u8(c); // "GGUF"
    h.u32(3);
    h.u64(tensors.length);
    h.u64(kv.length);
    for (const [k, v] of kv) {
      h.str(k);
      writeValue(h, v);
    }
    let offset = 0;
    const sizes: number[] = [];
    for (const t of tensors) {
      h.str(t.name);
      h.u32(t.shape.length);
      for (let i = t.shape.length - 1; i >= 0; i--) h.u64(t.shape[i]);
      h.u32(GGML_TYPES[t.type]);
      h.u64(offset);
      const size = ggmlBytes(t.type, t.shape);
      sizes.push(size);
      offset = align(offset + size);
    }
    const header = h.bytes();
    write(header);
    write(new Uint8Array(align(header.length) - header.length));
    tensors.forEach((t, i) => {
      const data = t.data();
      if (data.length !== sizes[i]) throw inputError(`gguf: tensor ${t.name} has ${data.length} bytes, expected ${sizes[i]}`);
      write(data);
      write(new Uint8Array(align(sizes[i]) - sizes[i]));
    });
  };
}
