/**
 * PyTorch checkpoint files (`pytorch_model.bin`) as torch.save (PyTorch >= 1.6) writes them: a
 * stored ZIP archive holding `<archive>/data.pkl` (the state-dict pickle, read by the safe
 * interpreter in pickle.ts) and one record `<archive>/data/<key>` of raw little-endian elements
 * per storage. Reading indexes each tensor's byte range inside its storage record; nothing else
 * in the archive is interpreted.
 */
import { inputError } from './errors.js';
import type { ByteSource } from './bytesource.js';
import { readBytes } from './bytesource.js';
import { crc32, readZipDirectory, zipProducer } from './zip.js';
import type { ZipWriteEntry } from './zip.js';
import { contiguousStride, readStateDictPickle, STORAGE_DTYPES, writeStateDictPickle } from './pickle.js';
import type { PickleTensor } from './pickle.js';
import { DTYPE_BYTES, elementCount } from './tensors.js';
import type { TensorEntry } from './tensors.js';
import type { FileProducer } from './atomic.js';

/** data.pkl of a state dict is kilobytes; far larger is refused before it is read. */
const MAX_PICKLE_BYTES = 16 << 20;

/** Index the tensors of a torch.save zip file. */
export function indexTorchBin(src: ByteSource): Map<string, TensorEntry> {
  if (src.size >= 2) {
    const head = readBytes(src, 0, 2, 'the file signature');
    if (head[0] === 0x80) {
      throw inputError(
        `${src.file} uses PyTorch's legacy (pre-1.6) serialisation, which frugal does not read; ` +
          'load and re-save it with a current torch.save, or convert it to safetensors',
      );
    }
  }
  const zip = readZipDirectory(src);
  const pkls = [...zip.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    throw inputError(
      `${src.file} is a zip archive but not a torch.save checkpoint (expected one <archive>/data.pkl, found ${pkls.length})`,
    );
  }
  const prefix = pkls[0].slice(0, -'data.pkl'.length);
  const pkl = zip.get(pkls[0])!;
  if (pkl.size > MAX_PICKLE_BYTES)
    throw inputError(`${src.file}: ${pkls[0]} is ${pkl.size} bytes, over the ${MAX_PICKLE_BYTES}-byte limit for a state dict`);
  const bytes = readBytes(src, pkl.dataOffset, pkl.size, pkls[0]);
  if (crc32(bytes) !== pkl.crc32)
    throw inputError(`${src.file}: ${pkls[0]} fails its CRC check (the file is corrupt; download or save it again)`);
  const refs = readStateDictPickle(bytes, `${src.file} (${pkls[0]})`);
  const entries = new Map<string, TensorEntry>();
  for (const [name, t] of refs) {
    const where = `${src.file}: tensor '${name}'`;
    const rec = zip.get(`${prefix}data/${t.storage.key}`);
    if (!rec) throw inputError(`${where} refers to storage '${t.storage.key}', which the archive does not contain`);
    const size = DTYPE_BYTES[t.storage.dtype] as number;
    if (rec.size !== t.storage.numel * size) {
      throw inputError(
        `${where}: storage '${t.storage.key}' should hold ${t.storage.numel} ${t.storage.dtype} elements ` +
          `(${t.storage.numel * size} bytes) but its record has ${rec.size} bytes`,
      );
    }
    const n = elementCount(t.shape);
    if (!Number.isSafeInteger(n)) throw inputError(`${where}: shape [${t.shape}] has too many elements`);
    if (t.stride.length !== t.shape.length || (n > 1 && !sameStride(t.shape, t.stride))) {
      throw inputError(`${where} is not contiguous (shape [${t.shape}], stride [${t.stride}]); save tensors with .contiguous()`);
    }
    if (t.offset + n > t.storage.numel) {
      throw inputError(`${where}: elements [${t.offset}, ${t.offset + n}) run past its storage of ${t.storage.numel}`);
    }
    entries.set(name, {
      name,
      dtype: t.storage.dtype,
      shape: [...t.shape],
      src,
      offset: rec.dataOffset + t.offset * size,
      byteLength: n * size,
      storage: t.storage.key,
    });
  }
  return entries;
}

/** Strides only matter along dimensions longer than 1. */
function sameStride(shape: number[], stride: number[]): boolean {
  const want = contiguousStride(shape);
  return shape.every((d, i) => d <= 1 || stride[i] === want[i]);
}

/** A tensor to save; tensors with the same `storage` share one record (a tied head). */
export interface TorchSaveTensor {
  name: string;
  dtype: string;
  shape: number[];
  storage: string;
  data: () => Uint8Array;
}

const STORAGE_CLASS: Record<string, string> = Object.fromEntries(Object.entries(STORAGE_DTYPES).map(([k, v]) => [v, k]));

/**
 * Stream a torch.save-compatible zip (`torch.load(path)` returns the state dict). Tensors sharing a
 * storage must have the same dtype and size; each storage's bytes are produced once.
 */
export function torchBinProducer(tensors: TorchSaveTensor[], opts: { archive?: string; zip64?: boolean } = {}): FileProducer {
  const archive = opts.archive ?? 'archive';
  const keys = new Map<string, { key: string; t: TorchSaveTensor }>();
  const pick: PickleTensor[] = [];
  for (const t of tensors) {
    const cls = STORAGE_CLASS[t.dtype];
    if (!cls) throw inputError(`cannot save tensor '${t.name}' of dtype ${t.dtype} in a PyTorch file`);
    let s = keys.get(t.storage);
    if (!s) {
      s = { key: String(keys.size), t };
      keys.set(t.storage, s);
    } else if (s.t.dtype !== t.dtype || elementCount(s.t.shape) !== elementCount(t.shape)) {
      throw new Error(`tensors '${s.t.name}' and '${t.name}' share storage but differ in dtype or size`);
    }
    const n = elementCount(t.shape);
    pick.push({ name: t.name, storageClass: cls, key: s.key, numel: n, offset: 0, shape: t.shape });
  }
  const entries: ZipWriteEntry[] = [
    { name: `${archive}/data.pkl`, data: () => writeStateDictPickle(pick) },
    { name: `${archive}/byteorder`, data: () => new TextEncoder().encode('little') },
    ...[...keys.values()].map(({ key, t }) => ({ name: `${archive}/data/${key}`, data: t.data })),
    { name: `${archive}/version`, data: () => new TextEncoder().encode('3\n') },
  ];
  return zipProducer(entries, { zip64: opts.zip64 });
}
