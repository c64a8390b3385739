import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openWeights, shardName } from '../../src/io/weights.js';
import { FileSource } from '../../src/io/bytesource.js';
import { indexSafetensors, safetensorsProducer } from '../../src/io/safetensors.js';
import { readFloat32 } from '../../src/io/tensors.js';
import { writeFileAtomic } from '../../src/io/atomic.js';
import { expectInputError } from './io-helpers.js';

const SHARDED = 'test/fixtures/interop/hf-f16-sharded';
const tmp = mkdtempSync(join(tmpdir(), 'frugal-weights-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function copy(src: string): string {
  const d = join(tmp, `c${n++}`);
  cpSync(src, d, { recursive: true });
  return d;
}

describe('checkpoint weight files', () => {
  it('indexes a sharded checkpoint through its index, without reading tensor data', () => {
    const w = openWeights(SHARDED);
    try {
      expect(w.format).toBe('safetensors');
      expect(w.file).toMatch(/model\.safetensors\.index\.json$/);
      expect(w.entries.size).toBe(2 + 3 * 10);
      const files = new Set([...w.entries.values()].map((e) => e.src.file));
      expect(files.size).toBe(3);
      expect(w.entries.get('backbone.layers.2.mixer.A_log')!.dtype).toBe('F16');
    } finally {
      w.close();
    }
  });

  it('finds model.safetensors and pytorch_model.bin, and names the expected files when none is there', () => {
    const a = openWeights('test/fixtures/interop/hf-bf16-untied');
    expect(a.format).toBe('safetensors');
    a.close();
    const b = openWeights('test/fixtures/interop/orig-bin-tied');
    expect(b.format).toBe('pytorch');
    b.close();
    const empty = join(tmp, 'empty');
    cpSync('test/fixtures/interop/orig-bin-tied/config.json', join(empty, 'config.json'));
    expectInputError(
      () => openWeights(empty),
      /has no weights: expected one of model\.safetensors\.index\.json, model\.safetensors, pytorch_model\.bin\.index\.json, pytorch_model\.bin/,
    );
  });

  const index = (d: string) =>
    JSON.parse(readFileSync(join(d, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const writeIndex = (d: string, j: unknown) =>
    writeFileSync(join(d, 'model.safetensors.index.json'), typeof j === 'string' ? j : JSON.stringify(j));

  it('refuses an index that disagrees with its shards, naming the tensor and files', () => {
    let d = copy(SHARDED);
    rmSync(join(d, shardName('model', 'safetensors', 2, 3)));
    expectInputError(() => openWeights(d), /model-00002-of-00003\.safetensors: it does not exist/);
    d = copy(SHARDED);
    let j = index(d);
    delete j.weight_map['backbone.norm_f.weight'];
    writeIndex(d, j);
    expectInputError(() => openWeights(d), /tensor 'backbone\.norm_f\.weight' is not listed in .*index\.json/);
    d = copy(SHARDED);
    j = index(d);
    j.weight_map['backbone.layers.9.mixer.D'] = shardName('model', 'safetensors', 1, 3);
    writeIndex(d, j);
    expectInputError(
      () => openWeights(d),
      /lists tensor 'backbone\.layers\.9\.mixer\.D' in model-00001-of-00003\.safetensors, but that shard does not contain it/,
    );
    d = copy(SHARDED);
    j = index(d);
    j.weight_map['backbone.norm_f.weight'] = shardName('model', 'safetensors', 1, 3);
    writeIndex(d, j);
    expectInputError(() => openWeights(d), /tensor 'backbone\.norm_f\.weight' is here but .* says it is in model-00001/);
    d = copy(SHARDED);
    j = index(d);
    j.weight_map['backbone.norm_f.weight'] = '../../etc/passwd';
    writeIndex(d, j);
    expectInputError(() => openWeights(d), /maps to "\.\.\/\.\.\/etc\/passwd", which is not a file name in this directory/);
    writeIndex(d, '{"weight_map": [1]}');
    expectInputError(() => openWeights(d), /has no "weight_map" object/);
    writeIndex(d, 'not json');
    expectInputError(() => openWeights(d), /index\.json is not valid JSON/);
  });

  it('streams a safetensors file to disk and indexes it back from the file', () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const { producer, byteLength } = safetensorsProducer(
      [
        {
          name: 'a',
          dtype: 'F32',
          shape: [2, 3],
          write: (emit) => {
            emit(new Uint8Array(a.buffer, 0, 8));
            emit(new Uint8Array(a.buffer, 8));
          },
        },
        { name: 'b', dtype: 'F16', shape: [1], write: (emit) => emit(new Uint8Array(new Uint16Array([0x3c00]).buffer)) },
      ],
      { format: 'pt' },
    );
    const p = join(tmp, 'stream.safetensors');
    writeFileAtomic(p, producer);
    const src = new FileSource(p);
    try {
      expect(src.size).toBe(byteLength);
      const idx = indexSafetensors(src);
      expect(idx.metadata).toEqual({ format: 'pt' });
      expect(Array.from(readFloat32(idx.entries.get('a')!))).toEqual([1, 2, 3, 4, 5, 6]);
      expect(Array.from(readFloat32(idx.entries.get('b')!))).toEqual([1]);
    } finally {
      src.close();
    }
    const bad = safetensorsProducer([{ name: 'a', dtype: 'F32', shape: [2], write: (emit) => emit(new Uint8Array(4)) }]);
    expect(() => writeFileAtomic(join(tmp, 'short.safetensors'), bad.producer)).toThrow(/emitted 4 bytes, expected 8/);
  });

  it('refuses a header length beyond the file before reading it', () => {
    const p = join(tmp, 'lying.safetensors');
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, 1000n, true);
    writeFileSync(p, b);
    const src = new FileSource(p);
    try {
      expectInputError(
        () => indexSafetensors(src),
        /lying\.safetensors is not a valid safetensors file: the header length 1000 runs past the end of the 16-byte file/,
      );
    } finally {
      src.close();
    }
  });
});
