import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { train } from '../../src/train/trainer.js';
import { trainOptions } from '../helpers/train.js';
import { fixture } from './fixtures.js';
import type { MambaLM } from '../../src/models/mamba/model.js';
import { quantizeModel } from '../../src/models/quant.js';

/**
 * What frugal saves is what transformers' MambaForCausalLM.from_pretrained loads. The fixture
 * frugal-trained/ was written by `frugal train` and checked by tools/check_interop.py, which loads
 * it the way transformers does (names, shapes, dtypes, metadata, config keys) and computes the
 * golden logits in PyTorch (test/interop/layouts.test.ts compares them in both modes). Here: the
 * writer still produces those bytes, and a fresh training run saves the same structure. A deliberate
 * change of the saved format must be checked again: npm run build && tools/check_interop.py.
 */
const TRAINED = fixture('frugal-trained');
const tmp = mkdtempSync(join(tmpdir(), 'frugal-save-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** transformers' MambaConfig arguments and derived intermediate_size, and the PretrainedConfig keys save_pretrained writes. */
const DOCUMENTED = new Set([
  'vocab_size',
  'hidden_size',
  'state_size',
  'num_hidden_layers',
  'layer_norm_epsilon',
  'pad_token_id',
  'bos_token_id',
  'eos_token_id',
  'expand',
  'conv_kernel',
  'use_bias',
  'use_conv_bias',
  'hidden_act',
  'initializer_range',
  'residual_in_fp32',
  'time_step_rank',
  'time_step_scale',
  'time_step_min',
  'time_step_max',
  'time_step_init_scheme',
  'time_step_floor',
  'rescale_prenorm_residual',
  'use_cache',
  'use_mambapy',
  'intermediate_size',
  'architectures',
  'model_type',
  'torch_dtype',
  'transformers_version',
  'tie_word_embeddings',
]);

function structure(dir: string) {
  const f = readSafetensors(join(dir, 'model.safetensors'));
  return { metadata: f.metadata, tensors: [...f.tensors].map(([n, t]) => [n, t.dtype, t.shape]) };
}

describe('saving for transformers', () => {
  it('re-saves the checked checkpoint byte for byte (config.json and model.safetensors)', () => {
    const { model } = loadModel(new Engine({ kernels: 'wasm' }), TRAINED);
    const out = join(tmp, 'resaved');
    writeDirAtomic(out, modelFiles(model));
    for (const f of ['config.json', 'model.safetensors']) {
      expect(readFileSync(join(out, f)).equals(readFileSync(join(TRAINED, f))), f).toBe(true);
    }
  });

  it("writes only documented MambaConfig keys, plus frugal's tokenizer marker", () => {
    const cfg = JSON.parse(readFileSync(join(TRAINED, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(cfg).filter((k) => !DOCUMENTED.has(k))).toEqual(['frugal']);
    expect(cfg).toMatchObject({
      model_type: 'mamba',
      architectures: ['MambaForCausalLM'],
      torch_dtype: 'float32',
      frugal: { tokenizer: 'byte' },
    });
    const s = structure(TRAINED);
    expect(s.metadata).toEqual({ format: 'pt' });
    expect(s.tensors.every(([, d]) => d === 'F32')).toBe(true);
    expect(s.tensors.map(([n]) => n)).not.toContain('lm_head.weight'); // tied: transformers re-ties it
  });

  it('a new training run saves the same names, shapes, dtypes and config keys', () => {
    const out = join(tmp, 'fresh');
    train(trainOptions({ out, steps: 2, dModel: 32, layers: 2, dState: 8, seed: 9 }));
    expect(structure(out)).toEqual(structure(TRAINED));
    const keys = (d: string) => Object.keys(JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as object);
    expect(keys(out)).toEqual(keys(TRAINED));
  });

  it.each(['q8', 'q4'] as const)('a %s-quantised checkpoint saves its int8 values and f32 scales, and loads bit for bit', (format) => {
    const e = new Engine({ kernels: 'wasm' });
    const model = loadModel(e, TRAINED).model as MambaLM;
    quantizeModel(model, format);
    const out = join(tmp, `quant-${format}`);
    writeDirAtomic(out, modelFiles(model));
    const f = readSafetensors(join(out, 'model.safetensors'));
    const w = 'backbone.layers.0.mixer.in_proj.weight';
    expect(f.tensors.get(w)).toMatchObject({ dtype: format === 'q8' ? 'I8' : 'U8', shape: format === 'q8' ? [128, 32] : [128, 16] });
    expect(f.tensors.get(`${w}_scale`)).toMatchObject({ dtype: 'F32', shape: [128, 1] });
    const back = loadModel(new Engine({ kernels: 'wasm' }), out).model as MambaLM;
    expect(back.qweights.size).toBe(model.qweights.size);
    const ids = Int32Array.from(new TextEncoder().encode('The state of the Union'));
    const a = e.scope(() => Float32Array.from(model.forward(ids, 1, ids.length).data()));
    const b = back.e.scope(() => Float32Array.from(back.forward(ids, 1, ids.length).data()));
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  });

  it('continues training a published checkpoint (train --init) and keeps its tokenizer', () => {
    const out = join(tmp, 'refined');
    const r = train(trainOptions({ out, steps: 2, init: fixture('hf-tokenizer') }));
    expect(r.model.config.vocabSize).toBe(464);
    expect(readFileSync(join(out, 'tokenizer.json')).equals(readFileSync(join(fixture('hf-tokenizer'), 'tokenizer.json')))).toBe(true);
    const again = loadModel(new Engine({ kernels: 'wasm' }), out);
    expect(again.model.hfConfig()).toMatchObject({ vocab_size: 464, hidden_size: 16, tie_word_embeddings: true });
  });
});
