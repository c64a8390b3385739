import type { Engine } from '../ops/index.js';
import type { Rng } from '../io/rng.js';
import { inputError } from '../io/errors.js';
import { createMambaConfig } from './mamba/config.js';
import { MambaLM } from './mamba/model.js';
import { createLlamaConfig } from './transformer/config.js';
import { TransformerLM } from './transformer/model.js';
import { createMamba2Config } from './mamba2/config.js';
import { Mamba2LM } from './mamba2/model.js';
import { createHybridConfig } from './hybrid/config.js';
import { createMamba3Config } from './mamba3/config.js';
import { Mamba3LM } from './mamba3/model.js';
import { HybridLM } from './hybrid/model.js';
import type { TrainableModel } from './types.js';

/** Architectures `frugal train --arch` can build from scratch. */
export const ARCHITECTURES = ['mamba', 'mamba2', 'mamba3', 'hybrid', 'transformer'] as const;
export type Arch = (typeof ARCHITECTURES)[number];

/** The SSM state size N when --d-state is not given: Mamba-1's 16, Mamba-2's and Mamba-3's 128. */
export function defaultDState(arch: string): number {
  return arch === 'mamba' || arch === 'transformer' ? 16 : 128;
}

/** The size flags of `frugal train` (each architecture reads those that apply to it). */
export interface SizeOptions {
  dModel: number;
  layers: number;
  dState: number;
  vocabSize: number;
  heads?: number; // transformer and hybrid: attention heads (default: head size closest to 64)
  layerTypes?: readonly string[]; // hybrid: one of mamba, mamba2, attention per layer
  mimoRank?: number; // mamba3: MIMO heads with this many ranks (absent: SISO)
  tokenizer?: 'byte' | 'file'; // 'file': the ids of a tokenizer.json saved with the model
  eosTokenId?: number; // its end-of-text id (generation stops there)
}

/** A freshly initialised model of architecture `arch`. */
export function createModel(arch: string, e: Engine, s: SizeOptions, rng: Rng): TrainableModel {
  const vocab = { ...(s.tokenizer ? { tokenizer: s.tokenizer } : {}), ...(s.eosTokenId !== undefined ? { eosTokenId: s.eosTokenId } : {}) };
  if (s.mimoRank !== undefined && arch !== 'mamba3') throw inputError(`--mimo-rank is for --arch mamba3, not ${arch}`);
  switch (arch) {
    case 'mamba':
      return new MambaLM(
        e,
        createMambaConfig({ dModel: s.dModel, nLayer: s.layers, dState: s.dState, vocabSize: s.vocabSize, ...vocab }),
      ).init(rng);
    case 'mamba2':
      return new Mamba2LM(
        e,
        createMamba2Config({ dModel: s.dModel, nLayer: s.layers, dState: s.dState, vocabSize: s.vocabSize, ...vocab }, '--arch mamba2'),
      ).init(rng);
    case 'mamba3':
      return new Mamba3LM(
        e,
        createMamba3Config(
          {
            dModel: s.dModel,
            nLayer: s.layers,
            dState: s.dState,
            vocabSize: s.vocabSize,
            ...vocab,
            ...(s.mimoRank !== undefined ? { isMimo: true, mimoRank: s.mimoRank } : {}),
          },
          '--arch mamba3',
        ),
      ).init(rng);
    case 'hybrid': {
      if (!s.layerTypes) throw inputError('--arch hybrid needs --layer-types, one type per layer, e.g. mamba2,attention,mamba2');
      if (s.layerTypes.length !== s.layers)
        throw inputError(`--layer-types lists ${s.layerTypes.length} layers but --layers is ${s.layers}`);
      return new HybridLM(
        e,
        createHybridConfig(
          { dModel: s.dModel, layerTypes: s.layerTypes, dState: s.dState, nHead: s.heads, vocabSize: s.vocabSize },
          '--arch hybrid',
        ),
      ).init(rng);
    }
    case 'transformer':
      return new TransformerLM(
        e,
        createLlamaConfig({ dModel: s.dModel, nLayer: s.layers, nHead: s.heads, vocabSize: s.vocabSize, ...vocab }, '--arch transformer'),
      ).init(rng);
    default:
      throw inputError(`--arch '${arch}' is not supported (choose one of: ${ARCHITECTURES.join(', ')})`);
  }
}
