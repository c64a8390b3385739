import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src/ops/index.js';
import { Rng } from '../../src/io/rng.js';
import { MambaLM } from '../../src/models/mamba/model.js';
import { createMambaConfig } from '../../src/models/mamba/config.js';
import { quantizeModel, weightBytes } from '../../src/models/quant.js';
import {
  bandwidthBound,
  boundFraction,
  flopsFraction,
  mambaScanFlopsPerToken,
  spread,
  trainFlopsPerToken,
} from '../../src/bench/formulas.js';
import { cpuPeakFrom, parseCpuInfo, peakGflopsAt } from '../../src/bench/speed/cpu-peak.js';
import { Comparisons, runRounds } from '../../src/bench/speed/compare.js';
import { llamaCmakeFlags, parseLlamaBench } from '../../src/bench/speed/peers.js';
import type { Skipped } from '../../src/bench/speed/types.js';

/**
 * The bench's formulas on a model small enough to count by hand (D 32, one layer, N 4, V 64, tied
 * head): its parameters and the bytes a decoded token reads at f32, q8 and q4, the bandwidth bound,
 * and both utilisations (against the CPU's theoretical peak, and against frugal's GEMM peak).
 */
const engines: Engine[] = [];
afterAll(() => {
  for (const e of engines) e.dispose();
});
function tiny(): MambaLM {
  const e = new Engine({ kernels: 'wasm', threads: 1 });
  engines.push(e);
  return new MambaLM(e, createMambaConfig({ dModel: 32, nLayer: 1, dState: 4, vocabSize: 64 })).init(Rng.fromSeed(1));
}

// by hand: ED = 64, dt_rank = ceil(32 / 16) = 2, d_conv = 4
const EMBED = 64 * 32; // tied head: read once
const LAYER = {
  norm: 32,
  inProj: 128 * 32,
  convW: 64 * 4,
  convB: 64,
  xProj: (2 + 2 * 4) * 64,
  dtW: 64 * 2,
  dtB: 64,
  aLog: 64 * 4,
  d: 64,
  outProj: 32 * 64,
};
const NORM_F = 32;
const PARAMS = EMBED + Object.values(LAYER).reduce((a, b) => a + b, 0) + NORM_F; // 9728
// what stays f32 when quantised: norms, conv, dt_proj (rows of 2 are no multiple of 32), A_log, D
const KEPT_F32 = (LAYER.norm + LAYER.convW + LAYER.convB + LAYER.dtW + LAYER.dtB + LAYER.aLog + LAYER.d + NORM_F) * 4;
/** Bytes of a q8 / q4 (rows × cols) matrix: one byte / half a byte per weight, one f32 scale per 32. */
const q8 = (r: number, c: number) => r * c + ((r * c) / 32) * 4;
const q4 = (r: number, c: number) => (r * c) / 2 + ((r * c) / 32) * 4;

describe('bench formulas on a hand-counted model', () => {
  it('bytes read per decoded token at f32, q8 and q4', () => {
    expect(PARAMS).toBe(9728);
    const m = tiny();
    expect(m.parameterCount).toBe(PARAMS);
    expect(weightBytes(m)).toBe(PARAMS * 4); // 38,912
    const a = tiny();
    quantizeModel(a, 'q8');
    expect(weightBytes(a)).toBe(q8(128, 32) + q8(10, 64) + q8(32, 64) + q8(64, 32) + KEPT_F32); // 13,520
    const b = tiny();
    quantizeModel(b, 'q4');
    expect(weightBytes(b)).toBe(q4(128, 32) + q4(10, 64) + q4(32, 64) + q8(64, 32) + KEPT_F32); // 10,128: the head stays q8
  });

  it('bandwidth bound and the fraction of it reached', () => {
    expect(bandwidthBound(10, 38_912)).toBeCloseTo(1e10 / 38_912, 6); // 256,990 tok/s
    expect(boundFraction(128_000, 10, 38_912)).toBeCloseTo((128_000 * 38_912) / 1e10, 12);
  });

  it('MFU against the CPU peak and the fraction of the measured GEMM peak, with and without the scan', () => {
    const m = tiny();
    const scan = mambaScanFlopsPerToken(m.config);
    expect(scan).toBe(21 * 64 * 4 * 1); // 5376
    const f = trainFlopsPerToken(m.parameterCount),
      fs = trainFlopsPerToken(m.parameterCount, scan);
    expect(f).toBe(6 * 9728);
    expect(fs).toBe(6 * 9728 + 5376);
    // a 2-core CPU at 2.5 GHz with 2 FMA units of 512 bits: 2 × 2.5 × (2 × 16 × 2) = 320 GFLOP/s
    const peak = cpuPeakFrom(
      cpuinfo({ vendor: 'GenuineIntel', family: 6, model: 'Intel(R) Xeon(R) Gold 6354 CPU @ 2.50GHz', cores: 2, avx512: true }),
      null,
    );
    expect(peak.gflops).toBeCloseTo(320, 9);
    expect(peakGflopsAt(peak, 1)).toBeCloseTo(160, 9);
    expect(peakGflopsAt(peak, 8)).toBeCloseTo(320, 9); // never more than one core per thread
    expect(flopsFraction(1000, f, peakGflopsAt(peak, 2))).toBeCloseTo((1000 * 58_368) / 320e9, 15);
    expect(flopsFraction(1000, fs, peakGflopsAt(peak, 2))).toBeCloseTo((1000 * 63_744) / 320e9, 15);
    expect(flopsFraction(1000, f, 50)).toBeCloseTo((1000 * 58_368) / 50e9, 15); // of a 50 GFLOP/s GEMM peak
  });

  it('median with min and max', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(spread([4, 1, 2, 10])).toEqual({ median: 3, min: 1, max: 10 });
  });
});

/** A /proc/cpuinfo with `cores` processors (one per core). */
function cpuinfo(o: {
  vendor: string;
  family: number;
  model: string;
  cores: number;
  avx512?: boolean;
  fma?: boolean;
  mhz?: number;
}): string {
  const flags = [
    'fpu',
    'sse4_2',
    'avx',
    'avx2',
    ...(o.fma === false ? [] : ['fma']),
    ...(o.avx512 ? ['avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni'] : []),
  ];
  return (
    Array.from({ length: o.cores }, (_, i) =>
      [
        `processor\t: ${i}`,
        `vendor_id\t: ${o.vendor}`,
        `cpu family\t: ${o.family}`,
        `model name\t: ${o.model}`,
        `cpu MHz\t\t: ${o.mhz ?? 2500}`,
        'physical id\t: 0',
        `core id\t\t: ${i}`,
        `cpu cores\t: ${o.cores}`,
        `flags\t\t: ${flags.join(' ')}`,
      ].join('\n'),
    ).join('\n\n') + '\n'
  );
}

describe('CPU peak', () => {
  it('detects vector width, cores and clock, and says what it assumed', () => {
    // this machine's kind: an AMD EPYC (Zen 5, family 26) with AVX-512, 2 vCPUs, no cpufreq, no clock in the name
    const p = cpuPeakFrom(cpuinfo({ vendor: 'AuthenticAMD', family: 26, model: 'AMD EPYC', cores: 2, avx512: true, mhz: 2596.122 }), null);
    expect(p).toMatchObject({ cores: 2, vector_bits: 512, datapath_bits: 512, fma_units: 2, flops_per_cycle: 64 });
    expect(p.ghz).toBeCloseTo(2.596122, 9);
    expect(p.gflops).toBeCloseTo(2 * 2.596122 * 64, 9);
    expect(p.isa).toEqual(['SSE4.2', 'AVX', 'AVX2', 'FMA', 'AVX-512F', 'AVX-512BW', 'AVX-512VL', 'AVX-512 VNNI']);
    expect(p.detected.join('\n')).toMatch(/512 bits \(avx512f[\s\S]*2 physical cores[\s\S]*cpu MHz/);
    expect(p.assumed.join('\n')).toMatch(/2 FMA units per core, 512-bit datapath: AMD family 26/);
    // Zen 4 runs AVX-512 on 256-bit units; cpufreq's maximum wins over the reported clock
    const z4 = cpuPeakFrom(
      cpuinfo({ vendor: 'AuthenticAMD', family: 25, model: 'AMD EPYC 9654 96-Core Processor', cores: 4, avx512: true }),
      '3700000\n',
    );
    expect(z4).toMatchObject({ vector_bits: 512, datapath_bits: 256, flops_per_cycle: 32, ghz: 3.7 });
    expect(z4.detected.join('\n')).toMatch(/cpuinfo_max_freq/);
    // no FMA: one multiply and one add pipe of 256 bits
    const old = cpuPeakFrom(
      cpuinfo({ vendor: 'GenuineIntel', family: 6, model: 'Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz', cores: 1, fma: false }),
      null,
    );
    expect(old).toMatchObject({ fma_units: 1, flops_per_cycle: 16, ghz: 2.6 });
  });

  it('counts physical cores, not SMT siblings', () => {
    const two = ['0', '1', '0', '1']
      .map((core, i) => `processor\t: ${i}\nphysical id\t: 0\ncore id\t\t: ${core}\ncpu cores\t: 2\nflags\t\t: avx2 fma`)
      .join('\n\n');
    expect(parseCpuInfo(two).cores).toBe(2);
  });
});

describe('interleaved peer rounds', () => {
  it('take the median of the per-round ratios, with min and max, and stop at a failing peer', () => {
    const c = new Comparisons(),
      skipped: Skipped[] = [];
    const mine = [10, 20, 12],
      theirs = [5, 5, 12]; // ratios 2, 4, 1
    let i = 0,
      order = '';
    runRounds(
      {
        rounds: 3,
        canContinue: () => true,
        what: 'peer',
        frugal: () => {
          order += 'f';
          return new Map([['decode', mine[i]]]);
        },
        peer: () => {
          order += 'p';
          return { tokS: new Map([['decode', theirs[i++]]]), detail: 'd', error: null };
        },
        key: (measure) => ({ name: 'llama.cpp', measure, precision: 'f32', threads: 1 }),
      },
      c,
      skipped,
    );
    expect(order).toBe('fpfpfp'); // interleaved
    const [e] = c.entries(() => 100);
    expect(e).toMatchObject({ rounds: 3, ratio: 2, ratio_min: 1, ratio_max: 4, tok_s: 5, tok_s_min: 5, tok_s_max: 12, frugal_tok_s: 12 });
    runRounds(
      {
        rounds: 3,
        canContinue: () => true,
        what: 'broken peer',
        frugal: () => new Map(),
        peer: () => ({ tokS: new Map(), detail: '', error: 'llama-bench failed: boom' }),
        key: (measure) => ({ name: 'pytorch', measure, precision: 'f32', threads: 1 }),
      },
      c,
      skipped,
    );
    expect(skipped).toEqual([{ section: 'peers', what: 'broken peer', reason: 'llama-bench failed: boom' }]);
  });

  it('gives a training peer its own MFU from its parameters', () => {
    const c = new Comparisons();
    runRounds(
      {
        rounds: 1,
        canContinue: () => true,
        what: 'pytorch train',
        frugal: () => new Map([['train', 2000]]),
        peer: () => ({ tokS: new Map([['train', 1000]]), detail: 'torch', error: null, parameters: 9728, scanFlopsPerToken: 5376 }),
        key: (measure) => ({ name: 'pytorch', measure, precision: 'f32', threads: 2 }),
      },
      c,
      [],
    );
    const [e] = c.entries((T) => 160 * T);
    expect(e.mfu).toBeCloseTo((1000 * 6 * 9728) / 320e9, 15);
    expect(e.mfu_with_scan).toBeCloseTo((1000 * (6 * 9728 + 5376)) / 320e9, 15);
  });
});

describe('llama.cpp peer records', () => {
  it('reads llama-bench JSON (median of its samples) and the build flags from CMakeCache.txt', () => {
    const out = `build: 4748 (c392e509)\n[{"build_commit": "c392e5094", "n_prompt": 128, "n_gen": 0, "avg_ts": 100, "samples_ts": [90, 120, 100]},
      {"build_commit": "c392e5094", "n_prompt": 0, "n_gen": 32, "avg_ts": 40.5}]`;
    expect(parseLlamaBench(out).map((t) => [t.nPrompt, t.nGen, t.tokS])).toEqual([
      [128, 0, 100],
      [0, 32, 40.5],
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'frugal-llama-'));
    try {
      mkdirSync(join(dir, 'bin'));
      writeFileSync(
        join(dir, 'CMakeCache.txt'),
        '// comment\nGGML_NATIVE:BOOL=ON\nCMAKE_BUILD_TYPE:STRING=Release\nGGML_CUDA:BOOL=OFF\nLLAMA_CURL:BOOL=OFF\nFOO:STRING=x\n',
      );
      expect(llamaCmakeFlags(join(dir, 'bin', 'llama-bench'))).toEqual({
        GGML_NATIVE: 'ON',
        CMAKE_BUILD_TYPE: 'Release',
        GGML_CUDA: 'OFF',
      });
      expect(llamaCmakeFlags(join(dir, 'elsewhere', 'x', 'llama-bench'))).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
