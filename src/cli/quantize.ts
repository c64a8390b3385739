import type { KernelKind } from '../kernels/backend.js';
import { recoverDir } from '../io/atomic.js';
import { openOutputDir } from '../io/outputs.js';
import type { QuantizeJob } from '../models/quantize-checkpoint.js';
import type { QFormat } from '../tensor/index.js';
import { Option } from '@commander-js/extra-typings';
import { runInWorker } from './interrupt.js';
import { engineOptions, forceOption, modelOption } from './options.js';
import type { AnyCommand } from './options.js';

export function registerQuantize(program: AnyCommand): void {
  const cmd = modelOption(
    engineOptions(
      program
        .command('quantize')
        .description(
          'write a q8 or q4 block-quantised copy of a Mamba, Mamba-2, Mamba-3 or hybrid checkpoint (for generate, logits, bench)',
        ),
    ),
    'f32 (or f16/bf16) model directory',
  )
    .addOption(
      new Option('--to <format>', 'q8 (8-bit, blocks of 32) or q4 (4-bit, blocks of 32)')
        .choices(['q8', 'q4'] as const)
        .makeOptionMandatory(),
    )
    .requiredOption('--out <dir>', 'output directory');
  forceOption(cmd, 'replace an existing checkpoint in --out').action((o) => quantizeCommand(o));
}

export interface QuantizeOpts {
  model: string;
  to: QFormat;
  out: string;
  kernels: KernelKind;
  threads: number;
  force?: boolean;
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
    const { before, after } = await runInWorker<{ before: number; after: number }>({ task: 'quantize', options: job }, () =>
      recoverDir(out.path),
    );
    log(
      `quantize: ${o.model} -> ${o.out} (${o.to}): weights ${(before / 1e6).toFixed(1)} MB (as f32) -> ${(after / 1e6).toFixed(1)} MB ` +
        `(${(before / after).toFixed(2)}x smaller) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  } finally {
    out.release();
  }
}
