import type { QFormat } from '../../tensor/index.js';
import type { Engine } from '../../ops/index.js';
import type { Mamba3Config } from './config.js';
import { mamba3ConfigToHF } from './config.js';
import { mamba3ParamSpecs } from './params.js';
import { Mamba3BlockRunner, mamba3Mixer, mamba3MixerParams, mamba3ProductWidth } from './mixer.js';
import type { Mamba3Mixer } from './mixer.js';
import { BackboneLM } from '../backbone.js';
import type { MixerKind } from '../backbone.js';

/** Mamba-3's SISO mixer for the shared backbone (mixer.ts). */
export const MAMBA3: MixerKind<Mamba3Config, Mamba3Mixer> = {
  specs: mamba3ParamSpecs,
  params: mamba3MixerParams,
  taped: mamba3Mixer,
  width: mamba3ProductWidth,
  toHF: mamba3ConfigToHF,
  runner: (e, c, m, norm, i) => new Mamba3BlockRunner(e, c, m, norm, i),
};

/**
 * Mamba-3 (SISO) language model: state-spaces' MambaLMHeadModel with ssm_cfg.layer "Mamba3",
 * with the names of frugal's other Mamba models:
 *   embedding → n_layer × [h = h + mixer(RMSNorm(h))] → RMSNorm → lm_head (tied by default)
 */
export class Mamba3LM extends BackboneLM<Mamba3Config, Mamba3Mixer> {
  constructor(e: Engine, config: Mamba3Config, quant: ReadonlyMap<string, QFormat> = new Map()) {
    super(e, config, MAMBA3, quant);
  }
}
