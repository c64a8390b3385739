import { Engine } from '../ops/index.js';
import { loadModel, modelFiles } from '../models/checkpoint.js';
import { loadAdapter, mergeAdapter } from '../models/lora.js';
import { writeDirAtomic } from '../io/atomic.js';
import { openOutputDir } from '../io/outputs.js';
import type { KernelKind } from '../kernels/backend.js';
import { engineOptions, forceOption, modelOption } from './options.js';
import type { AnyCommand } from './options.js';

const err = (s: string) => process.stderr.write(s + '\n');

export interface MergeOpts {
  model: string;
  adapter: string;
  out: string;
  force?: boolean;
  kernels: KernelKind;
  threads: number;
}

export function registerMerge(program: AnyCommand): void {
  const cmd = modelOption(
    engineOptions(program.command('merge').description('fold a LoRA adapter into its base model and write a plain checkpoint')),
    'the base model folder the adapter was trained on (f32)',
  )
    .requiredOption('--adapter <dir>', "the LoRA adapter folder (PEFT layout, from 'frugal finetune')")
    .requiredOption('--out <dir>', 'output model folder');
  forceOption(cmd, 'replace a checkpoint frugal wrote before in --out').action((o) => mergeCommand(o));
}

/**
 * `frugal merge`: fold a LoRA adapter into its base, W + (lora_alpha / r) · B A, and write a plain
 * checkpoint (config.json, model.safetensors, the base's tokenizer files) that runs without it.
 */
export function mergeCommand(o: MergeOpts): void {
  const t0 = performance.now();
  const out = openOutputDir(o.out, { flag: '--out', inputs: [o.model, o.adapter], force: o.force }, (m) => err(`warning: ${m}`));
  const e = new Engine({ kernels: o.kernels, threads: o.threads });
  try {
    const { model, warnings } = loadModel(e, o.model);
    for (const w of warnings) err(`warning: ${w}`);
    const adapter = loadAdapter(model, o.adapter);
    mergeAdapter(model, adapter);
    writeDirAtomic(out.path, modelFiles(model));
    err(
      `merge: ${o.adapter} (${adapter.modules.size} modules, r ${adapter.options.r}) into ${o.model} -> ${o.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  } finally {
    e.dispose();
    out.release();
  }
}
