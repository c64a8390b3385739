import type { Mamba2Config } from './config.js';
import { convDim, inProjDim } from './config.js';
import type { ParamSpec } from '../types.js';
import { backboneParamSpecs } from '../backbone-params.js';

/**
 * The one parameter table of Mamba-2: Hugging Face names and shapes (Mamba2ForCausalLM), the
 * reference initialisation (state-spaces mamba2.py and mixer_seq_simple.py's _init_weights), and
 * whether AdamW decays the parameter.
 */

const linear = (fanIn: number) => ({ kind: 'uniform' as const, bound: 1 / Math.sqrt(fanIn) }); // PyTorch nn.Linear / nn.Conv1d default

/** One Mamba-2 mixer's parameters under `m` (e.g. backbone.layers.3.mixer). */
export function mamba2MixerSpecs(c: Mamba2Config, m: string, nLayer: number): ParamSpec[] {
  const { dModel: D, dInner: ED, nHeads: H, dConv: K } = c,
    CD = convDim(c),
    IP = inProjDim(c);
  // out_proj is rescaled by 1/sqrt(n_layer) at init (GPT-2 style prenorm residual rescaling)
  const outBound = (c.rescalePrenormResidual ? 1 / Math.sqrt(nLayer) : 1) / Math.sqrt(ED);
  return [
    { name: `${m}.in_proj.weight`, shape: [IP, D], init: linear(D), decay: true },
    ...(c.useBias ? [{ name: `${m}.in_proj.bias`, shape: [IP], init: { kind: 'zeros' as const }, decay: false }] : []),
    { name: `${m}.conv1d.weight`, shape: [CD, 1, K], init: linear(K), decay: true },
    ...(c.useConvBias ? [{ name: `${m}.conv1d.bias`, shape: [CD], init: linear(K), decay: false }] : []),
    // dt_bias = softplus^-1(Δ), Δ log-uniform in [min, max]; A = −uniform(lo, hi) per head
    {
      name: `${m}.dt_bias`,
      shape: [H],
      init: { kind: 'dtBias', min: c.timeStepMin, max: c.timeStepMax, floor: c.timeStepFloor },
      decay: false,
    },
    { name: `${m}.A_log`, shape: [H], init: { kind: 'logUniform', min: c.aInitRange[0], max: c.aInitRange[1] }, decay: false },
    { name: `${m}.D`, shape: [H], init: { kind: 'ones' }, decay: false },
    { name: `${m}.norm.weight`, shape: [ED], init: { kind: 'ones' }, decay: false },
    { name: `${m}.out_proj.weight`, shape: [D, ED], init: { kind: 'uniform', bound: outBound }, decay: true },
    ...(c.useBias ? [{ name: `${m}.out_proj.bias`, shape: [D], init: { kind: 'zeros' as const }, decay: false }] : []),
  ];
}

/** The whole language model: embedding, n_layer × (norm, mixer), norm_f, head unless tied. */
export function mamba2ParamSpecs(c: Mamba2Config): ParamSpec[] {
  return backboneParamSpecs(c, (m) => mamba2MixerSpecs(c, m, c.nLayer));
}
