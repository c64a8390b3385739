import { describe, expect, it } from 'vitest';
import { MemorySource, FileSource } from '../../src/io/bytesource.js';
import { indexTorchBin, torchBinProducer } from '../../src/io/torchbin.js';
import { readStateDictPickle, writeStateDictPickle } from '../../src/io/pickle.js';
import { crc32, readZipDirectory, zipProducer } from '../../src/io/zip.js';
import type { ZipWriteEntry } from '../../src/io/zip.js';
import { readFloat32, readRaw } from '../../src/io/tensors.js';
import { collect, expectInputError } from './io-helpers.js';

const text = (s: string) => Array.from(new TextEncoder().encode(s));
/** A zip holding archive/data.pkl = `pkl` and one 8-byte F32 storage record. */
function archive(pkl: number[] | Uint8Array, extra: ZipWriteEntry[] = []): Uint8Array {
  return collect(
    zipProducer([
      { name: 'archive/data.pkl', data: () => Uint8Array.from(pkl) },
      { name: 'archive/data/0', data: () => new Uint8Array(new Float32Array([1, 2]).buffer) },
      ...extra,
    ]),
  );
}
const load = (bytes: Uint8Array) => indexTorchBin(new MemorySource(bytes, 'pytorch_model.bin'));

describe('PyTorch checkpoints written by torch.save', () => {
  it('indexes the tied fixture: every tensor, lm_head sharing the embedding storage', () => {
    const src = new FileSource('test/fixtures/interop/orig-bin-tied/pytorch_model.bin');
    try {
      const e = indexTorchBin(src);
      expect(e.size).toBe(2 + 2 * 10 + 1);
      const emb = e.get('backbone.embedding.weight')!,
        head = e.get('lm_head.weight')!;
      expect(emb.shape).toEqual([40, 16]);
      expect(emb.dtype).toBe('F32');
      expect(head.storage).toBe(emb.storage);
      expect(head.offset).toBe(emb.offset);
      expect(e.get('backbone.layers.1.mixer.conv1d.weight')!.shape).toEqual([32, 1, 4]);
      expect(Array.from(readFloat32(head))).toEqual(Array.from(readFloat32(emb)));
    } finally {
      src.close();
    }
  });

  it('indexes HalfStorage tensors', () => {
    const src = new FileSource('test/fixtures/interop/orig-bin-f16-untied/pytorch_model.bin');
    try {
      const e = indexTorchBin(src);
      expect(e.get('lm_head.weight')!.dtype).toBe('F16');
      expect(e.get('lm_head.weight')!.storage).not.toBe(e.get('backbone.embedding.weight')!.storage);
      expect(e.get('backbone.layers.0.mixer.in_proj.bias')!.shape).toEqual([48]);
    } finally {
      src.close();
    }
  });

  it('round-trips through its own writer, with and without ZIP64 records', () => {
    const a = new Float32Array([1, -2, 3.5, 4, 5, 6]),
      h = new Uint16Array([0x3c00, 0xc000, 0x7bff]);
    const tensors = [
      { name: 'w', dtype: 'F32', shape: [2, 3], storage: 's0', data: () => new Uint8Array(a.buffer) },
      { name: 'tied', dtype: 'F32', shape: [2, 3], storage: 's0', data: () => new Uint8Array(a.buffer) },
      { name: 'half', dtype: 'F16', shape: [3], storage: 's1', data: () => new Uint8Array(h.buffer) },
      { name: 'scalar', dtype: 'F32', shape: [], storage: 's2', data: () => new Uint8Array(new Float32Array([7]).buffer) },
    ];
    for (const zip64 of [false, true]) {
      const bytes = collect(torchBinProducer(tensors, { zip64 }));
      const e = load(bytes);
      expect([...e.keys()]).toEqual(['w', 'tied', 'half', 'scalar']);
      expect(Array.from(readFloat32(e.get('w')!))).toEqual(Array.from(a));
      expect(e.get('tied')!.offset).toBe(e.get('w')!.offset);
      expect(Array.from(new Uint16Array(readRaw(e.get('half')!).buffer))).toEqual(Array.from(h));
      expect(Array.from(readFloat32(e.get('scalar')!))).toEqual([7]);
      // tensor data is aligned to 64 bytes, as PyTorch aligns it (mmap-able)
      for (const t of e.values()) expect(t.offset % 64).toBe(0);
    }
  });

  it('writes the pickle torch.save writes and reads it back', () => {
    const p = writeStateDictPickle([{ name: 'x', storageClass: 'FloatStorage', key: '0', numel: 70000, offset: 0, shape: [7, 10000] }]);
    const t = readStateDictPickle(p, 'p').get('x')!;
    expect(t.shape).toEqual([7, 10000]);
    expect(t.stride).toEqual([10000, 1]);
    expect(t.storage).toEqual({ kind: 'storage', dtype: 'F32', key: '0', location: 'cpu', numel: 70000 });
  });
});

describe('refusing everything outside a state dict of tensors', () => {
  const good = Array.from(writeStateDictPickle([{ name: 'w', storageClass: 'FloatStorage', key: '0', numel: 2, offset: 0, shape: [2] }]));
  it('accepts the reference archive', () => expect(load(archive(good)).get('w')!.shape).toEqual([2]));

  const cases: [string, number[], RegExp][] = [
    [
      'os.system via GLOBAL',
      [0x80, 2, 0x63, ...text('os\nsystem\n'), 0x8c, 2, ...text('ls'), 0x85, 0x52, 0x2e],
      /global 'os\.system' is not allowed/,
    ],
    [
      'builtins.eval via STACK_GLOBAL',
      [0x80, 4, 0x8c, 8, ...text('builtins'), 0x8c, 4, ...text('eval'), 0x93, 0x2e],
      /global 'builtins\.eval' is not allowed/,
    ],
    ['INST', [0x80, 2, 0x28, 0x69, ...text('os\nsystem\n'), 0x2e], /opcode 0x69 \(INST\)/],
    ['OBJ', [0x80, 2, 0x28, 0x6f, 0x2e], /opcode 0x6f \(OBJ\)/],
    ['NEWOBJ', [0x80, 2, 0x81, 0x2e], /opcode 0x81 \(NEWOBJ\)/],
    ['EXT1', [0x80, 2, 0x82, 1, 0x2e], /opcode 0x82 \(EXT1\)/],
    ['text PERSID', [0x80, 2, 0x50, ...text('x\n'), 0x2e], /opcode 0x50 \(PERSID\)/],
    [
      'REDUCE of a storage class',
      [0x80, 2, 0x63, ...text('torch\nFloatStorage\n'), 0x29, 0x52, 0x2e],
      /calling 'torch\.FloatStorage' is not allowed/,
    ],
    [
      'OrderedDict with arguments',
      [0x80, 2, 0x63, ...text('collections\nOrderedDict\n'), 0x4b, 1, 0x85, 0x52, 0x2e],
      /OrderedDict called with arguments/,
    ],
    ['a persistent id that is not a storage', [0x80, 2, 0x8c, 1, ...text('x'), 0x51, 0x2e], /persistent id that is not a torch storage/],
    ['a list at top level', [0x80, 2, 0x5d, 0x2e], /does not hold a dict/],
    ['a non-tensor value', [0x80, 2, 0x7d, 0x8c, 1, ...text('a'), 0x4b, 1, 0x73, 0x2e], /entry 'a' is not a tensor/],
    ['truncated', [0x80, 2, 0x4a, 1], /ends inside an opcode/],
    ['no STOP', [0x80, 2, 0x7d], /ends inside an opcode/],
    ['empty stack', [0x80, 2, 0x2e], /pops from an empty stack/],
    ['memo miss', [0x80, 2, 0x68, 9, 0x2e], /memo entry 9 was never stored/],
    ['huge LONG1', [0x80, 2, 0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x2e], /integer of 9 bytes/],
    ['BUILD on a non-dict', [0x80, 2, 0x5d, 0x7d, 0x62, 0x2e], /BUILD on something other than a state dict/],
  ];
  for (const [label, pkl, pattern] of cases) {
    it(`refuses ${label}, naming the file and byte`, () => {
      expectInputError(() => load(archive(pkl)), pattern);
      expectInputError(() => load(archive(pkl)), /^pytorch_model\.bin \(archive\/data\.pkl\): byte \d+/);
    });
  }

  it('refuses the legacy format, compressed or corrupt archives and missing storages', () => {
    expectInputError(() => load(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, ...new Array(30).fill(0)])), /legacy \(pre-1\.6\)/);
    expectInputError(() => load(new Uint8Array(100)), /no end-of-central-directory/);
    const ok = archive(good);
    const deflated = ok.slice();
    new DataView(deflated.buffer).setUint16(ok.length - 22 - 2 * 46 - 'archive/data.pkl'.length - 'archive/data/0'.length + 10, 8, true);
    expectInputError(() => load(deflated), /compressed \(method 8\)/);
    const flipped = ok.slice();
    const pklAt = readZipDirectory(new MemorySource(ok, 'x')).get('archive/data.pkl')!.dataOffset;
    flipped[pklAt + 5] ^= 0xff;
    expectInputError(() => load(flipped), /fails its CRC check/);
    const other = Array.from(
      writeStateDictPickle([{ name: 'w', storageClass: 'FloatStorage', key: '7', numel: 2, offset: 0, shape: [2] }]),
    );
    expectInputError(() => load(archive(other)), /tensor 'w' refers to storage '7', which the archive does not contain/);
    const big = Array.from(writeStateDictPickle([{ name: 'w', storageClass: 'FloatStorage', key: '0', numel: 3, offset: 0, shape: [3] }]));
    expectInputError(() => load(archive(big)), /should hold 3 F32 elements \(12 bytes\) but its record has 8 bytes/);
    const past = Array.from(writeStateDictPickle([{ name: 'w', storageClass: 'FloatStorage', key: '0', numel: 2, offset: 1, shape: [2] }]));
    expectInputError(() => load(archive(past)), /elements \[1, 3\) run past its storage of 2/);
  });

  it('computes the zip CRC-32 of the standard check string', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});
