import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { convertCheckpoint, ggufName } from '../../src/models/convert.js';
import { Engine } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { openWeights } from '../../src/io/weights.js';
import type { WeightSet } from '../../src/io/weights.js';
import { f32BitsToF16Bits, readFloat32, readRaw } from '../../src/io/tensors.js';
import { dequantizeQ8_0, quantizeQ8_0 } from '../../src/io/gguf.js';
import { f16BitsToNumber } from '../../src/io/safetensors.js';
import { expectClose } from '../helpers/compare.js';
import { expectInputError } from '../io/io-helpers.js';
import { fixture, golden } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'frugal-convert-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const out = (n: string) => join(tmp, n);
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

function withWeights<T>(dir: string, fn: (w: WeightSet) => T): T {
  const w = openWeights(dir);
  try {
    return fn(w);
  } finally {
    w.close();
  }
}

/** name -> { dtype, shape, bytes, storage } of every stored tensor. */
function snapshot(dir: string) {
  return withWeights(
    dir,
    (w) =>
      new Map([...w.entries].map(([n, e]) => [n, { dtype: e.dtype, shape: e.shape, bytes: Buffer.from(readRaw(e)), storage: e.storage }])),
  );
}

function logitsOf(dir: string, name: string) {
  const g = golden(name);
  const e = new Engine({ kernels: 'wasm' });
  const { model } = loadModel(e, dir);
  return { got: e.scope(() => model.forward(g.ids, g.B, g.L).toFloat64()), want: g.logits };
}

describe('original layout <-> Hugging Face layout', () => {
  it.each(['orig-bin-tied', 'orig-bin-f16-untied'])('%s -> hf -> original gives back the same tensors and config.json', (name) => {
    convertCheckpoint({ model: fixture(name), out: out(`${name}-hf`), to: 'hf' });
    convertCheckpoint({ model: out(`${name}-hf`), out: out(`${name}-back`), to: 'original' });
    const a = snapshot(fixture(name)),
      b = snapshot(out(`${name}-back`));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [n, t] of a) {
      const u = b.get(n)!;
      expect([u.dtype, u.shape], n).toEqual([t.dtype, t.shape]);
      expect(u.bytes.equals(t.bytes), `${n} bytes`).toBe(true);
    }
    if (name === 'orig-bin-tied') expect(b.get('lm_head.weight')!.storage).toBe(b.get('backbone.embedding.weight')!.storage);
    expect(json(join(out(`${name}-back`), 'config.json'))).toEqual(json(join(fixture(name), 'config.json')));
  });

  it('writes the HF side as transformers expects: embeddings renamed, tied head dropped, dtype kept', () => {
    const hf = out('orig-bin-tied-hf2');
    convertCheckpoint({ model: fixture('orig-bin-tied'), out: hf, to: 'hf' });
    expect(readdirSync(hf).sort()).toEqual(['.complete', 'config.json', 'model.safetensors']);
    const names = withWeights(hf, (w) => [...w.entries.keys()]);
    expect(names).toContain('backbone.embeddings.weight');
    expect(names).not.toContain('lm_head.weight');
    expect(json(join(hf, 'config.json'))).toMatchObject({
      model_type: 'mamba',
      vocab_size: 40,
      tie_word_embeddings: true,
      torch_dtype: 'float32',
    });
    const { got, want } = logitsOf(hf, 'orig-bin-tied');
    expectClose(got, want, 1e-4, 'converted logits');
    const f16 = out('orig-f16-hf');
    convertCheckpoint({ model: fixture('orig-bin-f16-untied'), out: f16, to: 'hf' });
    expect(withWeights(f16, (w) => w.entries.get('lm_head.weight')!.dtype)).toBe('F16');
    expect(json(join(f16, 'config.json')).torch_dtype).toBe('float16');
  });
});

describe('dtype and sharding', () => {
  it('f32 -> f16 rounds each value to nearest even and carries the tokenizer', () => {
    const d = out('tok-f16');
    convertCheckpoint({ model: fixture('hf-tokenizer'), out: d, to: 'hf', dtype: 'f16' });
    expect(existsSync(join(d, 'tokenizer.json')) && existsSync(join(d, 'tokenizer_config.json'))).toBe(true);
    expect(json(join(d, 'config.json')).torch_dtype).toBe('float16');
    withWeights(fixture('hf-tokenizer'), (src) =>
      withWeights(d, (dst) => {
        for (const [n, e] of src.entries) {
          const f = readFloat32(e),
            bits = new Uint32Array(f.buffer);
          const h = new Uint16Array(readRaw(dst.entries.get(n)!).buffer);
          expect(dst.entries.get(n)!.dtype).toBe('F16');
          for (let i = 0; i < f.length; i++) if (h[i] !== f32BitsToF16Bits(bits[i])) throw new Error(`${n}[${i}]`);
        }
      }),
    );
    const { got, want } = logitsOf(d, 'hf-tokenizer');
    expectClose(got, want, 2e-2, 'f16 logits'); // f16 weights: about 3 significant digits
  });

  it('f16 -> f32 into shards past --max-shard-size, with an index transformers reads', () => {
    const d = out('sharded-f32');
    convertCheckpoint({ model: fixture('hf-f16-sharded'), out: d, to: 'hf', dtype: 'f32', maxShardBytes: 4000 });
    const files = readdirSync(d).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(files.length).toBeGreaterThan(3);
    const idx = json(join(d, 'model.safetensors.index.json')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(new Set(Object.values(idx.weight_map))).toEqual(new Set(files));
    expect(idx.metadata.total_size).toBe(withWeights(d, (w) => [...w.entries.values()].reduce((a, e) => a + e.byteLength, 0)));
    const { got, want } = logitsOf(d, 'hf-f16-sharded');
    expectClose(got, want, 1e-4, 'sharded f32 logits');
  });

  it('refuses a float16 overflow, q8_0 outside GGUF, and GGUF for blocks llama.cpp cannot run', () => {
    expectInputError(
      () => convertCheckpoint({ model: fixture('hf-tokenizer'), out: out('x'), to: 'hf', dtype: 'q8_0' }),
      /--dtype q8_0 is for --to gguf/,
    );
    expectInputError(
      () => convertCheckpoint({ model: fixture('hf-bf16-untied'), out: out('x.gguf'), to: 'gguf' }),
      /cannot write a llama\.cpp GGUF: use_bias is true/,
    );
    expect(existsSync(out('x')) || existsSync(out('x.gguf'))).toBe(false);
  });
});

describe('Hugging Face layout -> GGUF (llama.cpp architecture "mamba")', () => {
  const src = fixture('frugal-trained');
  const cfg = json(join(src, 'config.json'));

  it.each(['f32', 'f16', 'q8_0'] as const)('--dtype %s: @huggingface/gguf reads back the same tensors', async (dtype) => {
    const p = out(`model-${dtype}.gguf`);
    convertCheckpoint({ model: src, out: p, to: 'gguf', dtype });
    const r = await gguf(p, { allowLocalFile: true });
    const m = r.metadata as Record<string, unknown>;
    expect(m['general.architecture']).toBe('mamba');
    expect([
      m['mamba.embedding_length'],
      m['mamba.block_count'],
      m['mamba.ssm.inner_size'],
      m['mamba.ssm.state_size'],
      m['mamba.ssm.time_step_rank'],
      m['mamba.ssm.conv_kernel'],
    ]).toEqual([cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.state_size, cfg.time_step_rank, cfg.conv_kernel]);
    expect(m['general.file_type']).toBe({ f32: 0, f16: 1, q8_0: 7 }[dtype]);
    expect((m['tokenizer.ggml.tokens'] as string[]).length).toBe(cfg.vocab_size);
    expect(m['tokenizer.ggml.model']).toBe('gpt2');
    const file = readFileSync(p);
    const base = Number(r.tensorDataOffset);
    await withWeights(src, async (w) => {
      const names = new Set(r.tensorInfos.map((t) => t.name));
      expect(names).toEqual(new Set([...w.entries.keys()].map(ggufName)));
      expect(names.has('output.weight')).toBe(false); // tied head: llama.cpp reuses token_embd
      for (const t of r.tensorInfos) {
        const hf = [...w.entries.keys()].find((n) => ggufName(n) === t.name)!;
        const e = w.entries.get(hf)!;
        let want = readFloat32(e);
        if (hf.endsWith('A_log')) want = want.map((x) => -Math.exp(x));
        const shape = hf.endsWith('conv1d.weight') ? [e.shape[0], e.shape[2]] : e.shape;
        expect(t.shape.map(Number), t.name).toEqual([...shape].reverse());
        const at = base + Number(t.offset);
        const f32Only = shape.length === 1 || /_norm\.weight$|ssm_conv1d\.weight$|ssm_a$|ssm_d$/.test(t.name);
        const type = f32Only || dtype === 'f32' ? 0 : dtype === 'q8_0' && shape[shape.length - 1] % 32 === 0 ? 8 : 1;
        expect(t.dtype, t.name).toBe(type);
        if (type === 0) {
          expect(
            Array.from(new Float32Array(file.buffer.slice(file.byteOffset + at, file.byteOffset + at + want.length * 4))),
            t.name,
          ).toEqual(Array.from(want));
        } else if (type === 1) {
          const h = new Uint16Array(file.buffer.slice(file.byteOffset + at, file.byteOffset + at + want.length * 2));
          const bits = new Uint32Array(want.buffer);
          for (let i = 0; i < h.length; i++) if (h[i] !== f32BitsToF16Bits(bits[i])) throw new Error(`${t.name}[${i}]`);
        } else {
          const q = new Uint8Array(file.buffer.slice(file.byteOffset + at, file.byteOffset + at + (want.length / 32) * 34));
          expect(Buffer.from(q).equals(Buffer.from(quantizeQ8_0(want))), t.name).toBe(true);
          expectClose(dequantizeQ8_0(q, f16BitsToNumber), want, 1e-2, `${t.name} dequantised`);
        }
      }
    });
  });

  it('writes the tokenizer.json vocabulary, merges and special tokens', async () => {
    const p = out('tok.gguf');
    convertCheckpoint({ model: fixture('hf-tokenizer'), out: p, to: 'gguf' });
    const m = (await gguf(p, { allowLocalFile: true })).metadata as Record<string, unknown>;
    const tj = json(join(fixture('hf-tokenizer'), 'tokenizer.json')) as { model: { vocab: Record<string, number>; merges: string[] } };
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    expect(tokens.length).toBe(464);
    expect(tokens[0]).toBe('<|endoftext|>');
    for (const [t, id] of Object.entries(tj.model.vocab)) expect(tokens[id]).toBe(t);
    expect(tokens[460]).toBe('[PAD460]');
    expect(m['tokenizer.ggml.merges']).toEqual(tj.model.merges);
    expect((m['tokenizer.ggml.token_type'] as number[]).slice(0, 3)).toEqual([3, 3, 1]);
    expect((m['tokenizer.ggml.token_type'] as number[])[463]).toBe(5);
    expect([m['tokenizer.ggml.pre'], m['tokenizer.ggml.eos_token_id'], m['tokenizer.ggml.add_bos_token']]).toEqual(['gpt-2', 0, false]);
  });
});
