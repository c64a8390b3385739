import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../tensor/index.js';
import { inputError } from '../io/errors.js';
import { writeDirAtomic } from '../io/atomic.js';
import { decodeSafetensors, encodeSafetensors, readTensorF32 } from '../io/safetensors.js';
import type { SafeTensorIn } from '../io/safetensors.js';
import type { FileData } from '../io/atomic.js';
import type { AdamW } from './optim.js';

/**
 * A training checkpoint is the HF model directory plus, beside it, `optimizer.safetensors`
 * (AdamW moments `m.<param>` / `v.<param>`) and `trainer_state.json` (step, RNG state, data
 * identity, run options, loss history). The whole directory is written atomically
 * (io/atomic.ts): new weights are never paired with old optimiser state.
 */
export interface TrainerState {
  format: 'frugal-trainer-state/1';
  step: number;
  dataRng: number[];
  data: { spec: string; bytes: number };
  options: Record<string, unknown>;
  losses: number[];
  valBpb: { step: number; bpb: number }[];
  tokensSeen: number;
}

export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';

/**
 * Write a training checkpoint: `files` are what the run trains (a model's checkpoint files, or an
 * adapter's), beside the optimiser's moments over its parameter table and the trainer state.
 */
export function saveTrainingCheckpoint(dir: string, files: Record<string, FileData>, opt: AdamW, state: TrainerState): void {
  const moments: SafeTensorIn[] = [];
  for (const s of opt.specs) {
    for (const [prefix, table] of [
      ['m', opt.m],
      ['v', opt.v],
    ] as const) {
      moments.push({
        name: `${prefix}.${s.name}`,
        dtype: 'F32',
        shape: s.shape,
        data: Float32Array.from((table.get(s.name) as Tensor).data()),
      });
    }
  }
  writeDirAtomic(dir, {
    ...files,
    [OPTIMIZER_FILE]: encodeSafetensors(moments, { step: String(opt.step) }),
    [TRAINER_STATE_FILE]: JSON.stringify(state) + '\n',
  });
}

/** Read the trainer state of a checkpoint directory (reading only: the trainer recovers interrupted saves first). */
export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(file))
    throw inputError(`${dir} has no ${TRAINER_STATE_FILE}: it is a model, not a resumable training run (use --init to start from it)`);
  let s: TrainerState;
  try {
    s = JSON.parse(readFileSync(file, 'utf8')) as TrainerState;
  } catch (err) {
    throw inputError(`${file} is not valid JSON (${(err as Error).message})`);
  }
  if (s.format !== 'frugal-trainer-state/1') throw inputError(`${file}: unknown format '${String(s.format)}'`);
  return s;
}

/** Restore AdamW moments and step from a checkpoint directory. */
export function loadOptimizerState(dir: string, opt: AdamW, step: number): void {
  const file = join(dir, OPTIMIZER_FILE);
  if (!existsSync(file)) throw inputError(`${file} is missing: cannot resume the optimiser`);
  const f = decodeSafetensors(new Uint8Array(readFileSync(file)), file);
  for (const s of opt.specs) {
    for (const [prefix, table] of [
      ['m', opt.m],
      ['v', opt.v],
    ] as const) {
      const name = `${prefix}.${s.name}`;
      if (!f.tensors.has(name)) throw inputError(`${file}: tensor '${name}' is missing`);
      (table.get(s.name) as Tensor).set(readTensorF32(f, name));
    }
  }
  opt.step = step;
}
