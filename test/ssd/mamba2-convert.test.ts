import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { convertCheckpoint } from '../../src/models/convert.js';
import { mamba2GgufName } from '../../src/models/convert-ssm.js';
import { Engine } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { openWeights } from '../../src/io/weights.js';
import { readFloat32, readRaw } from '../../src/io/tensors.js';
import { parseJsonLenient } from '../../src/io/json.js';
import { expectClose } from '../helpers/compare.js';
import { expectInputError } from '../io/io-helpers.js';
import { golden } from '../helpers/golden.js';

/** frugal convert on Mamba-2 checkpoints: both layouts both ways, and llama.cpp's GGUF architecture mamba2. */
const tmp = mkdtempSync(join(tmpdir(), 'frugal-m2-convert-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const out = (n: string) => join(tmp, n);
const config = (d: string) => parseJsonLenient(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
const A = 'test/fixtures/mamba2-tiny-a',
  B = 'test/fixtures/mamba2-tiny-b';

function tensors(dir: string): Map<string, Buffer> {
  const w = openWeights(dir);
  try {
    return new Map([...w.entries].map(([n, e]) => [n, Buffer.from(readRaw(e))]));
  } finally {
    w.close();
  }
}

function goldenLogits(dir: string, name: string) {
  const g = golden(name),
    e = new Engine({ kernels: 'wasm' });
  expectClose(
    e.scope(() => loadModel(e, dir).model.forward(g.ids, g.B, g.L).toFloat64()),
    g.get('logits'),
    1e-4,
    `${dir} logits`,
  );
}

describe('Mamba-2 checkpoints between layouts', () => {
  it('state-spaces -> transformers -> state-spaces gives back the same tensors and config.json', () => {
    convertCheckpoint({ model: B, out: out('b-hf'), to: 'hf' });
    expect(config(out('b-hf'))).toMatchObject({ model_type: 'mamba2', architectures: ['Mamba2ForCausalLM'], vocab_size: 40, n_groups: 1 });
    goldenLogits(out('b-hf'), 'mamba2-tiny-b');
    convertCheckpoint({ model: out('b-hf'), out: out('b-back'), to: 'original' });
    const a = tensors(B),
      b = tensors(out('b-back'));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [n, t] of a) expect(b.get(n)!.equals(t), n).toBe(true);
    expect(config(out('b-back'))).toEqual(config(B));
  });

  it('transformers -> state-spaces keeps the logits (Infinity in time_step_limit survives)', () => {
    convertCheckpoint({ model: A, out: out('a-orig'), to: 'original' });
    const c = config(out('a-orig'));
    expect(c).toMatchObject({ d_model: 16, n_layer: 2, ssm_cfg: { layer: 'Mamba2', ngroups: 2, headdim: 8, d_state: 8, chunk_size: 4 } });
    goldenLogits(out('a-orig'), 'mamba2-tiny-a');
    convertCheckpoint({ model: out('a-orig'), out: out('a-hf'), to: 'hf' });
    expect(config(out('a-hf'))).toMatchObject({ time_step_limit: [0, Infinity], n_groups: 2 });
    goldenLogits(out('a-hf'), 'mamba2-tiny-a');
  });
});

describe('Mamba-3 checkpoints between layouts', () => {
  it("state-spaces -> frugal's layout -> state-spaces gives back the same tensors and config.json, and the golden logits", () => {
    const M3 = 'test/fixtures/mamba3-tiny';
    convertCheckpoint({ model: M3, out: out('m3-hf'), to: 'hf' });
    expect(config(out('m3-hf'))).toMatchObject({ model_type: 'mamba3', num_heads: 4, n_groups: 2, state_size: 8, vocab_size: 40 });
    goldenLogits(out('m3-hf'), 'mamba3-tiny');
    convertCheckpoint({ model: out('m3-hf'), out: out('m3-back'), to: 'original' });
    const a = tensors(M3),
      b = tensors(out('m3-back'));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [n, t] of a) expect(b.get(n)!.equals(t), n).toBe(true);
    expect(config(out('m3-back'))).toEqual(config(M3));
    expectInputError(() => convertCheckpoint({ model: M3, out: out('m3.gguf'), to: 'gguf' }), /llama\.cpp has no Mamba-3 architecture/);
  });
  it('MIMO (3 ranks, untied head): both ways, the rank keys and mimo_x/z/o kept, the golden logits', () => {
    const M3 = 'test/fixtures/mamba3-mimo-tiny';
    convertCheckpoint({ model: M3, out: out('m3m-hf'), to: 'hf' });
    expect(config(out('m3m-hf'))).toMatchObject({ model_type: 'mamba3', is_mimo: true, mimo_rank: 3, tie_word_embeddings: false });
    goldenLogits(out('m3m-hf'), 'mamba3-mimo-tiny');
    convertCheckpoint({ model: out('m3m-hf'), out: out('m3m-back'), to: 'original' });
    const a = tensors(M3),
      b = tensors(out('m3m-back'));
    expect([...a.keys()].filter((n) => n.endsWith('mimo_z'))).toHaveLength(2);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [n, t] of a) expect(b.get(n)!.equals(t), n).toBe(true);
    expect(config(out('m3m-back'))).toEqual(config(M3));
  });
});

describe('Mamba-2 -> GGUF (llama.cpp architecture "mamba2")', () => {
  it("writes llama.cpp's names, shapes and hyperparameters", async () => {
    const p = out('a.gguf');
    convertCheckpoint({ model: A, out: p, to: 'gguf', dtype: 'f32' });
    const r = await gguf(p, { allowLocalFile: true });
    const m = r.metadata as Record<string, unknown>;
    expect(m['general.architecture']).toBe('mamba2');
    expect([
      m['mamba2.embedding_length'],
      m['mamba2.block_count'],
      m['mamba2.ssm.inner_size'],
      m['mamba2.ssm.state_size'],
      m['mamba2.ssm.time_step_rank'],
      m['mamba2.ssm.group_count'],
      m['mamba2.ssm.conv_kernel'],
    ]).toEqual([16, 2, 32, 8, 4, 2, 4]);
    const file = readFileSync(p),
      base = Number(r.tensorDataOffset);
    const w = openWeights(A);
    try {
      expect(new Set(r.tensorInfos.map((t) => t.name))).toEqual(new Set([...w.entries.keys()].map(mamba2GgufName)));
      const info = (n: string) => r.tensorInfos.find((t) => t.name === n)!;
      expect(info('blk.0.ssm_a').shape.map(Number)).toEqual([1, 4]); // (H, 1), innermost first
      expect(info('blk.0.ssm_norm.weight').shape.map(Number)).toEqual([16, 2]); // (G, ED/G)
      expect(info('blk.0.ssm_conv1d.weight').shape.map(Number)).toEqual([4, 64]);
      expect(info('blk.1.ssm_dt.bias').shape.map(Number)).toEqual([4]);
      const at = base + Number(info('blk.0.ssm_a').offset);
      const A0 = readFloat32(w.entries.get('backbone.layers.0.mixer.A_log')!).map((x) => -Math.exp(x));
      expect(Array.from(new Float32Array(file.buffer.slice(file.byteOffset + at, file.byteOffset + at + 16)))).toEqual(Array.from(A0));
    } finally {
      w.close();
    }
  });

  it("refuses what llama.cpp's mamba2 would run differently", () => {
    expectInputError(
      () => convertCheckpoint({ model: B, out: out('b.gguf'), to: 'gguf' }),
      /cannot write a llama\.cpp GGUF: use_bias is true/,
    );
    expect(existsSync(out('b.gguf'))).toBe(false);
  });
});
