import { join } from 'node:path';
import { Engine } from '../ops/index.js';
import type { Tensor } from '../tensor/index.js';
import { inputError } from '../io/errors.js';
import { readableDir, writeDirAtomic } from '../io/atomic.js';
import { openWeights } from '../io/weights.js';
import { firstNonFinite, readFloatsInto } from '../io/tensors.js';
import { modelFiles, planTensors, readConfigJson, rememberSource } from './checkpoint.js';
import { mambaConfigFromJson } from './mamba/config.js';
import { mambaParamSpecs } from './mamba/params.js';
import { MambaLM } from './mamba/model.js';
import { quantMapFromConfig, quantPlan, weightBytes } from './quant.js';
import type { QFormat } from '../tensor/index.js';

/**
 * Quantise a Mamba checkpoint while reading it, one tensor at a time: the model is built with
 * quantised storage for the weights the plan names, and each of those is read in f32 into a
 * temporary buffer, quantised into place and released. Memory peaks at the quantised model plus
 * one f32 tensor, so checkpoints whose f32 weights exceed WebAssembly's 4 GiB still quantise.
 */
export function quantizeCheckpoint(e: Engine, path: string, format: QFormat): { model: MambaLM; warnings: string[] } {
  const { dir, warnings: found } = readableDir(path); // reading only
  const file = join(dir, 'config.json');
  const json = readConfigJson(dir);
  if (quantMapFromConfig(json, file).size > 0)
    throw inputError(`${dir} is already quantised; quantise the f32 (or f16/bf16) checkpoint instead`);
  const { config, warnings: configWarnings, layout } = mambaConfigFromJson(json, file);
  const warnings = [...found, ...configWarnings];
  const specs = mambaParamSpecs(config);
  const plan = quantPlan(specs, format);
  const weights = openWeights(dir);
  try {
    const sources = planTensors(specs, config.tieWordEmbeddings, weights.entries, weights.file, layout);
    const model = new MambaLM(e, config, plan);
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
  kernels: 'wasm' | 'ref';
  threads: number;
}

/** Quantise `j.model` into `j.outDir`; returns the weights' bytes before (as f32) and after. */
export function quantizeToDir(j: QuantizeJob, log: (m: string) => void): { before: number; after: number } {
  const e = new Engine({ kernels: j.kernels, threads: j.threads });
  try {
    const json = readConfigJson(readableDir(j.model).dir);
    const type = typeof json === 'object' && json !== null && 'model_type' in json ? json.model_type : undefined;
    if (type !== undefined && type !== 'mamba')
      throw inputError(`${j.model}: quantisation supports Mamba checkpoints (model_type 'mamba')`);
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
