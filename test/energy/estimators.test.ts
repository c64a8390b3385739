import { describe, expect, it } from 'vitest';
import {
  DEFAULT_WATTS_PER_CORE,
  PROFILES,
  analyticEstimate,
  cpuTimeEstimate,
  getProfile,
  integrateSmiSamples,
  parsePerfIntervals,
  perfSamples,
  smiSamples,
  wattsPerCore,
} from '../../src/energy/index.js';
import { FrugalError } from '../../src/io/errors.js';

/** The estimators' arithmetic, and the parsers of perf and nvidia-smi output. */
describe('CPU-time estimate', () => {
  it('charges CPU seconds at TDP ÷ cores, from the table, --tdp, or the documented default', () => {
    expect(wattsPerCore('AMD EPYC 7763 64-Core Processor').watts).toBeCloseTo(280 / 64, 12);
    expect(wattsPerCore('Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz').watts).toBeCloseTo(300 / 32, 12);
    expect(wattsPerCore('AMD EPYC 7763 64-Core Processor', 128).watts).toBeCloseTo(2, 12); // --tdp over the table's cores
    expect(wattsPerCore('Intel(R) Xeon(R) Processor', 30, 2)).toMatchObject({ watts: 15 }); // --tdp over logical CPUs
    const d = wattsPerCore('Intel(R) Xeon(R) Processor');
    expect(d.watts).toBe(DEFAULT_WATTS_PER_CORE);
    expect(d.source).toMatch(/not in the TDP table; pass --tdp/);
    expect(() => wattsPerCore('x', -1)).toThrow(FrugalError);
    const r = cpuTimeEstimate(12.5, 20, 1000, { watts: 4, source: 's' });
    expect(r).toMatchObject({
      joules: 50,
      jPerToken: 0.05,
      kind: 'estimated',
      method: 'cpu-time',
      seconds: 20,
      cpuJoules: 50,
      gpuJoules: 0,
    });
    expect(cpuTimeEstimate(1, 1, 0, { watts: 4, source: 's' }).jPerToken).toBeNaN();
  });
});

describe('analytic estimate', () => {
  it("multiplies counted MACs and bytes by each profile's published figures", () => {
    const w = { macs: 2e6, bytes: 3e6 };
    const h = analyticEstimate(w, 4, getProfile('horowitz-45nm'));
    expect(h.joules).toBeCloseTo(2e6 * 4.6e-12 + (3e6 * 1.95e-9) / 8, 15); // 3.7 + 0.9 pJ; 1.95 nJ / 8 B
    expect(h.jPerToken).toBeCloseTo(h.joules / 4, 18);
    expect(h).toMatchObject({ kind: 'estimated', method: 'analytic:horowitz-45nm' });
    expect(analyticEstimate(w, 1, PROFILES['mobile-npu']).joules).toBeCloseTo((2e6 * 2) / 11.5e12 + 3e6 * 14.0e-12 * 8, 15); // LPDDR4
    expect(analyticEstimate(w, 1, PROFILES.photonic).joules).toBeCloseTo((2e6 * 2) / 22.3e12 + 3e6 * 3.97e-12 * 8, 15); // HBM2
    // each profile has its own memory system: the mobile NPU and the photonic accelerator differ per byte as well as per MAC
    const perToken = Object.values(PROFILES).map((p) => analyticEstimate({ macs: 0, bytes: 1 }, 1, p).jPerToken);
    expect(new Set(perToken).size).toBe(3);
    expect(analyticEstimate(w, 1, PROFILES['mobile-npu']).scope).toMatch(/8-bit integer MAC.*LPDDR4/);
    expect(PROFILES.photonic.joulesPerMac * 1e15).toBeCloseTo(89.7, 1); // fJ per MAC
    expect(PROFILES['mobile-npu'].joulesPerMac * 1e15).toBeCloseTo(173.9, 1);
    expect(() => getProfile('abacus')).toThrow(/horowitz-45nm, mobile-npu, photonic/);
  });
});

describe('sample parsers', () => {
  it('sums perf stat -I power/energy-pkg/ intervals', () => {
    const text = [
      '# started on Sat Nov 29',
      '     0.100119,2.41,Joules,power/energy-pkg/,100211430,100.00,,',
      '     0.200301,2.39,Joules,power/energy-pkg/,100181212,100.00,,',
      '     0.300512,<not counted>,Joules,power/energy-pkg/,0,100.00,,',
    ].join('\n');
    expect(parsePerfIntervals(text)).toBeCloseTo(4.8, 12);
    expect(perfSamples(text).readings).toBe(2); // the uncounted interval is no reading
  });

  it('integrates nvidia-smi power samples per GPU (output captured from an H200)', () => {
    const h200 = [
      '2026/11/29 18:56:04.861, 0, 78.69',
      '2026/11/29 18:56:05.065, 0, 78.65',
      '2026/11/29 18:56:05.265, 0, 78.55',
      '2026/11/29 18:56:05.465, 0, 78.51',
      '2026/11/29 18:56:05.665, 0, 78.46',
    ].join('\n');
    const want = (0.204 * (78.69 + 78.65)) / 2 + (0.2 * (78.65 + 78.55)) / 2 + (0.2 * (78.55 + 78.51)) / 2 + (0.2 * (78.51 + 78.46)) / 2;
    expect(integrateSmiSamples(h200)).toBeCloseTo(want, 9);
    const two =
      '2026/01/01 00:00:00.000, 0, 10\n2026/01/01 00:00:00.000, 1, 200\n2026/01/01 00:00:01.000, 0, 10\n2026/01/01 00:00:01.000, 1, [N/A]\n2026/01/01 00:00:02.000, 1, 200';
    expect(integrateSmiSamples(two)).toBeCloseTo(10 + 400, 9); // GPUs integrated separately
    expect(smiSamples(h200).readings).toBe(5);
    expect(smiSamples(two).readings).toBe(2); // one reading covers every GPU sampled with it
  });
});
