import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import type { HFTokenizer } from '../../src/io/tokenizer.js';
import { generate } from '../../src/infer/generate.js';
import { Rng } from '../../src/io/rng.js';
import { frugal, workspace } from '../helpers/cli.js';
// the recipe itself (tools/bundled-models.mjs): its flags, so the check cannot drift from it
import { MODELS, STEP20_FLAGS, TOKENIZER_FLAGS } from '../../tools/bundled-models.mjs';

const ws = workspace('frugal-bundled-');
const MODEL_DIRS = ['mamba-sotu', 'mamba-sotu-q8', 'transformer-sotu'];

function sizeOf(dir: string): number {
  return readdirSync(dir).reduce((n, f) => {
    const p = join(dir, f);
    const st = statSync(p);
    return n + (st.isDirectory() ? sizeOf(p) : st.size);
  }, 0);
}

describe('the bundled models', () => {
  it('are about 2M parameters each, under 25 MB together, load and generate text', () => {
    expect(sizeOf('models')).toBeLessThan(25e6);
    for (const name of MODEL_DIRS) {
      const e = new Engine({ kernels: 'wasm', threads: 1 });
      try {
        const { model, dir } = loadModel(e, join('models', name));
        expect(model.parameterCount, name).toBeGreaterThan(1.5e6);
        expect(model.parameterCount, name).toBeLessThan(2.5e6);
        const tok = loadTokenizer(dir) as HFTokenizer;
        expect(tok.vocabSize).toBe(model.config.vocabSize);
        const r = generate(model, tok.encode('The state of the Union is'), 24, { temperature: 0, topK: 0, topP: 1 }, Rng.fromSeed(1));
        const text = tok.decode(r.ids);
        expect(text.length, name).toBeGreaterThan(40);
        expect(text, name).toMatch(/[a-z]+ [a-z]+/); // words, not noise
      } finally {
        e.dispose();
      }
    }
  });

  it("re-running the recipe gives the committed tokenizer, and each model's weights after 20 steps match the committed hash", () => {
    const hashes = JSON.parse(readFileSync('models/recipe-hashes.json', 'utf8')) as Record<string, string>;
    const tok = join(ws.root, 'tokenizer');
    expect(frugal(['tokenizer', 'train', ...TOKENIZER_FLAGS, '--out', tok]).code).toBe(0);
    expect(readFileSync(join(tok, 'tokenizer.json'), 'utf8')).toBe(readFileSync('models/tokenizer/tokenizer.json', 'utf8'));
    for (const [name, flags] of Object.entries(MODELS)) {
      const out = join(ws.root, name);
      const r = frugal(['train', ...flags, ...STEP20_FLAGS, '--tokenizer', tok, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(
        createHash('sha256')
          .update(readFileSync(join(out, 'model.safetensors')))
          .digest('hex'),
        name,
      ).toBe(hashes[name]);
    }
  });
});
