import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { FrugalError } from '../../src/io/errors.js';
import { createModel } from '../../src/models/factory.js';
import { loadModel, modelFiles } from '../../src/models/checkpoint.js';
import { loadState, modelSha256, saveState } from '../../src/models/state.js';
import { BYTE_TOKENIZER, STATE_FORMAT, tokenizerSha256 } from '../../src/io/statefile.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import type { TrainableModel } from '../../src/models/types.js';
import type { ModelState } from '../../src/models/types.js';

/**
 * State files: save -> load -> continue stepping gives, bit for bit, the logits of never having
 * saved (on another engine, from the checkpoint on disk, as a moved stream would); a state from
 * another model, tokenizer or architecture is refused with a clear message.
 */
const tmp = mkdtempSync(join(tmpdir(), 'frugal-state-'));
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
  rmSync(tmp, { recursive: true, force: true });
});
const engine = (kernels: 'wasm' | 'ref', threads = 1) => {
  const e = new Engine({ kernels, threads });
  engines.push(e);
  return e;
};

/** 'mamba3-mimo': Mamba-3 with MIMO heads of rank 2 (its kprev and vprev carry the ranks). */
const make = (arch: string, kernels: 'wasm' | 'ref', seed = 5) =>
  createModel(
    arch === 'mamba3-mimo' ? 'mamba3' : arch,
    engine(kernels),
    {
      dModel: 32,
      layers: 2,
      dState: 8,
      heads: 2,
      vocabSize: 40,
      layerTypes: ['mamba2', 'attention'],
      ...(arch === 'mamba3-mimo' ? { mimoRank: 2 } : {}),
    },
    Rng.fromSeed(seed),
  );
const bytes = (f: Float32Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength);

/** Prefill, then steps: the state a stream has after some work. */
function warm(m: TrainableModel, B: number): ModelState {
  const s = m.createState(B);
  m.prefill(
    Int32Array.from({ length: B * 5 }, (_, i) => (i * 7 + 3) % 40),
    5,
    s,
  );
  for (let t = 0; t < 3; t++)
    m.step(
      Int32Array.from({ length: B }, (_, b) => (t * 5 + b + 1) % 40),
      s,
    );
  return s;
}
/** Four more steps: their logits, concatenated. */
function more(m: TrainableModel, s: ModelState): Buffer {
  const out: Buffer[] = [];
  for (let t = 0; t < 4; t++)
    out.push(
      bytes(
        m.step(
          Int32Array.from({ length: s.batch }, (_, b) => (t * 11 + 2 * b) % 40),
          s,
        ),
      ),
    );
  return Buffer.concat(out);
}

/** Save a warmed-up state, load it beside the checkpoint on another engine, continue: the same logits bit for bit. */
function roundTrip(arch: string, kernels: 'wasm' | 'ref', B: number): void {
  const m = make(arch, kernels);
  const dir = join(tmp, `${arch}-${kernels}`),
    file = join(tmp, `${arch}-${kernels}.state.safetensors`);
  writeDirAtomic(dir, modelFiles(m));
  const s = warm(m, B);
  saveState(file, m, s, tokenizerSha256(dir));
  const uninterrupted = more(m, s);

  const moved = loadModel(engine(kernels), dir).model;
  const restored = loadState(file, moved, tokenizerSha256(dir));
  expect(restored.position).toBe(8);
  expect(restored.batch).toBe(B);
  expect(more(moved, restored).equals(uninterrupted)).toBe(true);
}

describe.each([
  ['mamba2', 'wasm', 2],
  ['mamba3', 'ref', 1],
  ['mamba3-mimo', 'wasm', 2],
  ['hybrid', 'wasm', 2],
] as const)('%s state file (%s kernels, batch %i)', (arch, kernels, B) => {
  it('save -> load on another engine -> continue gives the logits of never having saved, bit for bit', () => roundTrip(arch, kernels, B));
});

describe.each([
  ['mamba', 'wasm', 2],
  ['mamba', 'ref', 1],
  ['transformer', 'wasm', 1],
  ['transformer', 'ref', 2],
] as const)('%s state file (%s kernels, batch %i)', (arch, kernels, B) => {
  it('save -> load on another engine -> continue gives the logits of never having saved, bit for bit', () => {
    roundTrip(arch, kernels, B);
  });

  it('writes the documented header, names the weights file by its SHA-256, and refuses another model', () => {
    const m = make(arch, kernels);
    const dir = join(tmp, `${arch}-${kernels}-h`),
      file = join(tmp, `${arch}-${kernels}-h.state.safetensors`);
    writeDirAtomic(dir, modelFiles(m));
    saveState(file, m, warm(m, B), BYTE_TOKENIZER);
    const f = readSafetensors(file);
    const weights = createHash('sha256')
      .update(readFileSync(join(dir, 'model.safetensors')))
      .digest('hex');
    expect(f.metadata).toEqual({
      format: STATE_FORMAT,
      architecture: arch === 'mamba' ? 'mamba' : 'llama',
      model_sha256: weights,
      tokenizer_sha256: 'byte',
      tokens: '8',
      batch: String(B),
      dtype: 'F32',
    });
    expect(modelSha256(m)).toBe(weights);

    const other = make(arch, kernels, 6);
    expect(() => loadState(file, other, BYTE_TOKENIZER)).toThrow(FrugalError);
    expect(() => loadState(file, other, BYTE_TOKENIZER)).toThrow(
      /was saved from another model \(weights SHA-256 [0-9a-f]{12}…, this model's [0-9a-f]{12}…\)/,
    );
    expect(() => loadState(file, m, 'f'.repeat(64))).toThrow(
      /consumed ids of another tokenizer \("byte", this model's SHA-256 ffffffffffff…\)/,
    );
    const otherArch = make(arch === 'mamba' ? 'transformer' : 'mamba', kernels);
    expect(() => loadState(file, otherArch, BYTE_TOKENIZER)).toThrow(
      /holds the state of a (mamba|llama) model; this model is (llama|mamba)/,
    );
  });
});

describe('state file checks', () => {
  it('model_sha256 of a checkpoint `frugal train` saved is the SHA-256 of its model.safetensors', () => {
    const dir = 'test/fixtures/interop/frugal-trained';
    const m = loadModel(engine('ref'), dir).model;
    expect(modelSha256(m)).toBe(
      createHash('sha256')
        .update(readFileSync(join(dir, 'model.safetensors')))
        .digest('hex'),
    );
  });

  it('refuses a file that is not a state file, naming it', () => {
    const m = make('mamba', 'ref');
    const dir = join(tmp, 'plain');
    writeDirAtomic(dir, modelFiles(m));
    expect(() => loadState(join(dir, 'model.safetensors'), m, BYTE_TOKENIZER)).toThrow(
      /model\.safetensors is not a usable frugal state file: its __metadata__ format is "pt"/,
    );
  });
});
