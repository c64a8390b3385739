import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../ops/index.js';
import { inputError } from '../io/errors.js';
import { decodeSafetensors, encodeSafetensors, readTensorF32 } from '../io/safetensors.js';
import type { SafeTensorIn } from '../io/safetensors.js';
import { recoverDir } from '../io/atomic.js';
import { MambaLM } from './mamba/model.js';
import { mambaConfigFromHF } from './mamba/config.js';
import type { TrainableModel } from './types.js';

/**
 * Hugging Face-style checkpoint directories: config.json + model.safetensors (tensors under their
 * HF names, F32). A tied head is not stored (transformers re-ties it on load).
 */

export interface LoadedModel { model: TrainableModel; warnings: string[]; dir: string }

export function readConfigJson(dir: string): unknown {
  const file = join(dir, 'config.json');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw inputError(`model directory ${dir} does not exist (train one with 'frugal train --out ${dir}')`);
  if (!existsSync(file)) throw inputError(`${file} is missing: a model directory needs config.json and model.safetensors`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw inputError(`${file} is not valid JSON (${(err as Error).message})`);
  }
}

/** Load a checkpoint directory into a new model on engine `e`. */
export function loadModel(e: Engine, dir: string): LoadedModel {
  recoverDir(dir);
  const file = join(dir, 'config.json');
  const { model, warnings } = modelFromConfig(e, readConfigJson(dir), file);
  const weightsFile = join(dir, 'model.safetensors');
  if (!existsSync(weightsFile)) throw inputError(`${weightsFile} is missing`);
  loadWeights(model, decodeSafetensors(new Uint8Array(readFileSync(weightsFile)), weightsFile));
  return { model, warnings, dir };
}

/** Build an (uninitialised) model of the architecture config.json names (model_type). */
export function modelFromConfig(e: Engine, json: unknown, file: string): { model: TrainableModel; warnings: string[] } {
  const type = typeof json === 'object' && json !== null ? (json as Record<string, unknown>).model_type : undefined;
  switch (type) {
    case 'mamba':
    case undefined: {
      const { config, warnings } = mambaConfigFromHF(json, file);
      return { model: new MambaLM(e, config), warnings };
    }
    default:
      throw inputError(`${file}: model_type '${String(type)}' is not supported (supported: mamba)`);
  }
}

/** Copy every parameter from a decoded safetensors file, checking names, shapes and values. */
export function loadWeights(model: TrainableModel, f: ReturnType<typeof decodeSafetensors>): void {
  const expected = new Set(model.specs.map((s) => s.name));
  for (const name of f.tensors.keys()) {
    if (!expected.has(name) && !(name === 'lm_head.weight' && tiedHead(model))) {
      throw inputError(`${f.file}: unexpected tensor '${name}' (config.json describes a model without it)`);
    }
  }
  for (const s of model.specs) {
    const info = f.tensors.get(s.name);
    if (!info) throw inputError(`${f.file}: tensor '${s.name}' is missing`);
    const same = info.shape.length === s.shape.length && info.shape.every((v, i) => v === s.shape[i]);
    if (!same) throw inputError(`${f.file}: tensor '${s.name}' has shape [${info.shape}] but config.json implies [${s.shape}]`);
    const values = readTensorF32(f, s.name);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw inputError(`${f.file}: tensor '${s.name}' holds a non-finite value at index ${i}`);
    }
    (model.params.get(s.name) as NonNullable<ReturnType<typeof model.params.get>>).set(values);
  }
  model.weightsChanged();
}

/** The files of a checkpoint directory (to hand to writeDirAtomic with any training state). */
export function modelFiles(model: TrainableModel): Record<string, Uint8Array | string> {
  const tensors: SafeTensorIn[] = model.specs.map((s) => ({
    name: s.name, dtype: 'F32', shape: s.shape,
    data: Float32Array.from((model.params.get(s.name) as NonNullable<ReturnType<typeof model.params.get>>).data()),
  }));
  return {
    'config.json': JSON.stringify(model.hfConfig(), null, 2) + '\n',
    'model.safetensors': encodeSafetensors(tensors, { format: 'pt' }),
  };
}

/** Whether the checkpoint's head shares the embedding (a stored lm_head.weight is then redundant). */
function tiedHead(model: TrainableModel): boolean {
  return model.hfConfig().tie_word_embeddings === true;
}
