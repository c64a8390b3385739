#!/usr/bin/env node
/**
 * Load time and peak memory for a mamba-130m-shaped checkpoint (random weights; state-spaces/
 * mamba-130m-hf's shapes: hidden 768, 24 layers, state 16, vocab 50280, tied head).
 *
 *     npm run build && node tools/bench-load.mjs [--dir /tmp/frugal-bench-130m] [--keep]
 *
 * Writes the checkpoint in each published form under --dir (F32, F16 and BF16 safetensors, the
 * F32 state-spaces pytorch_model.bin via `frugal convert`), then loads each in a fresh Node
 * process and reports wall time and the process's peak resident memory (getrusage maxrss), next
 * to the f32 weights it must hold. Peak RSS includes Node itself; the baseline (Node + engine,
 * before loading) is reported too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (k, d) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1] : d;
};
const DIR = arg('--dir', '/tmp/frugal-bench-130m');
const KEEP = process.argv.includes('--keep');
const CONFIG = {
  architectures: ['MambaForCausalLM'],
  model_type: 'mamba',
  hidden_size: 768,
  num_hidden_layers: 24,
  state_size: 16,
  expand: 2,
  intermediate_size: 1536,
  conv_kernel: 4,
  time_step_rank: 48,
  vocab_size: 50280,
  use_bias: false,
  use_conv_bias: true,
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
  pad_vocab_size_multiple: 8,
};

/** Write the F32 checkpoint with frugal's streaming writer (one tensor in memory at a time). */
async function writeCheckpoint(dir, dtype) {
  const { mambaConfigFromHF } = await import(join(ROOT, 'dist/models/mamba/config.js'));
  const { mambaParamSpecs } = await import(join(ROOT, 'dist/models/mamba/params.js'));
  const { safetensorsProducer } = await import(join(ROOT, 'dist/io/safetensors.js'));
  const { writeDirAtomic } = await import(join(ROOT, 'dist/io/atomic.js'));
  const { toF16Bits } = await import(join(ROOT, 'dist/io/tensors.js'));
  const specs = mambaParamSpecs(mambaConfigFromHF(CONFIG, 'bench').config);
  let s = 1;
  const tensors = specs.map((sp) => ({
    name: sp.name,
    dtype,
    shape: sp.shape,
    write: (emit) => {
      const n = sp.shape.reduce((a, b) => a * b, 1);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        s = (s * 1664525 + 1013904223) >>> 0;
        v[i] = (s / 2 ** 32 - 0.5) * 0.1;
      }
      if (dtype === 'F32') emit(new Uint8Array(v.buffer));
      else if (dtype === 'F16') emit(new Uint8Array(toF16Bits(v, sp.name).buffer));
      else emit(new Uint8Array(Uint16Array.from(new Uint32Array(v.buffer), (x) => x >>> 16).buffer)); // BF16: truncate
    },
  }));
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  writeDirAtomic(dir, {
    'config.json': JSON.stringify({ ...CONFIG, torch_dtype: torchDtype }, null, 2),
    'model.safetensors': safetensorsProducer(tensors, { format: 'pt' }).producer,
  });
  return specs.reduce((a, sp) => a + sp.shape.reduce((x, y) => x * y, 1), 0);
}

const CHILD = `
const { Engine } = await import(${JSON.stringify(join(ROOT, 'dist/ops/index.js'))});
const { loadModel } = await import(${JSON.stringify(join(ROOT, 'dist/models/checkpoint.js'))});
const e = new Engine({ kernels: 'wasm', threads: 1 });
const base = process.memoryUsage().rss;
const t0 = performance.now();
const { model } = loadModel(e, process.argv[1]);
const sec = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ sec, base, peak: process.resourceUsage().maxRSS * 1024, params: model.parameterCount }));
`;

function measure(dir) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const dirSize = (d) => readdirSync(d).reduce((a, f) => a + statSync(join(d, f)).size, 0);
const rows = [];
let params = 0;
for (const dtype of ['F32', 'F16', 'BF16']) {
  const d = join(DIR, `hf-${dtype.toLowerCase()}`);
  if (!existsSync(join(d, 'model.safetensors'))) params = await writeCheckpoint(d, dtype);
  rows.push([`safetensors ${dtype}`, d]);
}
const orig = join(DIR, 'original-f32');
if (!existsSync(join(orig, 'pytorch_model.bin'))) {
  execFileSync(
    process.execPath,
    [join(ROOT, 'bin/frugal.js'), 'convert', '--model', join(DIR, 'hf-f32'), '--out', orig, '--to', 'original'],
    { stdio: 'inherit' },
  );
}
rows.push(['pytorch_model.bin F32 (state-spaces layout)', orig]);
process.stdout.write(`mamba-130m-shaped checkpoint (hidden 768, 24 layers, vocab 50280), node ${process.version}\n`);
for (const [label, d] of rows) {
  const r = measure(d);
  params = r.params;
  const f32 = r.params * 4;
  process.stdout.write(
    `${label.padEnd(44)} files ${mib(dirSize(d)).padStart(8)}  load ${r.sec.toFixed(2)} s  ` +
      `peak RSS ${mib(r.peak)} (baseline ${mib(r.base)})  = ${(r.peak / f32).toFixed(3)} x the ${mib(f32)} of f32 weights\n`,
  );
}
process.stdout.write(`${params.toLocaleString('en-US')} parameters\n`);
if (!KEEP) rmSync(DIR, { recursive: true, force: true });
