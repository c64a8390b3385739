/**
 * The architectures `frugal bench --arch` measures: how each bench shape becomes a model, and the
 * per-architecture FLOP counts the training figures add to 6 × parameters.
 */
import type { Engine } from '../../ops/index.js';
import { MambaLM } from '../../models/mamba/model.js';
import { createMambaConfig } from '../../models/mamba/config.js';
import { Mamba2LM } from '../../models/mamba2/model.js';
import { createMamba2Config } from '../../models/mamba2/config.js';
import { Mamba3LM } from '../../models/mamba3/model.js';
import { createMamba3Config } from '../../models/mamba3/config.js';
import { HybridLM } from '../../models/hybrid/model.js';
import { createHybridConfig } from '../../models/hybrid/config.js';
import type { HybridConfig } from '../../models/hybrid/config.js';
import type { QuantisableModel } from '../../models/quant.js';
import type { ModelState } from '../../models/types.js';
import type { Rng } from '../../io/rng.js';

export const BENCH_ARCHS = ['mamba', 'mamba2', 'mamba3', 'hybrid'] as const;
export type BenchArch = (typeof BENCH_ARCHS)[number];

/** A bench model's shape; each architecture reads the fields that apply to it (the rest take the model's defaults). */
export interface BenchShape {
  dModel: number;
  nLayer: number;
  dState: number;
  vocabSize: number;
  headDim?: number;
  expand?: number;
  nGroups?: number;
  /** Mamba-1 only: its inner width and Δ rank (mamba-130m sets them explicitly). */
  dInner?: number;
  dtRank?: number;
  /** Hybrid only: one of mamba, mamba2, attention per layer (length nLayer). */
  layerTypes?: readonly string[];
  tieWordEmbeddings?: boolean;
}

/** The models every bench loop needs: decode, prefill, streams (SequenceModel) and training (TrainableModel). */
export type BenchModel = QuantisableModel & { createState(B: number, tokens?: number): ModelState; init(rng: Rng): BenchModel };

/** A zero-filled model of this architecture and shape on `e` (init or copy its weights next). */
export function newBenchModel(arch: BenchArch, s: BenchShape, e: Engine, where = 'bench model'): BenchModel {
  const tie = s.tieWordEmbeddings ?? true;
  const ssm = { dModel: s.dModel, nLayer: s.nLayer, dState: s.dState, vocabSize: s.vocabSize, tieWordEmbeddings: tie };
  const heads = { headDim: s.headDim, expand: s.expand, nGroups: s.nGroups };
  switch (arch) {
    case 'mamba':
      return new MambaLM(e, createMambaConfig({ ...ssm, dInner: s.dInner, dtRank: s.dtRank }, where));
    case 'mamba2':
      return new Mamba2LM(e, createMamba2Config({ ...ssm, ...heads }, where));
    case 'mamba3':
      return new Mamba3LM(e, createMamba3Config({ ...ssm, ...heads }, where));
    case 'hybrid':
      return new HybridLM(
        e,
        createHybridConfig(
          {
            dModel: s.dModel,
            layerTypes: s.layerTypes ?? [],
            dState: s.dState,
            vocabSize: s.vocabSize,
            tieWordEmbeddings: tie,
            mamba2: heads,
          },
          where,
        ),
      );
  }
}

/** Bytes of one stream's recurrent state (conv and SSM state, and for attention layers the KV cache as first allocated). */
export function stateBytesPerStream(m: BenchModel): number {
  const st = m.createState(1);
  let n = 0;
  for (const t of st.tensors.values()) n += t.size * 4;
  return n;
}

/**
 * FLOPs per trained token beyond 6 × parameters: the recurrences (and attention's scores), forward
 * plus backward, the backward's recomputation not counted. Per (channel ED, state N, layer):
 * - Mamba-1: 7 forward (exp(ΔA), ΔB·x, decay, add, C·h multiply and add, D skip) + 14 backward;
 * - Mamba-2: 5 forward (decay by the head's scalar, x·B, add, C·h multiply and add) + 10 backward;
 * - Mamba-3: 7 forward (the trapezoid's second x·B term and its add) + 14 backward.
 * An attention layer adds 6 × 2 × D × L/2 per token (QKᵀ and AV over the causal half, fwd 1 + bwd 2).
 */
export function recurrenceFlopsPerToken(m: BenchModel, L: number): number {
  const c = m.config as unknown as Record<string, unknown>;
  switch (c.modelType) {
    case 'mamba':
      return 21 * (c.dInner as number) * (c.dState as number) * (c.nLayer as number);
    case 'mamba2':
      return 15 * (c.dInner as number) * (c.dState as number) * (c.nLayer as number);
    case 'mamba3':
      return 21 * (c.dInner as number) * (c.dState as number) * (c.nLayer as number);
    default:
      return hybridFlopsPerToken(m.config as unknown as HybridConfig, L);
  }
}

function hybridFlopsPerToken(c: HybridConfig, L: number): number {
  let f = 0;
  for (const t of c.layerTypes) {
    if (t === 'mamba') f += 21 * c.mamba.dInner * c.mamba.dState;
    else if (t === 'mamba2') f += 15 * c.mamba2.dInner * c.mamba2.dState;
    else f += 6 * c.dModel * L;
  }
  return f;
}
