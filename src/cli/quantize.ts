import { Engine } from '../ops/index.js';
import { modelFiles, readConfigJson } from '../models/checkpoint.js';
import { weightBytes } from '../models/quant.js';
import { quantizeCheckpoint } from '../models/quantize-checkpoint.js';
import { writeDirAtomic } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import type { QFormat } from '../tensor/index.js';

export interface QuantizeOpts { model: string; to: QFormat; out: string; kernels: 'wasm' | 'ref'; threads: number }

/**
 * `frugal quantize`: load an f32 (or f16/bf16) checkpoint, block-quantise its big projections and
 * embedding (see models/quant.ts for what stays f32), and write a checkpoint directory with HF
 * names and a `quantization_config` block that generate, logits and bench run.
 */
export function quantizeCommand(o: QuantizeOpts): void {
  const t0 = performance.now();
  const e = new Engine({ kernels: o.kernels, threads: o.threads });
  try {
    const json = readConfigJson(o.model) as Record<string, unknown> | null;
    if (json?.model_type !== undefined && json.model_type !== 'mamba') throw inputError(`${o.model}: quantisation supports Mamba checkpoints (model_type 'mamba')`);
    // tensor by tensor: the f32 model never needs to fit in memory at once
    const { model, warnings } = quantizeCheckpoint(e, o.model, o.to);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    const after = weightBytes(model);
    const before = model.parameterCount * 4;
    writeDirAtomic(o.out, modelFiles(model));
    process.stderr.write(`quantize: ${o.model} -> ${o.out} (${o.to}): weights ${(before / 1e6).toFixed(1)} MB (as f32) -> ${(after / 1e6).toFixed(1)} MB ` +
      `(${(before / after).toFixed(2)}x smaller) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  } finally {
    e.dispose();
  }
}
