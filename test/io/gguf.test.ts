import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { dequantizeQ8_0, ggmlBytes, ggufProducer, quantizeQ8_0 } from '../../src/io/gguf.js';
import { byteToUnicode } from '../../src/io/ggufvocab.js';
import { f16BitsToNumber } from '../../src/io/safetensors.js';
import { writeFileAtomic } from '../../src/io/atomic.js';

const tmp = mkdtempSync(join(tmpdir(), 'frugal-gguf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('Q8_0 (ggml block format)', () => {
  it('stores the f16 scale max|x|/127 and rounds halves away from zero', () => {
    const v = new Float32Array(32);
    for (let i = 0; i < 32; i++) v[i] = (i - 16) * 0.5; // max |x| = 8, d = 8/127
    const q = quantizeQ8_0(v);
    expect(q.length).toBe(34);
    const dv = new DataView(q.buffer);
    expect(f16BitsToNumber(dv.getUint16(0, true))).toBeCloseTo(8 / 127, 4);
    expect(dv.getInt8(2)).toBe(-127); // -8 -> -127
    expect(dv.getInt8(2 + 16)).toBe(0);
    // 0.5 / (8/127) = 7.9375 -> 8; -0.5 -> -8
    expect(dv.getInt8(2 + 17)).toBe(8);
    expect(dv.getInt8(2 + 15)).toBe(-8);
    expect(Array.from(quantizeQ8_0(new Float32Array(32)))).toEqual(new Array(34).fill(0));
  });

  it('keeps every value within half a step of the block scale', () => {
    let s = 7;
    const v = new Float32Array(32 * 50);
    for (let i = 0; i < v.length; i++) {
      s = (s * 48271) % 2147483647;
      v[i] = (s / 2147483647 - 0.5) * (1 + (i >> 5));
    }
    const back = dequantizeQ8_0(quantizeQ8_0(v), f16BitsToNumber);
    for (let b = 0; b < v.length; b += 32) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(v[b + i]));
      const d = amax / 127;
      // error bound: half a quantisation step plus the f16 rounding of the scale (2^-11 relative, times 127 steps)
      for (let i = 0; i < 32; i++) expect(Math.abs(back[b + i] - v[b + i])).toBeLessThanOrEqual(d * 0.5 + amax * 2 ** -11 + 1e-12);
    }
  });

  it('sizes tensors as ggml does and refuses rows that are not whole blocks', () => {
    expect(ggmlBytes('F32', [3, 5])).toBe(60);
    expect(ggmlBytes('F16', [3, 5])).toBe(30);
    expect(ggmlBytes('Q8_0', [2, 64])).toBe(4 * 34);
    expect(() => ggmlBytes('Q8_0', [64, 2])).toThrow(/multiple of 32/);
  });
});

describe('GGUF writer', () => {
  it('writes a file @huggingface/gguf reads: metadata, reversed dims, aligned offsets, data', async () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const q = new Float32Array(64).map((_, i) => Math.sin(i));
    const p = join(tmp, 't.gguf');
    writeFileAtomic(
      p,
      ggufProducer(
        [
          ['general.architecture', { type: 'string', value: 'mamba' }],
          ['mamba.block_count', { type: 'u32', value: 3 }],
          ['mamba.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
          ['mamba.ssm.dt_b_c_rms', { type: 'bool', value: false }],
          ['tokenizer.ggml.tokens', { type: 'string[]', value: ['a', 'ü', '🙂'] }],
          ['tokenizer.ggml.token_type', { type: 'i32[]', value: [1, 3, 5] }],
          ['tokenizer.ggml.merges', { type: 'string[]', value: [] }],
        ],
        [
          { name: 'x', shape: [2, 3], type: 'F32', data: () => new Uint8Array(a.buffer) },
          { name: 'q', shape: [2, 32], type: 'Q8_0', data: () => quantizeQ8_0(q) },
        ],
      ),
    );
    const r = await gguf(p, { allowLocalFile: true });
    expect(r.metadata['general.architecture']).toBe('mamba');
    expect(r.metadata['mamba.block_count']).toBe(3);
    expect(r.metadata['mamba.attention.layer_norm_rms_epsilon']).toBeCloseTo(1e-5, 10);
    expect(r.metadata['tokenizer.ggml.tokens']).toEqual(['a', 'ü', '🙂']);
    expect(r.metadata['tokenizer.ggml.token_type']).toEqual([1, 3, 5]);
    expect(r.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual([
      ['x', [3, 2], 0, 0],
      ['q', [32, 2], 8, 32],
    ]);
    expect(Number(r.tensorDataOffset) % 32).toBe(0);
  });

  it('spells bytes as GPT-2 byte-level BPE does', () => {
    const m = byteToUnicode();
    expect(m[65]).toBe('A');
    expect(m[32]).toBe('Ġ');
    expect(m[10]).toBe('Ċ');
    expect(new Set(m).size).toBe(256);
  });
});
