#!/usr/bin/env node
/**
 * Decoding speed and state size of the state-space models at the shapes of the published 130M
 * checkpoints, random weights: state-spaces/mamba-130m (hidden 768, 24 layers, state 16) and
 * state-spaces/mamba2-130m (hidden 768, 24 layers, state 128, heads of 64, one group), vocabulary
 * 50280 (50288 for Mamba-2, padded to 16), tied head; Mamba-3 (SISO) at the Mamba-2 shape.
 *
 *     npm run build && node tools/bench-ssm.mjs [--threads 1] [--tokens 64] [--gguf /tmp/mamba2-130m.gguf]
 *
 * For each model and precision (f32, q8, q4): a 64-token prefill, then --tokens decode steps
 * after 8 untimed ones; the median of three runs. `--gguf FILE` also saves the Mamba-2 model and
 * converts it with `frugal convert --to gguf` for llama.cpp's mamba2 (llama-bench -m FILE).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (k, d) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1] : d;
};
const threads = Number(arg('--threads', '1')),
  tokens = Number(arg('--tokens', '64')),
  gguf = arg('--gguf', null);
const { Engine } = await import(join(ROOT, 'dist/ops/index.js'));
const { Rng } = await import(join(ROOT, 'dist/io/rng.js'));
const { MambaLM } = await import(join(ROOT, 'dist/models/mamba/model.js'));
const { createMambaConfig } = await import(join(ROOT, 'dist/models/mamba/config.js'));
const { Mamba2LM } = await import(join(ROOT, 'dist/models/mamba2/model.js'));
const { createMamba2Config } = await import(join(ROOT, 'dist/models/mamba2/config.js'));
const { Mamba3LM } = await import(join(ROOT, 'dist/models/mamba3/model.js'));
const { createMamba3Config } = await import(join(ROOT, 'dist/models/mamba3/config.js'));
const { quantizeModel, weightBytes } = await import(join(ROOT, 'dist/models/quant.js'));
const { modelFiles } = await import(join(ROOT, 'dist/models/checkpoint.js'));
const { writeDirAtomic } = await import(join(ROOT, 'dist/io/atomic.js'));

const MODELS = {
  'mamba-130m': (e) => new MambaLM(e, createMambaConfig({ dModel: 768, nLayer: 24, dState: 16, dtRank: 48, vocabSize: 50280 })),
  'mamba2-130m': (e) =>
    new Mamba2LM(e, createMamba2Config({ dModel: 768, nLayer: 24, dState: 128, headDim: 64, nGroups: 1, vocabSize: 50288 })),
  'mamba3 (mamba2-130m shape)': (e) =>
    new Mamba3LM(e, createMamba3Config({ dModel: 768, nLayer: 24, dState: 128, headDim: 64, vocabSize: 50288 })),
};

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const [name, make] of Object.entries(MODELS)) {
  for (const precision of ['f32', 'q8', 'q4']) {
    const e = new Engine({ kernels: 'wasm', threads });
    const m = make(e).init(Rng.fromSeed(1));
    if (gguf && precision === 'f32' && name === 'mamba2-130m') {
      const dir = join(mkdtempSync(join(tmpdir(), 'frugal-m2-')), 'mamba2-130m');
      writeDirAtomic(dir, modelFiles(m));
      execFileSync('node', [join(ROOT, 'bin/frugal.js'), 'convert', '--model', dir, '--to', 'gguf', '--out', gguf, '--force'], {
        stdio: 'inherit',
      });
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
    if (precision !== 'f32') quantizeModel(m, precision);
    const runs = [];
    let stateBytes = 0;
    for (let r = 0; r < 3; r++) {
      const st = m.createState(1);
      m.prefill(
        Int32Array.from({ length: 64 }, (_, i) => (i * 7919) % 50000),
        64,
        st,
      );
      for (let i = 0; i < 8; i++) m.step(Int32Array.of(i), st);
      const t0 = performance.now();
      for (let i = 0; i < tokens; i++) m.step(Int32Array.of((i * 31) % 50000), st);
      runs.push((tokens * 1000) / (performance.now() - t0));
      stateBytes = [...st.tensors.values()].reduce((n, t) => n + t.byteLength, 0);
      for (const t of st.tensors.values()) t.dispose();
    }
    console.log(
      `${name} ${precision}: ${(m.parameterCount / 1e6).toFixed(1)}M parameters, weights ${(weightBytes(m) / 2 ** 20).toFixed(0)} MiB, ` +
        `state ${(stateBytes / 2 ** 20).toFixed(2)} MiB per stream, decode ${median(runs).toFixed(1)} tok/s (threads ${threads})`,
    );
    e.dispose();
  }
}
