import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { encodeSafetensors, readSafetensors, readTensorF32, tensorBytes } from '../../src/io/safetensors.js';
import { FIXTURES, fixture, golden } from './fixtures.js';
import type { SafeTensorIn, SafetensorsFile } from '../../src/io/safetensors.js';
import { FrugalError } from '../../src/io/errors.js';
import { expectClose } from '../helpers/compare.js';

/**
 * Published checkpoint layouts (tools/make_interop_fixtures.py, tools/check_interop.py) against
 * golden logits from the independent PyTorch reference, in both modes; and every kind of broken
 * checkpoint refused with exit code 2, a message naming the file and the tensor.
 */
const tmp = mkdtempSync(join(tmpdir(), 'frugal-layouts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(FIXTURES)('%s', (name) => {
  const gold = golden(name);
  const load = () => {
    const e = new Engine({ kernels: 'wasm' });
    return { e, ...loadModel(e, fixture(name)) };
  };

  it('gives the PyTorch reference logits in --mode parallel', () => {
    const { e, model } = load();
    expectClose(
      e.scope(() => model.forward(gold.ids, gold.B, gold.L).toFloat64()),
      gold.logits,
      1e-4,
      `${name} parallel`,
    );
  });

  it('gives the PyTorch reference logits in --mode step', () => {
    const { model } = load();
    const { B, L } = gold,
      V = model.config.vocabSize;
    const state = model.createState(B);
    const out = new Float64Array(B * L * V);
    for (let t = 0; t < L; t++) {
      const logits = model.step(
        Int32Array.from({ length: B }, (_, b) => gold.ids[b * L + t]),
        state,
      );
      for (let b = 0; b < B; b++) out.set(logits.subarray(b * V, (b + 1) * V), (b * L + t) * V);
    }
    expectClose(out, gold.logits, 1e-4, `${name} step`);
  });
});

describe('what a layout says is honoured', () => {
  it('pads the original layout vocabulary to pad_vocab_size_multiple and reads its ssm_cfg', () => {
    const e = new Engine({ kernels: 'ref' });
    const a = loadModel(e, fixture('orig-bin-tied'));
    expect(a.layout).toBe('original');
    expect(a.model.config.vocabSize).toBe(40); // 37 padded to a multiple of 8
    const b = loadModel(e, fixture('orig-bin-f16-untied'));
    expect(b.model.config.vocabSize).toBe(32); // 30 padded to 16
    expect(b.model.specs.some((s) => s.name === 'lm_head.weight')).toBe(true);
    expect(b.model.hfConfig()).toMatchObject({
      state_size: 5,
      conv_kernel: 3,
      time_step_rank: 2,
      use_bias: true,
      tie_word_embeddings: false,
    });
  });

  it('resolves time_step_rank "auto" and warns about unknown config keys without failing', () => {
    const e = new Engine({ kernels: 'ref' });
    expect(loadModel(e, fixture('hf-f16-sharded')).model.hfConfig().time_step_rank).toBe(1);
    const { warnings } = loadModel(e, fixture('hf-bf16-untied'));
    expect(warnings).toEqual([expect.stringMatching(/hf-bf16-untied\/config\.json: unknown config key 'some_future_key' ignored/)]);
    // published-style leftovers (fused_add_norm, rms_norm, pad_vocab_size_multiple) are not warned about
    expect(loadModel(e, fixture('hf-f16-sharded')).warnings).toEqual([]);
  });

  it('takes transformers defaults for absent keys (use_bias defaults to true)', () => {
    const d = join(tmp, 'defaults');
    cpSync(fixture('hf-bf16-untied'), d, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete cfg.use_bias;
    delete cfg.some_future_key;
    writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
    const { model } = loadModel(new Engine({ kernels: 'ref' }), d);
    expect(model.specs.some((s) => s.name.endsWith('in_proj.bias'))).toBe(true);
  });
});

describe('broken checkpoints', () => {
  const base = readSafetensors(join(fixture('hf-bf16-untied'), 'model.safetensors'));
  const all = (f: SafetensorsFile): SafeTensorIn[] =>
    [...f.tensors].map(([n, t]) => ({
      name: n,
      dtype: t.dtype as 'BF16',
      shape: t.shape,
      data: new Uint16Array(tensorBytes(f, n).slice().buffer),
    }));
  let k = 0;
  /** A copy of hf-bf16-untied with model.safetensors (and optionally config.json) replaced. */
  function variant(weights: Uint8Array | null, config?: string): string {
    const d = join(tmp, `v${k++}`);
    cpSync(fixture('hf-bf16-untied'), d, { recursive: true });
    if (weights) writeFileSync(join(d, 'model.safetensors'), weights);
    if (config !== undefined) writeFileSync(join(d, 'config.json'), config);
    return d;
  }
  const fails = (d: string, pattern: RegExp) => {
    let err: unknown;
    try {
      loadModel(new Engine({ kernels: 'ref' }), d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrugalError);
    expect((err as FrugalError).exitCode).toBe(2);
    expect((err as FrugalError).message).toMatch(pattern);
  };
  const bytes = readFileSync(join(fixture('hf-bf16-untied'), 'model.safetensors'));

  it('a truncated file', () =>
    fails(
      variant(bytes.subarray(0, bytes.length - 10)),
      /model\.safetensors is not a valid safetensors file: tensor ".*" has data_offsets .* outside the \d+-byte data section/,
    ));
  it('a header length beyond the file', () => {
    const b = new Uint8Array(bytes);
    new DataView(b.buffer).setBigUint64(0, BigInt(b.length), true);
    fails(variant(b), /header length \d+ runs past the end/);
  });
  it('a missing tensor', () =>
    fails(
      variant(encodeSafetensors(all(base).filter((t) => t.name !== 'backbone.layers.1.mixer.D'))),
      /model\.safetensors: tensor 'backbone\.layers\.1\.mixer\.D' is missing/,
    ));
  it('an extra tensor', () =>
    fails(
      variant(encodeSafetensors([...all(base), { name: 'backbone.extra', dtype: 'F32', shape: [1], data: new Float32Array(1) }])),
      /unexpected tensor 'backbone\.extra'/,
    ));
  it('a dtype that is not a float', () =>
    fails(
      variant(
        encodeSafetensors(
          all(base).map((t) =>
            t.name === 'backbone.norm_f.weight' ? { name: t.name, dtype: 'I32' as const, shape: [12], data: new Int32Array(12) } : t,
          ),
        ),
      ),
      /tensor 'backbone\.norm_f\.weight' has dtype I32; weights must be F32, F16, BF16 or F64/,
    ));
  it('a shape that disagrees with config.json', () =>
    fails(
      variant(null, JSON.stringify({ ...JSON.parse(readFileSync(join(fixture('hf-bf16-untied'), 'config.json'), 'utf8')), state_size: 7 })),
      /model\.safetensors: tensor 'backbone\.layers\.0\.mixer\.x_proj\.weight' has shape \[14,24\] but config\.json implies \[16,24\]/,
    ));
  it('a NaN or an infinity', () => {
    for (const bad of [0x7fc0, 0x7f80]) {
      fails(
        variant(
          encodeSafetensors(
            all(base).map((t) => {
              if (t.name !== 'backbone.layers.0.mixer.A_log') return t;
              const d = (t.data as Uint16Array).slice();
              d[5] = bad;
              return { ...t, data: d };
            }),
          ),
        ),
        /model\.safetensors: tensor 'backbone\.layers\.0\.mixer\.A_log' holds (NaN|Infinity) at index 5/,
      );
    }
  });
  it('config.json that is not JSON, or names an unknown model_type', () => {
    fails(variant(null, '{ "model_type": '), /config\.json is not valid JSON/);
    fails(
      variant(null, JSON.stringify({ model_type: 'gpt9', hidden_size: 4 })),
      /config\.json: model_type 'gpt9' is not supported \(supported: mamba, .*llama\)/,
    );
    fails(
      variant(null, JSON.stringify({ model_type: 'mamba', hidden_size: 'big', num_hidden_layers: 2, vocab_size: 29 })),
      /'hidden_size' must be a positive integer, got "big"/,
    );
  });
  it('a model too large for WebAssembly memory, before reading any weight', () => {
    const big = {
      model_type: 'mamba',
      hidden_size: 2560,
      num_hidden_layers: 64,
      vocab_size: 50280,
      use_bias: false,
      time_step_rank: 'auto',
    };
    fails(
      variant(encodeSafetensors([]), JSON.stringify(big)),
      /2,7\d\d,\d{3},\d{3} parameters, 10\.\d\d GiB as f32, over the 4 GiB limit of WebAssembly memory.*frugal quantize/,
    );
  });
  it('the values of BF16 weights are their exact widening', () => {
    const { model } = loadModel(new Engine({ kernels: 'ref' }), fixture('hf-bf16-untied'));
    expect(Array.from(model.params.get('backbone.norm_f.weight')!.data())).toEqual(
      Array.from(readTensorF32(base, 'backbone.norm_f.weight')),
    );
  });
});
