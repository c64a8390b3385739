import type { KernelKind } from '../kernels/backend.js';
import { join } from 'node:path';
import { Engine } from '../ops/index.js';
import type { Tensor } from '../tensor/index.js';
import { inputError } from '../io/errors.js';
import { readableDir, writeDirAtomic } from '../io/atomic.js';
import { openWeights } from '../io/weights.js';
import { firstNonFinite, readFloatsInto } from '../io/tensors.js';
import { architectureOf, archConfig, modelFiles, modelFromConfig, planTensors, readConfigJson, rememberSource } from './checkpoint.js';
import { quantMapFromConfig, quantPlan, weightBytes } from './quant.js';
import type { QuantisableModel } from './quant.js';
import type { QFormat } from '../tensor/index.js';

/**
 * Quantise a state-space checkpoint (Mamba, Mamba-2 and their hybrids) while reading it, one
 * tensor at a time: the model is built with quantised storage for the weights the plan names,
 * and each of those is read in f32 into a
 * temporary buffer, quantised into place and released. Memory peaks at the quantised model plus
 * one f32 tensor, so checkpoints whose f32 weights exceed WebAssembly's 4 GiB still quantise.
 */
export function quantizeCheckpoint(e: Engine, path: string, format: QFormat): { model: QuantisableModel; warnings: string[] } {
  const { dir, warnings: found } = readableDir(path); // reading only
  const file = join(dir, 'config.json');
  const json = readConfigJson(dir);
  if (quantMapFromConfig(json, file).size > 0)
    throw inputError(`${dir} is already quantised; quantise the f32 (or f16/bf16) checkpoint instead`);
  const arch = archConfig(json, file);
  const specs = arch.specs();
  const plan = quantPlan(specs, format);
  if (plan.size === 0) throw inputError(`${file}: this architecture has no weights frugal quantises`);
  const weights = openWeights(dir);
  try {
    const { model: built, warnings: configWarnings, layout } = modelFromConfig(e, json, file, plan);
    const model = built as QuantisableModel;
    const warnings = [...found, ...configWarnings];
    const sources = planTensors(specs, model.hfConfig().tie_word_embeddings === true, weights.entries, weights.file, layout);
    for (const s of specs) {
      const src = sources.get(s.name);
      if (src?.kind !== 'float') throw inputError(`${weights.file}: tensor '${s.name}' is not stored as floats`);
      const q = model.qweights.get(s.name);
      const into = q ? e.persistent(s.shape) : (model.params.get(s.name) as Tensor);
      try {
        const values = into.floats();
        readFloatsInto(src.entry, values);
        const bad = firstNonFinite(values);
        if (bad >= 0) throw inputError(`${src.entry.src.file}: tensor '${src.entry.name}' holds ${values[bad]} at index ${bad}`);
        if (q) {
          const [N, K] = q.shape;
          if (q.format === 'q8') e.k.quantizeQ8(q.q, q.scales, into, N, K);
          else e.k.quantizeQ4(q.q, q.scales, into, N, K);
        }
      } finally {
        if (q) into.dispose();
      }
    }
    model.weightsChanged();
    rememberSource(model, dir);
    return { model, warnings };
  } finally {
    weights.close();
  }
}

/** The work itself, given the checked output folder (the command runs it in a worker thread). */
export interface QuantizeJob {
  model: string;
  to: QFormat;
  outDir: string;
  kernels: KernelKind;
  threads: number;
}

/** Quantise `j.model` into `j.outDir`; returns the weights' bytes before (as f32) and after. */
export function quantizeToDir(j: QuantizeJob, log: (m: string) => void): { before: number; after: number } {
  const e = new Engine({ kernels: j.kernels, threads: j.threads });
  try {
    const arch = architectureOf(readConfigJson(readableDir(j.model).dir));
    if (arch === 'llama')
      throw inputError(`${j.model}: quantisation supports the state-space models (model_type mamba, mamba2, mamba3, bamba), not '${arch}'`);
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
