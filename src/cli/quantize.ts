import { Engine } from '../ops/index.js';
import { architectureOf, modelFiles, readConfigJson } from '../models/checkpoint.js';
import { weightBytes } from '../models/quant.js';
import { quantizeCheckpoint } from '../models/quantize-checkpoint.js';
import { readableDir, recoverDir, writeDirAtomic } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { openOutputDir } from '../io/outputs.js';
import type { QFormat } from '../tensor/index.js';
import { runInWorker } from './interrupt.js';

export interface QuantizeOpts { model: string; to: QFormat; out: string; kernels: 'wasm' | 'ref'; threads: number; force?: boolean }

/** The work itself, given the checked output folder (run in a worker thread by the command). */
export interface QuantizeJob { model: string; to: QFormat; outDir: string; kernels: 'wasm' | 'ref'; threads: number }

/** Quantise `j.model` into `j.outDir`; returns the weights' bytes before (as f32) and after. */
export function quantizeToDir(j: QuantizeJob, log: (m: string) => void): { before: number; after: number } {
  const e = new Engine({ kernels: j.kernels, threads: j.threads });
  try {
    const arch = architectureOf(readConfigJson(readableDir(j.model).dir));
    if (arch === 'llama') throw inputError(`${j.model}: quantisation supports the state-space models (model_type mamba, mamba2, mamba3, bamba), not '${arch}'`);
    // tensor by tensor: the f32 model never needs to fit in memory at once
    const { model, warnings } = quantizeCheckpoint(e, j.model, j.to);
    for (const w of warnings) log(`warning: ${w}`);
    const after = weightBytes(model);
    const before = model.parameterCount * 4;
    writeDirAtomic(j.outDir, modelFiles(model));
    return { before, after };
  } finally {
    e.dispose();
  }
}

/**
 * `frugal quantize`: load an f32 (or f16/bf16) checkpoint, block-quantise its big projections and
 * embedding (see models/quant.ts for what stays f32), and write a checkpoint directory with HF
 * names and a `quantization_config` block that generate, logits and bench run. The output is
 * checked and locked first; Ctrl-C leaves no partial folder.
 */
export async function quantizeCommand(o: QuantizeOpts): Promise<void> {
  const t0 = performance.now();
  const log = (m: string) => process.stderr.write(m + '\n');
  const out = openOutputDir(o.out, { flag: '--out', inputs: [o.model], force: o.force }, (m) => log(`warning: ${m}`));
  try {
    const job: QuantizeJob = { model: o.model, to: o.to, outDir: out.path, kernels: o.kernels, threads: o.threads };
    const { before, after } = await runInWorker<{ before: number; after: number }>({ task: 'quantize', options: job }, () => recoverDir(out.path));
    log(`quantize: ${o.model} -> ${o.out} (${o.to}): weights ${(before / 1e6).toFixed(1)} MB (as f32) -> ${(after / 1e6).toFixed(1)} MB ` +
      `(${(before / after).toFixed(2)}x smaller) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    out.release();
  }
}
