/**
 * The weight files of a checkpoint directory, in the layouts Hugging Face and PyTorch publish:
 *   model.safetensors                                   one file
 *   model.safetensors.index.json + model-0000k-of-0000n.safetensors   shards
 *   pytorch_model.bin                                   torch.save zip (the original state-spaces releases)
 *   pytorch_model.bin.index.json + pytorch_model-0000k-of-0000n.bin   shards
 * Opening indexes every tensor (name, dtype, shape, byte range) without reading any values.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inputError } from './errors.js';
import { FileSource, MemorySource } from './bytesource.js';
import type { ByteSource } from './bytesource.js';
import { indexSafetensors } from './safetensors.js';
import { indexTorchBin } from './torchbin.js';
import type { TensorEntry } from './tensors.js';

export const WEIGHT_FILE_NAMES = [
  'model.safetensors.index.json',
  'model.safetensors',
  'pytorch_model.bin.index.json',
  'pytorch_model.bin',
] as const;

export interface WeightSet {
  /** Tensor name (as stored) -> where it lives. */
  entries: Map<string, TensorEntry>;
  /** The file that describes the set (the index, or the single weights file), for messages. */
  file: string;
  format: 'safetensors' | 'pytorch';
  close(): void;
}

const MAX_INDEX_BYTES = 64 << 20;

/** Index one weights file by its format. */
export function indexWeightFile(src: ByteSource): Map<string, TensorEntry> {
  return src.file.endsWith('.bin') ? indexTorchBin(src) : indexSafetensors(src).entries;
}

/** Find and index the weights of checkpoint directory `dir` (sources stay open until close()). */
export function openWeights(dir: string): WeightSet {
  const found = WEIGHT_FILE_NAMES.find((n) => existsSync(join(dir, n)));
  if (!found) {
    throw inputError(
      `${dir} has no weights: expected one of ${WEIGHT_FILE_NAMES.join(', ')} ` +
        '(a Hugging Face or state-spaces Mamba checkpoint directory)',
    );
  }
  const file = join(dir, found);
  const format = found.startsWith('model') ? 'safetensors' : 'pytorch';
  const sources: ByteSource[] = [];
  const close = () => {
    for (const s of sources) s.close();
  };
  try {
    if (!found.endsWith('.index.json')) {
      const src = new FileSource(file);
      sources.push(src);
      return { entries: indexWeightFile(src), file, format, close };
    }
    const entries = indexShards(readIndex(file), file, (shard) => {
      const src = new FileSource(join(dir, shard));
      sources.push(src);
      return src;
    });
    return { entries, file, format, close };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * The safetensors weights of a checkpoint held in memory by file name (a browser's picked or
 * fetched files): `model.safetensors`, or `model.safetensors.index.json` and its shards, checked
 * as {@link openWeights} checks them on disk. `where` names the folder in messages.
 */
export function memoryWeights(files: Readonly<Record<string, Uint8Array>>, where: string): WeightSet {
  const close = () => {};
  const index = files['model.safetensors.index.json'];
  if (index !== undefined) {
    const file = `${where}/model.safetensors.index.json`;
    const entries = indexShards(parseWeightIndex(new TextDecoder().decode(index), file), file, (shard) => {
      const bytes = files[shard];
      if (bytes === undefined) throw inputError(`${file} lists the shard ${shard}, which is missing: give every shard the index names`);
      return new MemorySource(bytes, `${where}/${shard}`);
    });
    return { entries, file, format: 'safetensors', close };
  }
  const bytes = files['model.safetensors'];
  if (bytes === undefined)
    throw inputError(
      `${where} has no model.safetensors: a model needs config.json and model.safetensors (or model.safetensors.index.json and its shards)`,
    );
  const file = `${where}/model.safetensors`;
  return { entries: indexWeightFile(new MemorySource(bytes, file)), file, format: 'safetensors', close };
}

/**
 * Index every shard a weight index lists (opened by `open`), checking that each tensor is where the
 * index says and that no listed tensor is missing.
 */
export function indexShards(map: ReadonlyMap<string, string>, file: string, open: (shard: string) => ByteSource): Map<string, TensorEntry> {
  const entries = new Map<string, TensorEntry>();
  for (const shard of new Set(map.values())) {
    const src = open(shard);
    for (const [name, e] of indexWeightFile(src)) {
      const want = map.get(name);
      if (want === undefined)
        throw inputError(`${src.file}: tensor '${name}' is not listed in ${file} (extra tensor, or a shard from another checkpoint)`);
      if (want !== shard) throw inputError(`${src.file}: tensor '${name}' is here but ${file} says it is in ${want}`);
      entries.set(name, e);
    }
  }
  for (const [name, shard] of map) {
    if (!entries.has(name)) throw inputError(`${file} lists tensor '${name}' in ${shard}, but that shard does not contain it`);
  }
  return entries;
}

/** Read `weight_map` (tensor -> shard file) from a sharded checkpoint's index. */
function readIndex(file: string): Map<string, string> {
  if (statSync(file).size > MAX_INDEX_BYTES) throw inputError(`${file} is over ${MAX_INDEX_BYTES} bytes; it is not a weight index`);
  return parseWeightIndex(readFileSync(file, 'utf8'), file);
}

/** `weight_map` of a weight index's text (`file` names it in messages). */
export function parseWeightIndex(text: string, file: string): Map<string, string> {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw inputError(`${file} is not valid JSON (${(e as Error).message})`);
  }
  const wm = typeof j === 'object' && j !== null ? (j as Record<string, unknown>).weight_map : undefined;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm))
    throw inputError(`${file} has no "weight_map" object (tensor name -> shard file)`);
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    // a plain name (no node:path: a browser reads indexes too)
    if (typeof shard !== 'string' || shard === '' || shard.includes('/') || shard === '.' || shard === '..') {
      throw inputError(`${file}: tensor '${name}' maps to ${JSON.stringify(shard)}, which is not a file name in this directory`);
    }
    map.set(name, shard);
  }
  if (map.size === 0) throw inputError(`${file}: "weight_map" is empty`);
  return map;
}

/** Shard file names the way transformers writes them: model-00001-of-00003.safetensors. */
export function shardName(stem: string, ext: string, k: number, n: number): string {
  const p = (x: number) => String(x).padStart(5, '0');
  return `${stem}-${p(k)}-of-${p(n)}.${ext}`;
}
