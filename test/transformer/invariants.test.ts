import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { TransformerLM } from '../../src/models/transformer/model.js';
import { createLlamaConfig } from '../../src/models/transformer/config.js';
import type { LlamaOptions } from '../../src/models/transformer/config.js';
import { INITIAL_CAPACITY } from '../../src/models/transformer/runner.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import type { KernelKind } from '../../src/kernels/backend.js';
import { expectClose } from '../helpers/compare.js';
import { checkModelGradients, perturb, randomIds } from '../helpers/models.js';

const KINDS: KernelKind[] = ['wasm', 'ref'];

function makeModel(kernels: KernelKind, extra: Partial<LlamaOptions> = {}, seed = 3) {
  const e = new Engine({ kernels });
  const cfg = createLlamaConfig({ dModel: 24, nLayer: 2, nHead: 4, nKvHead: 2, vocabSize: 50, attentionBias: true, ...extra });
  const model = new TransformerLM(e, cfg).init(Rng.fromSeed(seed));
  // larger weights than the 0.02 init, so attention is far from uniform and every path matters
  const rng = Rng.fromSeed(seed + 100);
  perturb(model, rng, 0.3);
  return { e, model };
}

/** Columns t0..t1 of each of B rows of ids (B, L). */
const cols = (ids: Int32Array, B: number, L: number, t0: number, t1: number) =>
  Int32Array.from({ length: B * (t1 - t0) }, (_, i) => ids[Math.floor(i / (t1 - t0)) * L + t0 + (i % (t1 - t0))]);
const row = (par: Float64Array, B: number, L: number, V: number, t: number) =>
  Float64Array.from({ length: B * V }, (_, i) => par[(Math.floor(i / V) * L + t) * V + (i % V)]);

describe.each(KINDS)('transformer invariants, %s kernels', (kernels) => {
  it('the parallel forward over 80 tokens equals 80 successive KV-cache steps (and the cache doubles past its capacity)', () => {
    const { e, model } = makeModel(kernels);
    const B = 2,
      L = 80,
      V = model.config.vocabSize;
    const ids = randomIds(1, B * L, V);
    const par = e.scope(() => model.forward(ids, B, L).toFloat64());
    const state = model.createState(B);
    const seq = new Float64Array(B * L * V);
    for (let t = 0; t < L; t++) {
      const logits = model.step(cols(ids, B, L, t, t + 1), state);
      for (let b = 0; b < B; b++) seq.set(logits.subarray(b * V, (b + 1) * V), (b * L + t) * V);
    }
    expectClose(seq, par, 1e-5, 'steps vs parallel');
    expect(state.position).toBe(L);
    expect(state.tensors.get('k.0.0.0')!.shape).toEqual([2 * INITIAL_CAPACITY, model.config.headDim]);
  });

  it('a prefill longer than one chunk (600 tokens), then a reserved cache, then steps, all match the forward', () => {
    const { e, model } = makeModel(kernels, { dModel: 16, nLayer: 1, nHead: 2, nKvHead: 1 });
    const B = 1,
      L = 620,
      V = model.config.vocabSize;
    const ids = randomIds(2, B * L, V);
    const par = e.scope(() => model.forward(ids, B, L).toFloat64());
    const state = model.createState(B);
    expectClose(model.prefill(cols(ids, B, L, 0, 600), 600, state), row(par, B, L, V, 599), 1e-5, 'prefill of 600');
    expect(state.tensors.get('v.0.0.0')!.shape[0]).toBe(1024); // doubled from 512 when 600 did not fit
    model.reserve(state, 1100);
    expect(state.tensors.get('v.0.0.0')!.shape[0]).toBe(1100); // reserve grows exactly
    for (let t = 600; t < L; t++) expectClose(model.step(cols(ids, B, L, t, t + 1), state), row(par, B, L, V, t), 1e-5, `step ${t}`);
  });

  it('save -> load reproduces logits bit for bit, in the Hugging Face Llama layout', () => {
    const { e, model } = makeModel(kernels, { tieWordEmbeddings: false, mlpBias: true });
    const dir = join(mkdtempSync(join(tmpdir(), 'frugal-llama-')), 'ckpt');
    try {
      writeDirAtomic(dir, modelFiles(model));
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(cfg).toMatchObject({
        model_type: 'llama',
        architectures: ['LlamaForCausalLM'],
        hidden_size: 24,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 6,
        num_hidden_layers: 2,
        tie_word_embeddings: false,
        attention_bias: true,
        mlp_bias: true,
        hidden_act: 'silu',
      });
      const names = [...decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), 'm').tensors.keys()];
      for (const n of [
        'model.embed_tokens.weight',
        'model.layers.1.self_attn.q_proj.weight',
        'model.layers.0.self_attn.o_proj.bias',
        'model.layers.0.mlp.gate_proj.weight',
        'model.layers.1.post_attention_layernorm.weight',
        'model.norm.weight',
        'lm_head.weight',
      ]) {
        expect(names).toContain(n);
      }
      const e2 = new Engine({ kernels });
      const loaded = loadModel(e2, dir).model;
      const ids = randomIds(3, 33, model.config.vocabSize);
      const a = e.scope(() => Float32Array.from(model.forward(ids, 1, 33).data()));
      const b = e2.scope(() => Float32Array.from(loaded.forward(ids, 1, 33).data()));
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('float64 finite-difference gradient check of a whole 2-layer transformer', () => {
  it.each([
    ['tied head, multi-head attention', { tieWordEmbeddings: true, nKvHead: 2, attentionBias: false }],
    ['untied head, grouped queries, all biases', { tieWordEmbeddings: false, nKvHead: 1, attentionBias: true, mlpBias: true }],
  ] as const)('%s: loss w.r.t. every parameter tensor (sampled elements)', (_, extra) => {
    const e = new Engine({ kernels: 'ref', dtype: 'f64' });
    const cfg = createLlamaConfig({ dModel: 8, nLayer: 2, nHead: 2, intermediateSize: 12, vocabSize: 11, ropeTheta: 100, ...extra });
    const rng = Rng.fromSeed(7);
    const model = new TransformerLM(e, cfg).init(rng);
    perturb(model, rng, 0.4);
    checkModelGradients(model, rng, 2, 7, 5, 1e-5);
  });
});
