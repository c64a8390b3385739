import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToNumber,
  decodeSafetensors,
  encodeSafetensors,
  f16BitsToNumber,
  readSafetensors,
  readTensorF32,
  readTensorF64,
  readTensorI32,
  tensorBytes,
  type SafeTensorIn,
} from '../../src/io/safetensors.js';
import { FrugalError } from '../../src/io/errors.js';

const FILE = 'bad.safetensors';

/** Build a file by hand from a header object (or raw header text) and data bytes. */
function rawFile(header: unknown, data: number[] | Uint8Array = [], headerLenOverride?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function expectInputError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FrugalError);
  expect((err as FrugalError).exitCode).toBe(2);
  expect((err as FrugalError).message).toMatch(pattern);
}

describe('encode/decode round trip', () => {
  const tensors: SafeTensorIn[] = [
    { name: 'u8', dtype: 'U8', shape: [3], data: new Uint8Array([0, 7, 255]) },
    { name: 'f32', dtype: 'F32', shape: [2, 2], data: new Float32Array([1.5, -2.25, 3e-30, Infinity]) },
    { name: 'f64', dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -1e300, 0.1]) },
    { name: 'f16', dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
    { name: 'bf16', dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4049]) },
    { name: 'i32', dtype: 'I32', shape: [2], data: new Int32Array([-2147483648, 2147483647]) },
    { name: 'i64', dtype: 'I64', shape: [1, 2], data: new BigInt64Array([-5n, 1n << 40n]) },
    { name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([42]) },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  ];
  const bytes = encodeSafetensors(tensors, { format: 'pt', model: 'mamba' });
  const f = decodeSafetensors(bytes, 'rt.safetensors');

  it('lays out the header as the format requires', () => {
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    expect(f.dataStart).toBe(8 + n);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header.trimEnd()).toBe(header.trimEnd().trim());
    expect(/^\{.*\} *$/.test(header)).toBe(true);
    // Tensors are contiguous in the given order.
    let expected = 0;
    for (const t of tensors) {
      const info = f.tensors.get(t.name)!;
      expect(info.begin).toBe(expected);
      expected = info.end;
    }
    expect(bytes.length).toBe(f.dataStart + expected);
    expect(f.metadata).toEqual({ format: 'pt', model: 'mamba' });
  });

  it('gives back every dtype exactly', () => {
    expect(Array.from(tensorBytes(f, 'u8'))).toEqual([0, 7, 255]);
    expect(Array.from(readTensorF32(f, 'f32'))).toEqual(Array.from(tensors[1]!.data as Float32Array));
    expect(Array.from(readTensorF64(f, 'f64'))).toEqual([Math.PI, -1e300, 0.1]);
    expect(Array.from(readTensorF32(f, 'f16'))).toEqual([1, -2]);
    expect(Array.from(readTensorF32(f, 'bf16'))).toEqual([1, 3.140625]);
    expect(Array.from(readTensorI32(f, 'i32'))).toEqual([-2147483648, 2147483647]);
    const i64 = tensorBytes(f, 'i64');
    const v = new DataView(i64.buffer, i64.byteOffset, i64.byteLength);
    expect([v.getBigInt64(0, true), v.getBigInt64(8, true)]).toEqual([-5n, 1n << 40n]);
    expect(f.tensors.get('i64')!.shape).toEqual([1, 2]);
    expect(Array.from(readTensorF32(f, 'scalar'))).toEqual([42]);
    expect(readTensorF32(f, 'empty')).toHaveLength(0);
    expect(f.tensors.get('empty')!.shape).toEqual([0, 4]);
  });

  it('converts F64 to F32 by rounding and F32 to F64 exactly', () => {
    expect(readTensorF32(f, 'f64')[2]).toBe(Math.fround(0.1));
    expect(readTensorF64(f, 'f32')[0]).toBe(1.5);
  });

  it('reads tensors at unaligned positions and inside a larger buffer', () => {
    // 'u8' is 3 bytes, so 'f32' starts at an odd data offset; shift the whole file by 1 too.
    const host = new Uint8Array(bytes.length + 1);
    host.set(bytes, 1);
    const g = decodeSafetensors(host.subarray(1), 'shifted.safetensors');
    expect(Array.from(readTensorF32(g, 'f32'))).toEqual(Array.from(readTensorF32(f, 'f32')));
    expect(Array.from(readTensorF64(g, 'f64'))).toEqual([Math.PI, -1e300, 0.1]);
    expect(Array.from(readTensorI32(g, 'i32'))).toEqual([-2147483648, 2147483647]);
  });

  it('reads a file from disk and names it in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-st-'));
    try {
      const p = join(dir, 'model.safetensors');
      writeFileSync(p, bytes);
      const g = readSafetensors(p);
      expect(Array.from(readTensorF32(g, 'f16'))).toEqual([1, -2]);
      expectInputError(() => readSafetensors(join(dir, 'nope.safetensors')), /nope\.safetensors.*does not exist/);
      expectInputError(() => readSafetensors(dir), /is a directory/);
      writeFileSync(p, new Uint8Array(3));
      expectInputError(() => readSafetensors(p), /model\.safetensors.*fewer than the 8-byte/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('half-precision conversion', () => {
  it('decodes F16 bit patterns', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3800, 0.5],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x8001, -(2 ** -24)],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x0000, 0],
    ];
    for (const [bits, value] of cases) expect(f16BitsToNumber(bits)).toBe(value);
    expect(Object.is(f16BitsToNumber(0x8000), -0)).toBe(true);
    expect(f16BitsToNumber(0x7e00)).toBeNaN();
    expect(f16BitsToNumber(0xfc01)).toBeNaN();
  });

  it('decodes BF16 bit patterns', () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x4049, 3.140625],
      [0x7f7f, 3.3895313892515355e38],
      [0x0001, 2 ** -133],
      [0x0080, 2 ** -126],
      [0x7f80, Infinity],
      [0xff80, -Infinity],
    ];
    for (const [bits, value] of cases) expect(bf16BitsToNumber(bits)).toBe(value);
    expect(Object.is(bf16BitsToNumber(0x8000), -0)).toBe(true);
    expect(bf16BitsToNumber(0x7fc0)).toBeNaN();
  });

  it('converts whole F16 and BF16 tensors including specials', () => {
    const h = new Uint16Array([0x0001, 0x7c00, 0x7e00, 0xbc00]);
    const b = new Uint16Array([0x0001, 0xff80, 0x7fc0, 0xbf80]);
    const f = decodeSafetensors(
      encodeSafetensors([
        { name: 'h', dtype: 'F16', shape: [4], data: h },
        { name: 'b', dtype: 'BF16', shape: [4], data: b },
      ]),
      'half.safetensors',
    );
    const h32 = readTensorF32(f, 'h');
    expect([h32[0], h32[1], h32[3]]).toEqual([Math.fround(2 ** -24), Infinity, -1]);
    expect(h32[2]).toBeNaN();
    const b64 = readTensorF64(f, 'b');
    expect([b64[0], b64[1], b64[3]]).toEqual([2 ** -133, -Infinity, -1]);
    expect(b64[2]).toBeNaN();
  });
});

describe('malformed files', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data8 = new Uint8Array(8);
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /5 bytes, fewer than the 8-byte/],
    ['header past the end', rawFile(ok, data8, 1000n), /header length 1000 runs past the end/],
    ['header over 100 MB', rawFile(ok, data8, 1n << 40n), /over the 100000000-byte limit/],
    ['header length u64 max', rawFile(ok, data8, (1n << 64n) - 1n), /over the 100000000-byte limit/],
    ['not JSON', rawFile('{"a": ', data8), /not JSON/],
    ['empty header', rawFile('', data8), /not JSON/],
    ['JSON array', rawFile([1, 2], data8), /not a JSON object/],
    ['JSON null', rawFile('null', data8), /not a JSON object/],
    ['not UTF-8', rawFile('{"\u00ff"}', data8).fill(0xff, 9, 10), /not valid UTF-8/],
    ['entry not object', rawFile({ a: 3 }, data8), /tensor "a" is not an object/],
    ['unknown dtype', rawFile({ a: { dtype: 'F128', shape: [2], data_offsets: [0, 8] } }, data8), /tensor "a" has unknown dtype "F128"/],
    ['missing dtype', rawFile({ a: { shape: [2], data_offsets: [0, 8] } }, data8), /unknown dtype undefined/],
    [
      'negative dim',
      rawFile({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data8),
      /tensor "a": shape \[-2\] must be a list of non-negative integers/,
    ],
    ['fractional dim', rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, data8), /shape \[1.5\]/],
    ['shape not list', rawFile({ a: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }, data8), /shape "2"/],
    [
      'huge shape',
      rawFile({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, data8),
      /tensor "a": shape \[1073741824,1073741824\] has too many elements/,
    ],
    ['offsets past data', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data8), /\[4, 12\] outside the 8-byte data/],
    ['offsets reversed', rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, data8), /outside the 8-byte data/],
    ['offsets malformed', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, data8), /data_offsets \[0\]/],
    ['negative offset', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, data8), /data_offsets \[-8,0\]/],
    [
      'size mismatch',
      rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(12)),
      /spans 8 bytes but shape \[3\] of F32 needs 12/,
    ],
    [
      'overlap',
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'I32', shape: [2], data_offsets: [4, 12] },
        },
        new Uint8Array(12),
      ),
      /tensors "a" and "b" overlap/,
    ],
    ['metadata not strings', rawFile({ __metadata__: { n: 3 }, ...ok }, data8), /"__metadata__" must be an object of string values/],
  ];
  for (const [label, bytes, pattern] of cases) {
    it(`rejects ${label} with an input error naming the file`, () => {
      expectInputError(() => decodeSafetensors(bytes, FILE), pattern);
      expectInputError(() => decodeSafetensors(bytes, FILE), /^bad\.safetensors is not a valid safetensors file/);
    });
  }

  it('allows gaps between tensors and an empty tensor anywhere', () => {
    const f = decodeSafetensors(
      rawFile(
        {
          a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
          z: { dtype: 'F32', shape: [0], data_offsets: [1, 1] },
          b: { dtype: 'U8', shape: [2], data_offsets: [6, 8] },
        },
        [1, 2, 0, 0, 0, 0, 3, 4],
      ),
      FILE,
    );
    expect(Array.from(tensorBytes(f, 'b'))).toEqual([3, 4]);
    expect(readTensorF32(f, 'z')).toHaveLength(0);
  });

  it('decodes a hand-written file with metadata and header padding', () => {
    const f = decodeSafetensors(
      rawFile('{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    ', [0, 0, 0x80, 0x3f]),
      FILE,
    );
    expect(f.metadata).toEqual({ k: 'v' });
    expect(Array.from(readTensorF32(f, 'w'))).toEqual([1]);
  });
});

describe('reader and encoder errors', () => {
  const f = decodeSafetensors(
    encodeSafetensors([
      { name: 'ids', dtype: 'I32', shape: [1], data: new Int32Array([3]) },
      { name: 'big', dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 1n << 31n]) },
      { name: 'neg', dtype: 'I64', shape: [1], data: new BigInt64Array([-(1n << 31n)]) },
    ]),
    'ids.safetensors',
  );

  it('names the file and tensor on a missing tensor or wrong dtype', () => {
    expectInputError(() => readTensorF32(f, 'nope'), /ids\.safetensors has no tensor "nope" \(it has: ids, big, neg\)/);
    expectInputError(() => readTensorF32(f, 'ids'), /ids\.safetensors: tensor "ids" has dtype I32, but readTensorF32/);
    expectInputError(() => readTensorI32(f, 'big'), /tensor "big" element 1 is 2147483648/);
    expect(Array.from(readTensorI32(f, 'neg'))).toEqual([-2147483648]);
  });

  it('rejects inconsistent tensors when encoding', () => {
    expectInputError(
      () => encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Float64Array(2) }]),
      /needs a Float32Array, got a Float64Array/,
    );
    expectInputError(
      () => encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
      /holds 3 elements but the data has 2/,
    );
    expectInputError(
      () => encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [-1], data: new Float32Array(0) }]),
      /non-negative integers/,
    );
    const t = { name: 'a', dtype: 'U8' as const, shape: [1], data: new Uint8Array(1) };
    expectInputError(() => encodeSafetensors([t, t]), /unique/);
    expectInputError(() => encodeSafetensors([{ ...t, name: '__metadata__' }]), /unique and not "__metadata__"/);
    expectInputError(() => encodeSafetensors([], { n: 3 as unknown as string }), /metadata value for "n" must be a string/);
    // A Node Buffer is a Uint8Array and is accepted for U8.
    const g = decodeSafetensors(encodeSafetensors([{ ...t, data: Buffer.from([9]) }]), 'buf');
    expect(Array.from(tensorBytes(g, 'a'))).toEqual([9]);
  });
});
