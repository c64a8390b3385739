import type { QFormat } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { Mamba2Config } from './config.js';
import { mamba2ConfigToHF } from './config.js';
import { mamba2ParamSpecs } from './params.js';
import { Mamba2BlockRunner, mamba2Mixer, mamba2MixerParams, mamba2ProductWidth } from './mixer.js';
import type { Mamba2Mixer } from './mixer.js';
import { BackboneLM } from '../backbone.js';
import type { MixerKind } from '../backbone.js';

/** Mamba-2's mixer for the shared backbone (mixer.ts). */
export const MAMBA2: MixerKind<Mamba2Config, Mamba2Mixer> = {
  specs: mamba2ParamSpecs,
  params: mamba2MixerParams,
  taped: mamba2Mixer,
  width: mamba2ProductWidth,
  toHF: mamba2ConfigToHF,
  runner: (e, c, m, norm, i) => new Mamba2BlockRunner(e, c, m, norm, i),
};

/**
 * Mamba-2 language model (Dao & Gu 2024; transformers' Mamba2ForCausalLM, state-spaces
 * MambaLMHeadModel with ssm_cfg.layer "Mamba2"):
 *   embedding → n_layer × [h = h + mixer(RMSNorm(h))] → RMSNorm → lm_head (tied by default for
 *   frugal's own models; transformers' Mamba2Config defaults to untied)
 * `forward` trains with the chunked SSD; `step` / `prefill` run the recurrent path (stack.ts).
 */
export class Mamba2LM extends BackboneLM<Mamba2Config, Mamba2Mixer> {
  constructor(e: Engine, config: Mamba2Config, quant: ReadonlyMap<string, QFormat> = new Map()) {
    super(e, config, MAMBA2, quant);
  }
}
