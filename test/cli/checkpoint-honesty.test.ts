import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { encodeSafetensors, readSafetensors, readTensorF32 } from '../../src/io/safetensors.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { TransformerLM } from '../../src/models/transformer/model.js';
import { createLlamaConfig } from '../../src/models/transformer/config.js';

/**
 * Checkpoints say what they do: a stored lm_head.weight that a tied config would drop is reported
 * (both tensors named, and which is used), and an empty prompt starts from the config's BOS token,
 * or is refused with exit code 2 when the config has none.
 */
const SRC = 'test/fixtures/interop/frugal-trained'; // byte-level Mamba, tied head, bos_token_id 0
const tmp = mkdtempSync(join(tmpdir(), 'frugal-honest-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function frugal(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of SRC whose model.safetensors also stores lm_head.weight = embedding × scale; `config` edits config.json. */
function withHead(name: string, scale: number, config: (c: Record<string, unknown>) => void = () => {}): string {
  const dir = join(tmp, name);
  cpSync(SRC, dir, { recursive: true });
  const f = readSafetensors(join(SRC, 'model.safetensors'));
  const tensors = [...f.tensors.keys()].map((n) => ({
    name: n,
    dtype: 'F32' as const,
    shape: [...f.tensors.get(n)!.shape],
    data: readTensorF32(f, n),
  }));
  const embed = tensors.find((t) => t.name === 'backbone.embeddings.weight')!;
  tensors.push({ name: 'lm_head.weight', dtype: 'F32', shape: embed.shape, data: embed.data.map((v) => v * scale) });
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  config(c);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c, null, 2));
  return dir;
}

describe('a stored lm_head.weight beside a tied head', () => {
  it('is reported when it differs from the embedding, naming both tensors and the one used', () => {
    const dir = withHead('differs', 2);
    const { warnings } = loadModel(new Engine({ kernels: 'ref' }), dir);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /config\.json sets "tie_word_embeddings": true, but the checkpoint's lm_head\.weight differs from backbone\.embeddings\.weight: using backbone\.embeddings\.weight as both the embedding and the head, and lm_head\.weight is not used/,
    );
    const r = frugal('logits', '--model', dir, '--ids', '1,2,3');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: .*lm_head\.weight differs from backbone\.embeddings\.weight/);
  });

  it('says the head is tied by default when config.json has no tie_word_embeddings', () => {
    const dir = withHead('default-tied', -1, (c) => {
      delete c.tie_word_embeddings;
    });
    const { warnings } = loadModel(new Engine({ kernels: 'ref' }), dir);
    expect(warnings.join('\n')).toMatch(
      /has no tie_word_embeddings, so the head defaults to tied, but the checkpoint's lm_head\.weight differs/,
    );
  });

  it('is not reported when it holds the embedding itself (as state-spaces checkpoints store it)', () => {
    expect(loadModel(new Engine({ kernels: 'ref' }), withHead('same', 1)).warnings).toEqual([]);
  });
});

describe('generate with an empty prompt', () => {
  it("starts from the config's BOS token", () => {
    const dir = join(tmp, 'bos-65');
    cpSync(SRC, dir, { recursive: true });
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...c, bos_token_id: 65 }, null, 2));
    const args = ['generate', '--model', dir, '--max-tokens', '8', '--temperature', '0'];
    const empty = frugal(...args, '--prompt', ''),
      a = frugal(...args, '--prompt', 'A'); // byte 65 is 'A'
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stderr).toMatch(/generate: prompt 1 tokens/); // the BOS token is the prompt
    expect(empty.stdout).toBe(a.stdout);
  });

  it('is refused with exit code 2 when the model has no BOS token', () => {
    const dir = join(tmp, 'no-bos');
    const m = new TransformerLM(
      new Engine({ kernels: 'ref' }),
      createLlamaConfig({ dModel: 16, nLayer: 1, nHead: 2, vocabSize: 256 }),
    ).init(Rng.fromSeed(1));
    writeDirAtomic(dir, modelFiles(m));
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete c.bos_token_id;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c, null, 2));
    const r = frugal('generate', '--model', dir, '--max-tokens', '4');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/the prompt is empty and .*no-bos\/config\.json names no bos_token_id to start from: give a prompt/);
  });
});
