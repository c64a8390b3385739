import type { QFormat } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { MambaConfig } from './config.js';
import { mambaConfigToHF } from './config.js';
import { mambaParamSpecs } from './params.js';
import { BackboneLM } from '../backbone.js';
import type { MixerKind } from '../backbone.js';
import { MambaBlockRunner, mambaMixer, mambaMixerParams, mambaProductWidth } from './runner.js';
import type { MambaMixer } from './runner.js';

export { SCALE_SUFFIX, quantizationConfig } from '../backbone.js';

/** Mamba-1's mixer for the shared backbone (runner.ts). */
export const MAMBA1: MixerKind<MambaConfig, MambaMixer> = {
  specs: mambaParamSpecs,
  params: mambaMixerParams,
  taped: mambaMixer,
  width: mambaProductWidth,
  toHF: mambaConfigToHF,
  runner: (e, c, m, norm, i) => new MambaBlockRunner(e, c, m, norm, i),
};

/**
 * Mamba-1 language model (Gu & Dao 2023; transformers' MambaForCausalLM):
 *   embedding → n_layer × [h = h + mixer(RMSNorm(h))] → RMSNorm → lm_head (tied by default)
 * `forward` is the parallel pass (differentiable); `step` / `prefill` are the recurrent
 * inference path (runner.ts on the shared stack), with buffers allocated once per batch size.
 */
export class MambaLM extends BackboneLM<MambaConfig, MambaMixer> {
  constructor(e: Engine, config: MambaConfig, quant: ReadonlyMap<string, QFormat> = new Map()) {
    super(e, config, MAMBA1, quant);
  }
}
