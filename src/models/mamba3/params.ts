import type { Mamba3Config } from './config.js';
import { mamba3InProjDim } from './config.js';
import type { ParamSpec } from '../types.js';
import { backboneParamSpecs } from '../backbone-params.js';

/**
 * The one parameter table of Mamba-3: state-spaces modules/mamba3.py's names under
 * backbone.layers.{i}.mixer (B_bias and C_bias (H, R, N), R = 1 for SISO) and its initialisation:
 * dt_bias from log-uniform Δ, B/C biases and norms at one, D at one, projections as nn.Linear,
 * out_proj rescaled by 1/sqrt(n_layer); MIMO adds mimo_x and mimo_o at 1/R and mimo_z at one
 * (H, R, P), kept out of weight decay like the other per-channel scales.
 */
export function mamba3MixerSpecs(c: Mamba3Config, m: string, nLayer: number): ParamSpec[] {
  const { dModel: D, dInner: ED, nHeads: H, dState: N, mimoRank: R, headDim: P } = c;
  const outBound = (c.rescalePrenormResidual ? 1 / Math.sqrt(nLayer) : 1) / Math.sqrt(ED);
  return [
    { name: `${m}.in_proj.weight`, shape: [mamba3InProjDim(c), D], init: { kind: 'uniform', bound: 1 / Math.sqrt(D) }, decay: true },
    {
      name: `${m}.dt_bias`,
      shape: [H],
      init: { kind: 'dtBias', min: c.timeStepMin, max: c.timeStepMax, floor: c.timeStepFloor },
      decay: false,
    },
    { name: `${m}.B_bias`, shape: [H, R, N], init: { kind: 'ones' }, decay: false },
    { name: `${m}.C_bias`, shape: [H, R, N], init: { kind: 'ones' }, decay: false },
    { name: `${m}.B_norm.weight`, shape: [N], init: { kind: 'ones' }, decay: false },
    { name: `${m}.C_norm.weight`, shape: [N], init: { kind: 'ones' }, decay: false },
    ...(c.isMimo
      ? ([
          { name: `${m}.mimo_x`, shape: [H, R, P], init: { kind: 'constant', value: 1 / R }, decay: false },
          { name: `${m}.mimo_z`, shape: [H, R, P], init: { kind: 'ones' }, decay: false },
          { name: `${m}.mimo_o`, shape: [H, R, P], init: { kind: 'constant', value: 1 / R }, decay: false },
        ] satisfies ParamSpec[])
      : []),
    { name: `${m}.D`, shape: [H], init: { kind: 'ones' }, decay: false },
    { name: `${m}.out_proj.weight`, shape: [D, ED], init: { kind: 'uniform', bound: outBound }, decay: true },
  ];
}

export function mamba3ParamSpecs(c: Mamba3Config): ParamSpec[] {
  return backboneParamSpecs(c, (m) => mamba3MixerSpecs(c, m, c.nLayer));
}
