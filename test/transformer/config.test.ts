import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  createLlamaConfig,
  defaultHeads,
  defaultIntermediate,
  llamaConfigFromHF,
  llamaConfigToHF,
} from '../../src/models/transformer/config.js';
import { FrugalError } from '../../src/io/errors.js';
import { Engine } from '../../src/ops/index.js';
import { modelFromConfig } from '../../src/models/checkpoint.js';
import { createModel } from '../../src/models/factory.js';
import { Rng } from '../../src/io/rng.js';

const BASE = { model_type: 'llama', hidden_size: 32, num_hidden_layers: 2, vocab_size: 40, num_attention_heads: 4, intermediate_size: 48 };

function inputErr(fn: () => unknown, mention: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FrugalError);
    expect((e as FrugalError).exitCode).toBe(2);
    expect((e as Error).message).toMatch(mention);
    return;
  }
  throw new Error('expected an input error');
}

describe('LlamaConfig from config.json (lenient) and frugal options (strict)', () => {
  it('reads a committed fixture and round-trips through toHF', () => {
    const raw = JSON.parse(readFileSync('test/fixtures/llama-tiny-b/config.json', 'utf8'));
    const { config, warnings } = llamaConfigFromHF(raw, 'cfg');
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({
      dModel: 12,
      nHead: 4,
      nKvHead: 2,
      headDim: 6,
      intermediateSize: 20,
      ropeTheta: 500,
      rmsNormEps: 1e-5,
      attentionBias: true,
      mlpBias: true,
      tieWordEmbeddings: false,
      bosTokenId: 1,
      eosTokenId: 2,
      padTokenId: null,
    });
    expect(llamaConfigFromHF(llamaConfigToHF(config), 'again').config).toEqual(config);
  });

  it("applies LlamaConfig's defaults: untied head, Hkv = H, hd = D / H, rms_norm_eps 1e-6, rope_theta 10000", () => {
    const { config } = llamaConfigFromHF(BASE, 'cfg');
    expect(config).toMatchObject({ tieWordEmbeddings: false, nKvHead: 4, headDim: 8, rmsNormEps: 1e-6, ropeTheta: 10000 });
  });

  it('warns about unknown keys and accepts documented init-only ones', () => {
    const { warnings } = llamaConfigFromHF(
      { ...BASE, pretraining_tp: 1, initializer_range: 0.1, use_cache: false, flux_capacitor: 3 },
      'c.json',
    );
    expect(warnings).toEqual(["c.json: unknown config key 'flux_capacitor' ignored"]);
  });

  it('accepts default rotary settings in rope_scaling and rope_parameters, refuses scaled ones', () => {
    expect(llamaConfigFromHF({ ...BASE, rope_parameters: { rope_type: 'default', rope_theta: 123 } }, 'c').config.ropeTheta).toBe(123);
    inputErr(() => llamaConfigFromHF({ ...BASE, rope_scaling: { type: 'linear', factor: 2 } }, 'c.json'), /rope_scaling type 'linear'/);
  });

  it('refuses what it cannot run, naming the key', () => {
    inputErr(() => llamaConfigFromHF({ ...BASE, hidden_act: 'gelu' }, 'c.json'), /hidden_act 'gelu'/);
    const { intermediate_size: _, ...noF } = BASE;
    inputErr(() => llamaConfigFromHF(noF, 'c.json'), /missing required key 'intermediate_size'/);
    inputErr(() => llamaConfigFromHF({ ...BASE, num_key_value_heads: 3 }, 'c.json'), /not a multiple of 3/);
    inputErr(() => createLlamaConfig({ dModel: 30, nLayer: 1, nHead: 4 }), /not divisible by 4 heads/);
    inputErr(() => createLlamaConfig({ dModel: 30, nLayer: 1, nHead: 10 }), /head size 3 must be even/);
    inputErr(() => createLlamaConfig({ dModel: 32, nLayer: 1, nHeads: 4 } as never), /unknown option 'nHeads'/);
  });

  it('chooses heads of about 64 channels and an 8D/3 SwiGLU width by default', () => {
    expect([32, 96, 128, 256, 768].map(defaultHeads)).toEqual([1, 2, 2, 4, 12]);
    expect(defaultIntermediate(256)).toBe(704);
  });

  it("is what checkpoint loading builds for model_type 'llama', and what --arch transformer trains", () => {
    const e = new Engine({ kernels: 'ref' });
    expect(modelFromConfig(e, BASE, 'c').model.config.modelType).toBe('llama');
    const m = createModel('transformer', e, { dModel: 64, layers: 2, dState: 16, vocabSize: 256, heads: 2 }, Rng.fromSeed(1));
    expect(m.hfConfig()).toMatchObject({ model_type: 'llama', num_attention_heads: 2, hidden_size: 64, tie_word_embeddings: true });
    inputErr(
      () => createModel('transformer', e, { dModel: 60, layers: 1, dState: 16, vocabSize: 256, heads: 7 }, Rng.fromSeed(1)),
      /--arch transformer/,
    );
  });
});
