import type { Engine } from '../ops/index.js';
import type { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { createMambaConfig } from './mamba/config.js';
import { MambaLM } from './mamba/model.js';
import { createLlamaConfig } from './transformer/config.js';
import { TransformerLM } from './transformer/model.js';
import type { TrainableModel } from './types.js';

/** Architectures `frugal train --arch` can build from scratch. */
export const ARCHITECTURES = ['mamba', 'transformer'] as const;
export type Arch = (typeof ARCHITECTURES)[number];

/** The size flags of `frugal train` (each architecture reads those that apply to it). */
export interface SizeOptions {
  dModel: number;
  layers: number;
  dState: number;
  vocabSize: number;
  heads?: number; // transformer: attention heads (default: head size closest to 64)
}

/** A freshly initialised model of architecture `arch`. */
export function createModel(arch: string, e: Engine, s: SizeOptions, rng: Rng): TrainableModel {
  switch (arch) {
    case 'mamba':
      return new MambaLM(e, createMambaConfig({ dModel: s.dModel, nLayer: s.layers, dState: s.dState, vocabSize: s.vocabSize })).init(rng);
    case 'transformer':
      return new TransformerLM(
        e,
        createLlamaConfig({ dModel: s.dModel, nLayer: s.layers, nHead: s.heads, vocabSize: s.vocabSize }, '--arch transformer'),
      ).init(rng);
    default:
      throw inputError(`--arch '${arch}' is not supported (choose one of: ${ARCHITECTURES.join(', ')})`);
  }
}
