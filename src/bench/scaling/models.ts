import { runtimeError } from '../../io/errors.js';
import { createMambaConfig } from '../../models/mamba/config.js';
import type { MambaConfig } from '../../models/mamba/config.js';
import { mambaParamSpecs } from '../../models/mamba/params.js';
import { createLlamaConfig, defaultHeads } from '../../models/transformer/config.js';
import type { LlamaConfig } from '../../models/transformer/config.js';
import { llamaParamSpecs } from '../../models/transformer/params.js';
import type { ParamSpec } from '../../models/types.js';
import { createMamba2Config } from '../../models/mamba2/config.js';
import type { Mamba2Config } from '../../models/mamba2/config.js';

/**
 * The pair of models the scaling study compares: the same width D and byte vocabulary, the
 * transformer with half as many layers (a Mamba block holds about 6D² weights, a transformer
 * layer 4D² + 3DF) and its SwiGLU width F chosen so that both have the same parameter count
 * (within 5%, checked).
 */
export interface StudyPair {
  mamba: MambaConfig;
  transformer: LlamaConfig;
  mambaParams: number;
  transformerParams: number;
  /** A Mamba-2 of the same width and depth (its in_proj is a little wider: within about 6% of Mamba's parameters). */
  mamba2: Mamba2Config;
}

export const PARITY_TOLERANCE = 0.05;

function count(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** The default pair (~1.8M parameters each: D 256, Mamba 4 layers, transformer 2 layers) or a tiny one for tests. */
export function studyPair(tiny: boolean): StudyPair {
  const D = tiny ? 32 : 256,
    layers = tiny ? 2 : 4,
    V = 256;
  const mamba = createMambaConfig({ dModel: D, nLayer: layers, dState: tiny ? 8 : 16, vocabSize: V });
  const mambaParams = count(mambaParamSpecs(mamba));
  const tLayers = Math.max(1, layers / 2),
    H = defaultHeads(D);
  // everything but the MLP, then the MLP width that closes the gap (a multiple of 16)
  const withoutMlp =
    count(llamaParamSpecs(createLlamaConfig({ dModel: D, nLayer: tLayers, nHead: H, vocabSize: V, intermediateSize: 1 }))) -
    3 * D * tLayers;
  const F = Math.max(16, 16 * Math.round((mambaParams - withoutMlp) / (3 * D * tLayers) / 16));
  const transformer = createLlamaConfig({
    dModel: D,
    nLayer: tLayers,
    nHead: H,
    vocabSize: V,
    intermediateSize: F,
    maxPositionEmbeddings: 1 << 20,
  });
  const transformerParams = count(llamaParamSpecs(transformer));
  const gap = Math.abs(transformerParams - mambaParams) / mambaParams;
  if (gap > PARITY_TOLERANCE)
    throw runtimeError(`bench: the models differ by ${(gap * 100).toFixed(1)}% in parameters (${mambaParams} vs ${transformerParams})`);
  const mamba2 = createMamba2Config({ dModel: D, nLayer: layers, dState: tiny ? 16 : 64, headDim: tiny ? 16 : 64, vocabSize: V });
  return { mamba, transformer, mambaParams, transformerParams, mamba2 };
}
