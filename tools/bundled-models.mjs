#!/usr/bin/env node
/**
 * The recipe of the bundled models in models/: a byte-level BPE tokenizer learned from the State
 * of the Union corpus (its validation tail held out), a Mamba language model and a transformer of
 * about the same size trained on it with fixed seeds, and a q8 copy of the Mamba.
 *
 *   node tools/bundled-models.mjs            # everything, into models/ (about 2 h of CPU on 2 cores)
 *   node tools/bundled-models.mjs --hashes   # only the SHA-256 of each model's weights after 20 steps
 *
 * The test suite re-runs the first 20 steps of each training (STEP20_FLAGS) and compares the
 * weights' SHA-256 with models/recipe-hashes.json, which this script writes. Steps 1..20 lie in
 * the learning-rate warm-up, so they do not depend on the total step count.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TOKENIZER_FLAGS = ['--data', 'sotu', '--vocab-size', '2048', '--val-fraction', '0.05'];
const COMMON = [
  '--data',
  'sotu',
  '--seq-len',
  '128',
  '--batch',
  '8',
  '--warmup',
  '50',
  '--weight-decay',
  '0.1',
  '--val-fraction',
  '0.05',
  '--seed',
  '1',
  '--eval-every',
  '200',
  '--eval-windows',
  '64',
  '--save-every',
  '100',
];
export const MODELS = {
  'mamba-sotu': ['--arch', 'mamba', '--d-model', '256', '--layers', '4', '--d-state', '16', '--lr', '3e-3', '--min-lr', '3e-4', ...COMMON],
  'transformer-sotu': [
    '--arch',
    'transformer',
    '--d-model',
    '256',
    '--layers',
    '2',
    '--heads',
    '4',
    '--lr',
    '2e-3',
    '--min-lr',
    '2e-4',
    ...COMMON,
  ],
};
export const STEPS = 1000;
/** The flags the hash check trains with (the recipe's, stopped at step 20; evaluation kept small). */
export const STEP20_FLAGS = ['--steps', '20', '--eval-every', '0', '--eval-windows', '1', '--save-every', '0'];

const root = new URL('..', import.meta.url).pathname;
function frugal(args) {
  process.stderr.write(`$ frugal ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [join(root, 'bin/frugal.js'), ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`frugal ${args[0]} failed (exit ${r.status})`);
}

/** Copy a checkpoint's model files (not the optimiser state, nor frugal's folder markers) into `to`. */
function exportDir(from, to) {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
  }
}

/** SHA-256 of model.safetensors after the recipe's first 20 steps, per model (tokenizer from `tokDir`). */
export function step20Hashes(tokDir, threads = '1') {
  const tmp = mkdtempSync(join(tmpdir(), 'frugal-recipe-'));
  try {
    const out = {};
    for (const [name, flags] of Object.entries(MODELS)) {
      const dir = join(tmp, name);
      frugal(['train', ...flags, ...STEP20_FLAGS, '--tokenizer', tokDir, '--threads', threads, '--out', dir]);
      out[name] = createHash('sha256')
        .update(readFileSync(join(dir, 'model.safetensors')))
        .digest('hex');
    }
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const models = join(root, 'models');
  const tok = join(models, 'tokenizer');
  const threads = process.env.THREADS ?? '2';
  if (!process.argv.includes('--hashes')) {
    frugal(['tokenizer', 'train', ...TOKENIZER_FLAGS, '--out', join(root, 'runs', 'bundled', 'tokenizer'), '--force']);
    exportDir(join(root, 'runs', 'bundled', 'tokenizer'), tok);
    // trained in runs/ (with the optimiser state, to resume), then copied as plain checkpoints
    for (const [name, flags] of Object.entries(MODELS)) {
      const run = join(root, 'runs', 'bundled', name);
      frugal(['train', ...flags, '--steps', String(STEPS), '--tokenizer', tok, '--threads', threads, '--out', run, '--resume']);
      exportDir(run, join(models, name));
    }
    const q8 = join(root, 'runs', 'bundled', 'mamba-sotu-q8');
    frugal(['quantize', '--model', join(models, 'mamba-sotu'), '--to', 'q8', '--out', q8, '--force']);
    exportDir(q8, join(models, 'mamba-sotu-q8'));
  }
  writeFileSync(join(models, 'recipe-hashes.json'), JSON.stringify(step20Hashes(tok, threads), null, 2) + '\n');
}
