import { inputError } from '../io/errors.js';
import { makeReport } from './types.js';
import type { EnergyReport } from './types.js';

/**
 * The analytic estimate: joules = multiply-accumulates × energy per MAC + bytes moved × energy per
 * byte, from published per-operation figures for a hardware profile. It counts the arithmetic and
 * the data movement the model needs, not what a particular CPU spends (no idle, static or
 * instruction overhead), so it answers "what would this work cost on that hardware".
 *
 * Counting conventions (see bench/cost.ts): elementwise operations (exp, norms, the scan's updates)
 * count as one MAC each; every byte of weights read and of recurrent state / KV cache read or
 * written per token counts as one external-memory byte, at the bytes frugal stores (float32).
 */
export interface HardwareProfile {
  readonly id: string;
  readonly name: string;
  /** What one multiply-accumulate is on this hardware (its arithmetic and precision). */
  readonly mac: string;
  /** The external memory the bytes come from. */
  readonly memory: string;
  readonly joulesPerMac: number;
  readonly joulesPerByte: number;
  /** Where each figure comes from (also written next to the numbers below). */
  readonly sources: string;
}

export const PROFILES: Readonly<Record<string, HardwareProfile>> = Object.freeze({
  'horowitz-45nm': {
    id: 'horowitz-45nm',
    name: 'general-purpose processor, 45 nm',
    mac: 'float32 multiply + float32 add',
    memory: 'DDR3 DRAM',
    // float32 multiply 3.7 pJ + float32 add 0.9 pJ (Horowitz, "Computing's energy problem (and what
    // we can do about it)", ISSCC 2014, 45 nm at 0.9 V)
    joulesPerMac: 3.7e-12 + 0.9e-12,
    // DRAM 1.3–2.6 nJ per 64-bit access (same source); the midpoint 1.95 nJ over 8 bytes
    joulesPerByte: 1.95e-9 / 8,
    sources: 'Horowitz, ISSCC 2014: fp32 mult 3.7 pJ + add 0.9 pJ; DRAM 1.3–2.6 nJ per 64-bit access (midpoint)',
  },
  'mobile-npu': {
    id: 'mobile-npu',
    name: 'modern mobile NPU (8 nm) with LPDDR4',
    mac: '8-bit integer MAC (the NPU figure is for 8-bit operands, not float32)',
    memory: 'LPDDR4 DRAM',
    // 11.5 TOPS/W (Song et al., "An 11.5TOPS/W 1024-MAC Butterfly Structure Dual-Core
    // Sparsity-Aware Neural Processing Unit in 8nm Flagship Mobile SoC", ISSCC 2019, 8-bit MACs);
    // a MAC is 2 operations: 2 / 11.5e12 J = 174 fJ per MAC
    joulesPerMac: 2 / 11.5e12,
    // a phone's NPU reads LPDDR, not HBM: 14.0 pJ/bit for a 32 Gb LPDDR4 single-die package
    // (H. Ha, Stanford University PhD thesis on DRAM energy, DramDSE simulation), 112 pJ/byte
    joulesPerByte: 14.0e-12 * 8,
    sources: 'Song et al., ISSCC 2019: 11.5 TOPS/W at 8-bit (174 fJ/MAC); H. Ha, Stanford PhD thesis (DRAM energy): LPDDR4 14.0 pJ/bit',
  },
  photonic: {
    id: 'photonic',
    name: 'photonic tensor accelerator with HBM2',
    mac: 'optical MAC (the system figure of a photonic tensor core)',
    memory: 'HBM2 DRAM',
    // 22.3 TOPS/W system efficiency of the TeMPO time-multiplexed photonic tensor core (Zhu et al.,
    // J. Appl. Phys. 135, 223105, 2024; arXiv:2402.07393): 2 / 22.3e12 J = 89.7 fJ per MAC.
    // (The shot-noise limit of optical MACs is far lower, ~50 zJ/MAC: Hamerly et al., Phys. Rev. X 9,
    // 021032, 2019; weights and activations still come from electronic memory.)
    joulesPerMac: 2 / 22.3e12,
    // an accelerator card's HBM2: 3.97 pJ/bit (O'Connor et al., "Fine-Grained DRAM: Energy-Efficient
    // DRAM for Extreme Bandwidth Systems", MICRO 2017), 31.8 pJ/byte
    joulesPerByte: 3.97e-12 * 8,
    sources: "Zhu et al. (TeMPO), J. Appl. Phys. 2024: 22.3 TOPS/W (89.7 fJ/MAC); O'Connor et al., MICRO 2017: HBM2 3.97 pJ/bit",
  },
});

export const PROFILE_IDS = Object.keys(PROFILES);
export const DEFAULT_PROFILE = 'horowitz-45nm';

export function getProfile(id: string): HardwareProfile {
  const p = PROFILES[id];
  if (!p) throw inputError(`--profile '${id}' is not a hardware profile (choose one of: ${PROFILE_IDS.join(', ')})`);
  return p;
}

/** Work counted for some tokens: multiply-accumulates (elementwise ops as one each) and bytes moved. */
export interface WorkCount {
  macs: number;
  bytes: number;
}

/** The analytic estimate for `work` done on `tokens` tokens on `profile`. */
export function analyticEstimate(work: WorkCount, tokens: number, profile: HardwareProfile, seconds = 0): EnergyReport {
  const compute = work.macs * profile.joulesPerMac,
    memory = work.bytes * profile.joulesPerByte;
  return makeReport({
    joules: compute + memory,
    tokens,
    kind: 'estimated',
    method: `analytic:${profile.id}`,
    scope: `counted arithmetic (${profile.mac}) and ${profile.memory} traffic on a ${profile.name} (no idle or static power)`,
    detail:
      `${work.macs.toExponential(3)} MACs × ${(profile.joulesPerMac * 1e15).toFixed(1)} fJ + ` +
      `${work.bytes.toExponential(3)} bytes × ${(profile.joulesPerByte * 1e12).toFixed(2)} pJ (${profile.sources})`,
    seconds,
    cpuJoules: compute + memory,
    gpuJoules: 0,
  });
}
