import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { parseJsonLenient, stringifyJson } from '../../src/io/json.js';
import { FrugalError } from '../../src/io/errors.js';
import { randomIds } from '../helpers/models.js';

/** Mamba-2 checkpoints: both layouts' configs read and refused as documented, and saving round-trips. */
const A = 'test/fixtures/mamba2-tiny-a',
  B = 'test/fixtures/mamba2-tiny-b';
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function withConfig(src: string, edit: (j: Record<string, unknown>) => void): string {
  const root = mkdtempSync(join(tmpdir(), 'frugal-m2-')),
    dir = join(root, 'ckpt');
  made.push(root);
  cpSync(src, dir, { recursive: true });
  const j = parseJsonLenient(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  edit(j);
  writeFileSync(join(dir, 'config.json'), stringifyJson(j));
  return dir;
}

function refused(dir: string): string {
  try {
    loadModel(new Engine({ kernels: 'ref' }), dir);
  } catch (e) {
    expect(e).toBeInstanceOf(FrugalError);
    expect((e as FrugalError).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error(`${dir} loaded`);
}

describe('JSON as Python writes it', () => {
  it('reads bare Infinity, -Infinity and NaN outside strings, and leaves strings alone', () => {
    const v = parseJsonLenient('{"a": [0.0, Infinity], "b": -Infinity, "s": "Infinity \\" NaN", "n": NaN}') as Record<string, unknown>;
    expect(v.a).toEqual([0, Infinity]);
    expect(v.b).toBe(-Infinity);
    expect(v.s).toBe('Infinity " NaN');
    expect(Number.isNaN(v.n)).toBe(true);
  });

  it('writes non-finite numbers bare and reads them back', () => {
    const text = stringifyJson({ limit: [0, Infinity, -Infinity], s: 'Infinity' });
    expect(text).toContain('Infinity,');
    expect(text).toContain('-Infinity');
    expect(parseJsonLenient(text)).toEqual({ limit: [0, Infinity, -Infinity], s: 'Infinity' });
  });
});

describe('Mamba-2 configs', () => {
  it('reads the transformers layout (bare Infinity in time_step_limit, untied head by default) and the state-spaces layout', () => {
    const e = new Engine({ kernels: 'ref' });
    const a = loadModel(e, A);
    expect(a.layout).toBe('hf');
    expect(a.model.hfConfig()).toMatchObject({
      model_type: 'mamba2',
      num_heads: 4,
      head_dim: 8,
      n_groups: 2,
      time_step_limit: [0, Infinity],
      tie_word_embeddings: false,
    });
    const b = loadModel(e, B);
    expect(b.layout).toBe('original');
    expect(b.model.config.vocabSize).toBe(40); // 37 padded to a multiple of 8
    expect(b.model.hfConfig()).toMatchObject({
      num_heads: 4,
      head_dim: 6,
      n_groups: 1,
      chunk_size: 5,
      time_step_limit: [0.02, 0.6],
      use_bias: true,
      tie_word_embeddings: true,
    });
  });

  it('refuses what it does not run, naming the key', () => {
    expect(
      refused(
        withConfig(A, (j) => {
          j.num_heads = 3;
        }),
      ),
    ).toMatch(/num_heads 3 × head_dim 8 must equal expand 2 × hidden_size 16/);
    expect(
      refused(
        withConfig(A, (j) => {
          j.n_groups = 3;
        }),
      ),
    ).toMatch(/4 heads do not split into 3 groups/);
    expect(
      refused(
        withConfig(A, (j) => {
          j.time_step_limit = [1, 0.5];
        }),
      ),
    ).toMatch(/time_step_limit must be a pair/);
    expect(
      refused(
        withConfig(B, (j) => {
          (j.ssm_cfg as Record<string, unknown>).D_has_hdim = true;
        }),
      ),
    ).toMatch(/D_has_hdim true .* not supported/);
    expect(
      refused(
        withConfig(B, (j) => {
          (j.ssm_cfg as Record<string, unknown>).d_ssm = 8;
        }),
      ),
    ).toMatch(/d_ssm 8/);
    expect(
      refused(
        withConfig(B, (j) => {
          j.attn_layer_idx = [1];
        }),
      ),
    ).toMatch(/attn_layer_idx/);
  });

  it("saves transformers' layout (Infinity written bare) and loads it back to the same logits, bit for bit", () => {
    const e = new Engine({ kernels: 'wasm' });
    const { model } = loadModel(e, B);
    const root = mkdtempSync(join(tmpdir(), 'frugal-m2-')),
      dir = join(root, 'saved');
    made.push(root);
    {
      writeDirAtomic(dir, modelFiles(model));
      expect(readFileSync(join(dir, 'config.json'), 'utf8')).toMatch(/"model_type": "mamba2"/);
      const back = loadModel(new Engine({ kernels: 'wasm' }), dir).model;
      const ids = randomIds(5, 17, 37);
      const a = e.scope(() => Float32Array.from(model.forward(ids, 1, 17).data()));
      const b = back.e.scope(() => Float32Array.from(back.forward(ids, 1, 17).data()));
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      const unbounded = withConfig(A, () => {});
      writeDirAtomic(join(unbounded, '..', 'again'), modelFiles(loadModel(e, unbounded).model));
      expect(readFileSync(join(unbounded, '..', 'again', 'config.json'), 'utf8')).toMatch(/"time_step_limit": \[\s*0,\s*Infinity\s*\]/);
    }
  });
});
