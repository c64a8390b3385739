import type { MambaConfig } from './config.js';
import type { ParamSpec } from '../types.js';
import { backboneParamSpecs } from '../backbone-params.js';

/**
 * The one parameter table of Mamba-1: Hugging Face names and shapes (MambaForCausalLM), the
 * reference initialisation (state-spaces/mamba, mamba_simple.py and _init_weights), and whether
 * AdamW decays the parameter. Allocation, loading, saving, gradients and optimiser state all
 * iterate over this list; nothing else lists parameters.
 */
export function mambaParamSpecs(c: MambaConfig): ParamSpec[] {
  return backboneParamSpecs(c, (m) => mambaMixerSpecs(c, m, c.nLayer));
}

/** One Mamba-1 mixer's parameters under `m` (e.g. backbone.layers.3.mixer) in a stack of nLayer residual blocks. */
export function mambaMixerSpecs(c: MambaConfig, m: string, nLayer: number): ParamSpec[] {
  const { dModel: D, dInner: ED, dState: N, dConv: K, dtRank: R } = c;
  const linear = (fanIn: number) => ({ kind: 'uniform' as const, bound: 1 / Math.sqrt(fanIn) }); // PyTorch nn.Linear default
  // out_proj is rescaled by 1/sqrt(n_layer) at init (GPT-2 style prenorm residual rescaling)
  const outBound = (c.rescalePrenormResidual ? 1 / Math.sqrt(nLayer) : 1) / Math.sqrt(ED);
  return [
    { name: `${m}.in_proj.weight`, shape: [2 * ED, D], init: linear(D), decay: true },
    ...(c.useBias ? [{ name: `${m}.in_proj.bias`, shape: [2 * ED], init: { kind: 'zeros' as const }, decay: false }] : []),
    { name: `${m}.conv1d.weight`, shape: [ED, 1, K], init: linear(K), decay: true },
    ...(c.useConvBias ? [{ name: `${m}.conv1d.bias`, shape: [ED], init: linear(K), decay: false }] : []),
    { name: `${m}.x_proj.weight`, shape: [R + 2 * N, ED], init: linear(ED), decay: true },
    // dt_proj: weight uniform in ±R^-1/2 · scale; bias = softplus^-1(Δ), Δ log-uniform in [min, max]
    { name: `${m}.dt_proj.weight`, shape: [ED, R], init: { kind: 'uniform', bound: c.timeStepScale / Math.sqrt(R) }, decay: true },
    {
      name: `${m}.dt_proj.bias`,
      shape: [ED],
      init: { kind: 'dtBias', min: c.timeStepMin, max: c.timeStepMax, floor: c.timeStepFloor },
      decay: false,
    },
    { name: `${m}.A_log`, shape: [ED, N], init: { kind: 'alog' }, decay: false },
    { name: `${m}.D`, shape: [ED], init: { kind: 'ones' }, decay: false },
    { name: `${m}.out_proj.weight`, shape: [D, ED], init: { kind: 'uniform', bound: outBound }, decay: true },
    ...(c.useBias ? [{ name: `${m}.out_proj.bias`, shape: [D], init: { kind: 'zeros' as const }, decay: false }] : []),
  ];
}
