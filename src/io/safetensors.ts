/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`,
 * offsets relative to the end of the header), then the raw little-endian tensor data.
 *
 * Why safetensors: it is the interchange format of the Hugging Face ecosystem, it cannot carry
 * code (unlike pickles), and its header says where every tensor lives, so a reader can index a
 * multi-gigabyte file by reading a few kilobytes. Files come from anywhere, so every size and
 * offset is validated against the real file size before anything is read or allocated.
 */
import { readFileSync } from 'node:fs';
import { inputError } from './errors.js';
import type { ByteSource } from './bytesource.js';
import { MemorySource, readBytes } from './bytesource.js';
import { DTYPE_BYTES, bf16BitsToF32 } from './tensors.js';
import type { TensorEntry } from './tensors.js';
import type { FileProducer } from './atomic.js';

export { DTYPE_BYTES } from './tensors.js';

export type SafeDtypeIn = 'F32' | 'F64' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'I8';

/**
 * A tensor to encode. F16 and BF16 data are raw bit patterns in a Uint16Array; I64 is a
 * BigInt64Array.
 */
export interface SafeTensorIn {
  name: string;
  dtype: SafeDtypeIn;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array | Int8Array | Uint16Array | BigInt64Array;
}

/** A tensor to write in a stream: `write` emits exactly its little-endian bytes, in pieces if it likes. */
export interface StreamTensor {
  name: string;
  dtype: SafeDtypeIn;
  shape: number[];
  write(emit: (chunk: Uint8Array) => void): void;
}

export interface SafeTensorInfo {
  dtype: string;
  shape: number[];
  /** Byte offsets into the data section (relative to `dataStart`). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafeTensorInfo>;
  /** Absolute byte offset of the data section in `bytes`. */
  dataStart: number;
  bytes: Uint8Array;
  /** Where the bytes came from, for error messages. */
  file: string;
}

/** A file indexed without reading its data: tensors point into `src`. */
export interface SafetensorsIndex {
  metadata: Record<string, string>;
  entries: Map<string, TensorEntry>;
  dataStart: number;
}

/** Header bigger than this is refused: real headers are kilobytes, and it is read into memory. */
export const MAX_HEADER_BYTES = 100_000_000;

type ArrayCtor = abstract new (...args: never[]) => SafeTensorIn['data'];
const EXPECTED_ARRAY: Record<SafeDtypeIn, ArrayCtor> = {
  F32: Float32Array,
  F64: Float64Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  I64: BigInt64Array,
  U8: Uint8Array,
  I8: Int8Array,
};

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Validate a shape; returns the element count, or calls `fail` with what is wrong. */
function checkShape(shape: unknown, fail: (what: string) => never): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    fail(`shape ${JSON.stringify(shape)} must be a list of non-negative integers`);
  }
  let count = 1;
  for (const d of shape as number[]) {
    count *= d;
    if (!Number.isSafeInteger(count)) fail(`shape ${JSON.stringify(shape)} has too many elements`);
  }
  return count;
}

/** The header (length prefix + JSON padded to 8 bytes) for tensors laid out contiguously in order. */
function encodeHeader(
  tensors: readonly { name: string; dtype: string; shape: number[] }[],
  metadata?: Record<string, string>,
): { header: Uint8Array; dataBytes: number } {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw inputError(`Safetensors metadata value for ${JSON.stringify(k)} must be a string, got ${typeof v}.`);
      }
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    const where = `tensor ${JSON.stringify(t.name)}`;
    if (t.name === '' || t.name === '__metadata__' || seen.has(t.name)) {
      throw inputError(`Cannot encode ${where}: names must be non-empty, unique and not "__metadata__".`);
    }
    seen.add(t.name);
    const size = Object.hasOwn(EXPECTED_ARRAY, t.dtype) ? DTYPE_BYTES[t.dtype] : undefined;
    if (size === undefined) {
      throw inputError(`Cannot encode ${where}: dtype ${String(t.dtype)} is not one of ${Object.keys(EXPECTED_ARRAY).join(', ')}.`);
    }
    const count = checkShape(t.shape, (what) => {
      throw inputError(`Cannot encode ${where}: ${what}.`);
    });
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + count * size] };
    offset += count * size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8); // align the data section to 8 bytes (TextEncoder: also in browsers)
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return { header: out, dataBytes: offset };
}

function rawBytes(data: SafeTensorIn['data']): Uint8Array {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LE || data.BYTES_PER_ELEMENT === 1) return raw;
  const k = data.BYTES_PER_ELEMENT,
    out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += k) for (let j = 0; j < k; j++) out[i + j] = raw[i + k - 1 - j];
  return out;
}

/** Encode tensors (in the given order, contiguous) plus optional string metadata. */
export function encodeSafetensors(tensors: SafeTensorIn[], metadata?: Record<string, string>): Uint8Array {
  for (const t of tensors) {
    const where = `tensor ${JSON.stringify(t.name)}`;
    const want = Object.hasOwn(EXPECTED_ARRAY, t.dtype) ? EXPECTED_ARRAY[t.dtype] : undefined;
    if (want !== undefined && !(t.data instanceof want)) {
      throw inputError(`Cannot encode ${where}: dtype ${t.dtype} needs a ${want.name}, got a ${t.data.constructor.name}.`);
    }
    if (want !== undefined && Array.isArray(t.shape) && t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (count !== t.data.length) {
        throw inputError(
          `Cannot encode ${where}: shape [${t.shape.join(', ')}] holds ${count} elements but the data has ${t.data.length}.`,
        );
      }
    }
  }
  const { header, dataBytes } = encodeHeader(tensors, metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  let pos = header.length;
  for (const t of tensors) {
    const raw = rawBytes(t.data);
    out.set(raw, pos);
    pos += raw.length;
  }
  return out;
}

/**
 * A producer for writeFileAtomic / writeDirAtomic that streams a safetensors file: the header, then
 * each tensor's bytes as its `write` emits them. Nothing larger than one emitted chunk is held.
 */
export function safetensorsProducer(
  tensors: StreamTensor[],
  metadata?: Record<string, string>,
): { producer: FileProducer; byteLength: number } {
  const { header, dataBytes } = encodeHeader(tensors, metadata);
  const producer: FileProducer = (write) => {
    write(header);
    for (const t of tensors) {
      const want = t.shape.reduce((a, b) => a * b, 1) * (DTYPE_BYTES[t.dtype] as number);
      let got = 0;
      t.write((chunk) => {
        got += chunk.length;
        write(chunk);
      });
      if (got !== want) throw new Error(`safetensors writer: tensor '${t.name}' emitted ${got} bytes, expected ${want}`);
    }
  };
  return { producer, byteLength: header.length + dataBytes };
}

/**
 * Validate a header object against a data section of `dataLen` bytes. `bad` throws the caller's
 * error. Returns the metadata and each tensor's dtype, shape and relative byte range.
 */
function validateHeader(
  parsed: unknown,
  dataLen: number,
  bad: (what: string) => never,
): { metadata: Record<string, string>; tensors: Map<string, SafeTensorInfo> } {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) bad('the header is not a JSON object');
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafeTensorInfo>();
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (
        typeof entry !== 'object' ||
        entry === null ||
        Array.isArray(entry) ||
        !Object.values(entry).every((v) => typeof v === 'string')
      ) {
        bad('"__metadata__" must be an object of string values');
      }
      metadata = Object.fromEntries(Object.entries(entry as Record<string, string>));
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad(`${where} is not an object`);
    const e = entry as Record<string, unknown>;
    const dtype = e.dtype;
    const size = typeof dtype === 'string' && Object.hasOwn(DTYPE_BYTES, dtype) ? DTYPE_BYTES[dtype] : undefined;
    if (size === undefined) bad(`${where} has unknown dtype ${JSON.stringify(dtype)}`);
    const count = checkShape(e.shape, (what) => bad(`${where}: ${what}`));
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
      bad(`${where} has data_offsets ${JSON.stringify(offs)}; it must be two non-negative integers [begin, end]`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > dataLen) {
      bad(`${where} has data_offsets [${begin}, ${end}] outside the ${dataLen}-byte data section`);
    }
    if (end - begin !== count * size) {
      bad(`${where} spans ${end - begin} bytes but shape [${(e.shape as number[]).join(', ')}] of ${String(dtype)} needs ${count * size}`);
    }
    tensors.set(name, { dtype: dtype as string, shape: [...(e.shape as number[])], begin, end });
  }
  const sorted = [...tensors.entries()].filter(([, t]) => t.end > t.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    const [pn, p] = sorted[i - 1]!;
    const [cn, c] = sorted[i]!;
    if (c.begin < p.end) bad(`tensors ${JSON.stringify(pn)} and ${JSON.stringify(cn)} overlap`);
  }
  return { metadata, tensors };
}

function badFile(file: string): (what: string) => never {
  return (what) => {
    throw inputError(
      `${file} is not a valid safetensors file: ${what}. ` + 'Re-export it, or check that the path points to a .safetensors file.',
    );
  };
}

/** Read, bound-check and parse the header of a safetensors source (the data is not read). */
function readHeader(src: ByteSource, bad: (what: string) => never): { parsed: unknown; dataStart: number } {
  if (src.size < 8) bad(`it has ${src.size} bytes, fewer than the 8-byte header length`);
  const len = readBytes(src, 0, 8, 'the header length');
  const n64 = new DataView(len.buffer).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) bad(`the header length ${n64} is over the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (8 + n > src.size) bad(`the header length ${n} runs past the end of the ${src.size}-byte file`);
  const headerBytes = src instanceof MemorySource ? src.view(8, n) : readBytes(src, 8, n, 'the header');
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    bad('the header is not valid UTF-8');
  }
  try {
    return { parsed: JSON.parse(text), dataStart: 8 + n };
  } catch (e) {
    bad(`the header is not JSON (${(e as Error).message})`);
  }
}

/** Index a safetensors file (any source) by reading its header only. */
export function indexSafetensors(src: ByteSource): SafetensorsIndex {
  const bad = badFile(src.file);
  const { parsed, dataStart } = readHeader(src, bad);
  const { metadata, tensors } = validateHeader(parsed, src.size - dataStart, bad);
  const entries = new Map<string, TensorEntry>();
  for (const [name, t] of tensors) {
    entries.set(name, { name, dtype: t.dtype, shape: t.shape, src, offset: dataStart + t.begin, byteLength: t.end - t.begin });
  }
  return { metadata, entries, dataStart };
}

/**
 * Parse and validate a safetensors file held in memory. `file` names it in error messages.
 * Tensor data is not copied; read it with `readTensorF32` and friends.
 */
export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const bad = badFile(file);
  const { parsed, dataStart } = readHeader(new MemorySource(bytes, file), bad);
  const { metadata, tensors } = validateHeader(parsed, bytes.length - dataStart, bad);
  return { metadata, tensors, dataStart, bytes, file };
}

/** Read and decode a safetensors file from disk (small files: optimiser state, goldens). */
export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'it does not exist'
        : code === 'EISDIR'
          ? 'it is a directory, not a file'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'ERR_FS_FILE_TOO_LARGE'
              ? 'it is too large to read into memory (over 2 GiB)'
              : (e as Error).message;
    throw inputError(`Cannot read safetensors file ${path}: ${why}. Check the path.`);
  }
  return decodeSafetensors(bytes, path);
}

function tensorView(
  f: SafetensorsFile,
  name: string,
  allowed: readonly string[],
  fn: string,
): { info: SafeTensorInfo; view: DataView; count: number } {
  const info = f.tensors.get(name);
  if (info === undefined) {
    const names = [...f.tensors.keys()];
    const list = names.slice(0, 10).join(', ') + (names.length > 10 ? ', ...' : '');
    throw inputError(
      `${f.file} has no tensor ${JSON.stringify(name)} (it has: ${list || 'none'}). ` +
        'The file may be from a different model or version.',
    );
  }
  if (!allowed.includes(info.dtype)) {
    throw inputError(
      `${f.file}: tensor ${JSON.stringify(name)} has dtype ${info.dtype}, but ${fn} reads only ` +
        `${allowed.join(', ')}. Convert the file to a supported dtype.`,
    );
  }
  const bytes = f.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset + f.dataStart + info.begin, info.end - info.begin);
  return { info, view, count: (info.end - info.begin) / (DTYPE_BYTES[info.dtype] as number) };
}

/** The raw little-endian bytes of a tensor (a view into the file, not a copy), any dtype. */
export function tensorBytes(f: SafetensorsFile, name: string): Uint8Array {
  const { view } = tensorView(f, name, Object.keys(DTYPE_BYTES), 'tensorBytes');
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** IEEE half-precision bits to a number (subnormals, infinities and NaN included). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits (the top half of a float32) to a number. */
export function bf16BitsToNumber(h: number): number {
  return bf16BitsToF32(h);
}

/** Convert any float tensor into `out` (a new array of the requested precision). */
function readFloat(f: SafetensorsFile, name: string, out: Float32Array | Float64Array, info: SafeTensorInfo, view: DataView): void {
  const n = out.length;
  switch (info.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToNumber(view.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToNumber(view.getUint16(i * 2, true));
      break;
    default:
      throw inputError(`${f.file}: tensor ${JSON.stringify(name)} has unsupported dtype ${info.dtype}.`);
  }
}

const FLOAT_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const;

/** A float tensor as a new array of `Ctor`'s precision; the matching stored dtype is one byte copy. */
function readFloats<T extends Float32Array | Float64Array>(
  f: SafetensorsFile,
  name: string,
  fn: string,
  Ctor: { new (n: number): T; new (b: ArrayBuffer): T },
  native: 'F32' | 'F64',
): T {
  const { info, view, count } = tensorView(f, name, FLOAT_DTYPES, fn);
  if (info.dtype === native && HOST_LE) {
    // one byte copy (into a fresh, hence aligned, buffer) instead of an element loop
    return new Ctor(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer);
  }
  const out = new Ctor(count);
  readFloat(f, name, out, info, view);
  return out;
}

/** A tensor as a new Float32Array (from F32, F16, BF16 or F64; F64 is rounded). */
export function readTensorF32(f: SafetensorsFile, name: string): Float32Array {
  return readFloats(f, name, 'readTensorF32', Float32Array, 'F32');
}

/** A tensor as a new Float64Array (from F64, F32, F16 or BF16). */
export function readTensorF64(f: SafetensorsFile, name: string): Float64Array {
  return readFloats(f, name, 'readTensorF64', Float64Array, 'F64');
}

/** A tensor as a new Int32Array (from I32, or I64 when every value fits in 32 bits). */
export function readTensorI32(f: SafetensorsFile, name: string): Int32Array {
  const { info, view, count } = tensorView(f, name, ['I32', 'I64'], 'readTensorI32');
  const out = new Int32Array(count);
  if (info.dtype === 'I32') {
    for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
    return out;
  }
  for (let i = 0; i < count; i++) {
    const v = view.getBigInt64(i * 8, true);
    if (v < -2147483648n || v > 2147483647n) {
      throw inputError(
        `${f.file}: tensor ${JSON.stringify(name)} element ${i} is ${v}, outside the 32-bit ` + 'integer range this reader supports.',
      );
    }
    out[i] = Number(v);
  }
  return out;
}
