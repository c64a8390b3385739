import { describe, expect, it } from 'vitest';
import { MemorySource } from '../../src/io/bytesource.js';
import { convertRaw, f32BitsToF16Bits, readFloatsInto, toF16Bits } from '../../src/io/tensors.js';
import type { TensorEntry } from '../../src/io/tensors.js';
import { f16BitsToNumber } from '../../src/io/safetensors.js';
import { FrugalError } from '../../src/io/errors.js';

const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];

function entry(bytes: Uint8Array, dtype: string, n: number, offset = 0): TensorEntry {
  return { name: 't', dtype, shape: [n], src: new MemorySource(bytes, 'mem'), offset, byteLength: bytes.length - offset };
}

describe('f32 -> f16 rounding', () => {
  it('gives back every finite f16 value exactly (f16 -> f32 -> f16 is the identity)', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaNs: payload not preserved
      expect(f32BitsToF16Bits(bitsOf(f16BitsToNumber(h)))).toBe(h);
    }
  });

  it('rounds halfway cases to even and overflows to infinity', () => {
    // 1 + 2^-11 is halfway between 1 and the next f16 (1 + 2^-10): ties go to the even mantissa (1)
    expect(f32BitsToF16Bits(bitsOf(1 + 2 ** -11))).toBe(0x3c00);
    expect(f32BitsToF16Bits(bitsOf(1 + 3 * 2 ** -11))).toBe(0x3c02);
    expect(f32BitsToF16Bits(bitsOf(1 + 2 ** -11 + 2 ** -20))).toBe(0x3c01);
    expect(f32BitsToF16Bits(bitsOf(65504))).toBe(0x7bff);
    expect(f32BitsToF16Bits(bitsOf(65520))).toBe(0x7c00); // halfway to 2^16 rounds up: infinity
    expect(f32BitsToF16Bits(bitsOf(-1e9))).toBe(0xfc00);
    expect(f32BitsToF16Bits(bitsOf(2 ** -25))).toBe(0x0000); // half the smallest subnormal: ties to even (0)
    expect(f32BitsToF16Bits(bitsOf(3 * 2 ** -26))).toBe(0x0001);
    expect(f32BitsToF16Bits(bitsOf(-0))).toBe(0x8000);
    expect(f32BitsToF16Bits(bitsOf(NaN)) & 0x7e00).toBe(0x7e00);
  });

  it('matches the nearest f16 for random values', () => {
    let s = 12345;
    for (let i = 0; i < 20000; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const x = Math.fround((s / 2 ** 32 - 0.5) * 2 ** ((s % 40) - 20));
      const h = f32BitsToF16Bits(bitsOf(x));
      const y = f16BitsToNumber(h);
      // no other f16 is closer: the neighbours are at least as far
      const up = f16BitsToNumber(h + 1),
        down = f16BitsToNumber(h === 0 ? 0 : h - 1);
      if ((h & 0x7fff) < 0x7bff && (h & 0x7fff) > 0) {
        expect(Math.abs(x - y)).toBeLessThanOrEqual(Math.abs(x - up));
        expect(Math.abs(x - y)).toBeLessThanOrEqual(Math.abs(x - down));
      }
    }
  });

  it('refuses to turn a finite weight into infinity', () => {
    expect(() => toF16Bits(new Float32Array([1, 70000]), 'w')).toThrow(FrugalError);
    expect(() => toF16Bits(new Float32Array([1, 70000]), 'w')).toThrow(/70000 at index 1 is beyond the float16 range/);
    expect(Array.from(toF16Bits(new Float32Array([1, -2]), 'w'))).toEqual([0x3c00, 0xc000]);
  });
});

describe('readFloatsInto', () => {
  it('reads F32 into place, and F16 / BF16 / F64 through chunks, at any byte offset', () => {
    const values = [1, -2.5, 0.333251953125, 65504, -0];
    const f16 = new Uint8Array(1 + 10);
    new DataView(f16.buffer).setUint16(1, 0x3c00, true);
    const h = [0x3c00, 0xc100, 0x3555, 0x7bff, 0x8000];
    h.forEach((v, i) => new DataView(f16.buffer).setUint16(1 + 2 * i, v, true));
    const out = new Float32Array(5);
    readFloatsInto(entry(f16, 'F16', 5, 1), out);
    expect(Array.from(out)).toEqual(values);
    const bf = new Uint8Array(10);
    [0x3f80, 0xc020, 0x3eaa, 0x477f, 0x8000].forEach((v, i) => new DataView(bf.buffer).setUint16(2 * i, v, true));
    readFloatsInto(entry(bf, 'BF16', 5), out);
    expect(Array.from(out)).toEqual([1, -2.5, 0.33203125, 65280, -0]);
    const f64 = new Float64Array([0.1, 2, 3, 4, 5]);
    readFloatsInto(entry(new Uint8Array(f64.buffer), 'F64', 5), out);
    expect(out[0]).toBe(Math.fround(0.1));
    const d = new Float64Array(5);
    readFloatsInto(entry(new Uint8Array(new Float32Array(values).buffer), 'F32', 5), d);
    expect(Array.from(d)).toEqual(values);
  });

  it('converts across chunk boundaries (more than 1 MiB of F16)', () => {
    const n = (1 << 20) + 3;
    const h = new Uint16Array(n);
    for (let i = 0; i < n; i++) h[i] = 0x3c00 + (i % 1000);
    const out = new Float32Array(n);
    readFloatsInto(entry(new Uint8Array(h.buffer), 'F16', n), out);
    for (const i of [0, 524287, 524288, n - 1]) expect(out[i]).toBe(f16BitsToNumber(0x3c00 + (i % 1000)));
  });

  it('converts raw bytes between F32 and F16', () => {
    const f = new Float32Array([1, 0.5, -3]);
    const h = convertRaw(new Uint8Array(f.buffer), 'F32', 'F16', 'w');
    expect(Array.from(new Uint16Array(h.buffer))).toEqual([0x3c00, 0x3800, 0xc200]);
    expect(Array.from(new Float32Array(convertRaw(h, 'F16', 'F32', 'w').buffer))).toEqual([1, 0.5, -3]);
  });
});
