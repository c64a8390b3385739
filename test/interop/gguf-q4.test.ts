import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { convertCheckpoint, ggufName } from '../../src/models/convert.js';
import { Engine } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { openWeights } from '../../src/io/weights.js';
import { readFloat32 } from '../../src/io/tensors.js';
import { dequantizeQ4_0, ggmlBytes, quantizeQ4_0 } from '../../src/io/gguf.js';
import { encodeSafetensors, f16BitsToNumber } from '../../src/io/safetensors.js';
import { expectClose, relErr } from '../helpers/compare.js';
import { fixture, golden } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'frugal-gguf-q4-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Q4_0 read from its byte layout alone, written apart from src/io/gguf.ts: 18-byte blocks, an f16
 * scale d, then byte j = weight j (low nibble) | weight j + 16 (high nibble); weight = (nibble - 8) d.
 */
function readQ4_0(bytes: Uint8Array): { values: Float32Array; scales: number[] } {
  const blocks = bytes.length / 18;
  const values = new Float32Array(blocks * 32);
  const scales: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const d = f16BitsToNumber(bytes[b * 18] | (bytes[b * 18 + 1] << 8));
    scales.push(d);
    for (let j = 0; j < 16; j++) {
      const byte = bytes[b * 18 + 2 + j];
      values[b * 32 + j] = ((byte & 0x0f) - 8) * d;
      values[b * 32 + 16 + j] = ((byte >> 4) - 8) * d;
    }
  }
  return { values, scales };
}

/** Q8_0 from its layout: 34-byte blocks, an f16 scale then 32 int8. */
function readQ8_0(bytes: Uint8Array): Float32Array {
  const out = new Float32Array((bytes.length / 34) * 32);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < bytes.length / 34; b++) {
    const d = f16BitsToNumber(dv.getUint16(b * 34, true));
    for (let i = 0; i < 32; i++) out[b * 32 + i] = dv.getInt8(b * 34 + 2 + i) * d;
  }
  return out;
}

describe('Q4_0 (ggml block format)', () => {
  it('maps the value of largest magnitude to -8 and packs weight j and j + 16 into byte j', () => {
    const v = new Float32Array(32).map((_, i) => i - 16); // -16 .. 15: max magnitude -16, so d = 2
    const q = quantizeQ4_0(v);
    expect(q.length).toBe(18);
    expect(q[0] | (q[1] << 8)).toBe(0x4000); // f16 2.0
    // x/d + 8.5 truncated: -16 -> 0, -15 -> 1, -14 -> 1 (1.5), -1 -> 8 (8.0), 0 -> 8, 15 -> 16 clamped to 15
    expect(q[2]).toBe(0 | (8 << 4));
    expect(q[3]).toBe(1 | (9 << 4)); // -15 and 1 (0.5 + 8.5 = 9)
    expect(q[2 + 15]).toBe(8 | (15 << 4));
    expect(Array.from(readQ4_0(q).values.subarray(0, 4))).toEqual([-16, -14, -14, -12]);
    // an all-zero block: d = 0 / -8 = -0 (f16 0x8000, as ggml writes it), every nibble 8
    expect(Array.from(quantizeQ4_0(new Float32Array(32)))).toEqual([0x00, 0x80, ...new Array(16).fill(0x88)]);
  });

  it('keeps the sign of the largest value in d (the first, on a tie), so that value is exact', () => {
    const v = new Float32Array(32);
    v[3] = 5;
    v[7] = -5; // same magnitude, later: clamped to the +7 end
    const { values, scales } = readQ4_0(quantizeQ4_0(v));
    expect(scales[0]).toBe(-0.625);
    expect(values[3]).toBe(5);
    expect(values[7]).toBe(-4.375);
    expect(Math.abs(values[0])).toBe(0);
  });

  it('keeps every value within half a step, one step at the clamped end, and agrees with its dequantiser', () => {
    let s = 11;
    const v = new Float32Array(32 * 40);
    for (let i = 0; i < v.length; i++) {
      s = (s * 48271) % 2147483647;
      v[i] = (s / 2147483647 - 0.5) * (1 + (i >> 5));
    }
    const q = quantizeQ4_0(v);
    const { values, scales } = readQ4_0(q);
    expect(Array.from(dequantizeQ4_0(q, f16BitsToNumber))).toEqual(Array.from(values));
    for (let b = 0; b < 40; b++) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(v[b * 32 + i]));
      expect(Math.abs(Math.abs(scales[b]) - amax / 8)).toBeLessThanOrEqual((amax / 8) * 2 ** -10);
      const step = Math.abs(scales[b]);
      for (let i = 0; i < 32; i++) {
        const x = v[b * 32 + i];
        const clamped = x / scales[b] > 7.5;
        expect(Math.abs(values[b * 32 + i] - x)).toBeLessThanOrEqual((clamped ? step : step / 2) + amax * 2 ** -10);
      }
    }
  });

  it('sizes Q4_0 tensors as ggml does and refuses rows that are not whole blocks', () => {
    expect(ggmlBytes('Q4_0', [3, 64])).toBe(6 * 18);
    expect(() => ggmlBytes('Q4_0', [64, 48])).toThrow(/Q4_0 needs rows that are a multiple of 32, got 48/);
  });
});

describe('convert --to gguf --dtype q4_0 (Mamba-1)', () => {
  const src = fixture('frugal-trained');

  it('writes q4_0 projections, a q8_0 embedding, f32 for the rest, and logits stay close to f32', async () => {
    const p = join(tmp, 'model-q4_0.gguf');
    convertCheckpoint({ model: src, out: p, to: 'gguf', dtype: 'q4_0' });
    const r = await gguf(p, { allowLocalFile: true });
    expect(r.metadata['general.file_type']).toBe(2); // LLAMA_FTYPE_MOSTLY_Q4_0
    const file = readFileSync(p);
    const base = Number(r.tensorDataOffset);
    const back: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array }[] = [];
    const w = openWeights(src);
    try {
      for (const [hf, e] of w.entries) {
        const t = r.tensorInfos.find((x) => x.name === ggufName(hf));
        expect(t, hf).toBeDefined();
        const want = readFloat32(e);
        const n = want.length;
        const at = file.byteOffset + base + Number(t!.offset);
        const bytes = (k: number) => new Uint8Array(file.buffer.slice(at, at + k));
        let got: Float32Array;
        if (/\.(in_proj|x_proj|out_proj)\.weight$/.test(hf)) {
          expect(t!.dtype, hf).toBe(2);
          const { values, scales } = readQ4_0(bytes((n / 32) * 18));
          got = values;
          for (let b = 0; b < scales.length; b++) {
            let amax = 0;
            for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(want[b * 32 + i]));
            for (let i = 0; i < 32; i++)
              expect(Math.abs(got[b * 32 + i] - want[b * 32 + i]), `${hf}[${b * 32 + i}]`).toBeLessThanOrEqual(amax / 8 + 1e-6);
          }
        } else if (hf === 'backbone.embeddings.weight') {
          expect(t!.dtype, hf).toBe(8); // stays q8_0, as frugal's q4 keeps the embedding/head q8
          got = readQ8_0(bytes((n / 32) * 34));
          expectClose(got, want, 1e-2, hf);
        } else {
          expect(t!.dtype, hf).toBe(0); // dt_proj (rows of dt_rank = 2), conv, norms, A, D, biases
          got = new Float32Array(file.buffer.slice(at, at + n * 4));
          if (hf.endsWith('A_log')) got = got.map((a) => Math.log(-a));
          expectClose(got, want, 1e-6, hf);
        }
        back.push({ name: hf, dtype: 'F32', shape: [...e.shape], data: got });
      }
    } finally {
      w.close();
    }
    // the dequantised weights as a checkpoint: frugal's logits against PyTorch's f32 ones
    const d = join(tmp, 'dequantised');
    mkdirSync(d);
    copyFileSync(join(src, 'config.json'), join(d, 'config.json'));
    writeFileSync(join(d, 'model.safetensors'), encodeSafetensors(back));
    const g = golden('frugal-trained');
    const e = new Engine({ kernels: 'wasm' });
    const got = e.scope(() => loadModel(e, d).model.forward(g.ids, g.B, g.L).toFloat64());
    expect(relErr(got, g.logits)).toBeGreaterThan(1e-3); // it is quantised
    // 4 bits on a 32-wide model: 0.14 here, as with `frugal quantize --to q4` (0.14); the same
    // bytes read with the nibbles interleaved (weight 2j low, 2j + 1 high) give 1.1
    expectClose(got, g.logits, 0.3, 'q4_0 logits');
  });

  it('refuses q4_0 outside GGUF', () => {
    expect(() => convertCheckpoint({ model: src, out: join(tmp, 'x'), to: 'hf', dtype: 'q4_0' })).toThrow(
      /--dtype q4_0 is for --to gguf; choose f32 or f16 for --to hf/,
    );
  });
});
