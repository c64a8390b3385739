import { describe, expect, it } from 'vitest';
import { Comparisons, runRounds } from '../../src/bench/speed/compare.js';
import type { PeerRound } from '../../src/bench/speed/peers.js';
import {
  ceilingFlags,
  interleavedFraction,
  peerAnomalies,
  relativeSpread,
  runInterleaved,
  steadyFlags,
  withPeakRss,
} from '../../src/bench/speed/steady.js';
import { speedTargets } from '../../src/bench/speed/table.js';
import type { MachinePoint, PeerEntry, Skipped, SpeedDoc } from '../../src/bench/speed/types.js';

/**
 * The steady-measurement logic on synthetic timings: interleaved rounds (order, medians, ratios),
 * every flag (spread, bound, moved ceilings, too few rounds, peer anomalies) and the targets'
 * verdicts. No timing is measured here.
 */
const point = (threads: number, bw: number, gemm: number, spreadFrac = 0): MachinePoint => ({
  threads,
  bandwidth_gbs: bw,
  bandwidth_gbs_min: bw * (1 - spreadFrac / 2),
  bandwidth_gbs_max: bw * (1 + spreadFrac / 2),
  gemm_gflops: gemm,
  gemm_gflops_min: gemm,
  gemm_gflops_max: gemm,
});

const peer = (o: Partial<PeerEntry> & Pick<PeerEntry, 'name' | 'measure' | 'precision' | 'threads' | 'tok_s' | 'ratio'>): PeerEntry => ({
  rounds: 5,
  tok_s_min: o.tok_s,
  tok_s_max: o.tok_s,
  frugal_tok_s: o.tok_s * o.ratio,
  frugal_tok_s_min: o.tok_s * o.ratio,
  frugal_tok_s_max: o.tok_s * o.ratio,
  ratio_min: o.ratio,
  ratio_max: o.ratio,
  detail: 'synthetic',
  ...o,
});

/** A steady two-thread-count document: nothing in it deserves a flag. */
function doc(): SpeedDoc {
  const by = [point(1, 20, 30), point(2, 30, 58)];
  return {
    command: 'synthetic',
    mode: 'full',
    arch: 'mamba',
    state_bytes_per_stream: 1,
    seconds: 1,
    machine: {
      ...by[1],
      cpu: 'synthetic',
      isa: [],
      logical_cpus: 2,
      node: 'v20',
      v8: '11',
      cpu_peak: {
        model: 'synthetic',
        isa: [],
        cores: 2,
        ghz: 3.7,
        vector_bits: 512,
        datapath_bits: 256,
        fma_units: 2,
        flops_per_cycle: 32,
        gflops: 236,
        detected: [],
        assumed: [],
      },
      other_busy_before: 0,
      other_busy_during: 0,
      bandwidth_bytes: 1,
      gemm_shape: 1024,
      by_threads: by,
      after: [point(1, 21, 29), point(2, 29, 57)],
    },
    decode: [
      {
        model: 'm',
        precision: 'f32',
        threads: 2,
        tok_s: 50,
        tok_s_min: 49,
        tok_s_max: 52,
        weight_bytes_per_token: 5e8,
        bound_tok_s: 60,
        bound_fraction: 50 / 60,
      },
    ],
    prefill: [1, 2].flatMap((T) =>
      (['f32', 'q8', 'q4'] as const).map((precision) => ({
        model: 'm',
        precision,
        threads: T,
        prompt_tokens: 128,
        tok_s: precision === 'f32' ? 100 * T : 120 * T,
        tok_s_min: precision === 'f32' ? 99 * T : 119 * T,
        tok_s_max: precision === 'f32' ? 101 * T : 121 * T,
        over_steps: 3,
        flops_per_token: 2e8,
        of_gemm_peak: precision === 'f32' ? 0.9 : 1,
      })),
    ),
    train: [],
    streams: [
      {
        model: 'm',
        precision: 'f32',
        streams: 32,
        threads: 2,
        aggregate_tok_s: 150,
        aggregate_tok_s_min: 148,
        aggregate_tok_s_max: 152,
        over_one: 5,
        of_compute_bound: 0.6,
      },
    ],
    kernels: [],
    peers: [
      peer({ name: 'llama.cpp', measure: 'decode', precision: 'f32', threads: 1, tok_s: 40, ratio: 1.1 }),
      peer({ name: 'llama.cpp', measure: 'decode', precision: 'f32', threads: 2, tok_s: 45, ratio: 1.05 }),
    ],
    peer_builds: {},
    skipped: [],
  };
}

describe('interleaved rounds', () => {
  it('alternate frugal and the peer, and report medians with min and max of values and of per-round ratios', () => {
    const order: string[] = [];
    const mine = [10, 12, 11, 30, 9],
      theirs = [10, 10, 10, 10, 10];
    let i = 0,
      j = 0;
    const into = new Comparisons(),
      skipped: Skipped[] = [];
    runRounds(
      {
        rounds: 5,
        canContinue: () => true,
        frugal: () => {
          order.push('A');
          return new Map([['decode', mine[i++]]]);
        },
        peer: (): PeerRound => {
          order.push('B');
          return { tokS: new Map([['decode', theirs[j++]]]), detail: 'x', error: null };
        },
        key: (measure) => ({ name: 'llama.cpp', measure, precision: 'f32', threads: 1 }),
        what: 'synthetic',
      },
      into,
      skipped,
    );
    expect(order.join('')).toBe('ABABABABAB');
    const [e] = into.entries(() => 1);
    expect(e.rounds).toBe(5);
    expect([e.frugal_tok_s, e.frugal_tok_s_min, e.frugal_tok_s_max]).toEqual([11, 9, 30]);
    expect([e.ratio, e.ratio_min, e.ratio_max]).toEqual([1.1, 0.9, 3]);
    expect(skipped).toEqual([]);
  });

  it('stop when the budget runs short, saying which rounds were skipped', () => {
    const into = new Comparisons(),
      skipped: Skipped[] = [];
    let rounds = 0;
    runRounds(
      {
        rounds: 5,
        canContinue: () => rounds < 2,
        frugal: () => {
          rounds++;
          return new Map([['decode', 1]]);
        },
        peer: () => ({ tokS: new Map([['decode', 1]]), detail: '', error: null }),
        key: (measure) => ({ name: 'pytorch', measure, precision: 'f32', threads: 1 }),
        what: 'pytorch',
      },
      into,
      skipped,
    );
    expect(rounds).toBe(2);
    expect(skipped[0].what).toBe('pytorch: rounds 3–5');
  });
});

describe('fractions of a ceiling measured in alternation with it', () => {
  it('a load that comes and goes moves the figure and its ceiling together: the fraction holds', () => {
    // the machine speeds up from 50 to 80 and drops back; the figure runs at 0.9 of the machine it had
    const ceilings = [50, 50, 80, 80, 80, 50];
    const figures = [45, 72, 72, 72, 45]; // the last round saw the drop: over the higher ceiling, 45 ÷ 80
    const x = interleavedFraction(figures, ceilings);
    expect(x.rounds).toBe(5);
    expect(x.median).toBeCloseTo(0.9, 12);
    expect(x.max).toBeCloseTo(0.9, 12);
    expect(x.min).toBeCloseTo(45 / 80, 12);
    // against the ceiling of the start the same figures read 72 ÷ 50 = 144%: "above a physical bound"
    expect(Math.max(...figures) / ceilings[0]).toBeCloseTo(1.44, 12);
    // a steady machine gives the figure's own fraction exactly
    const y = interleavedFraction([45, 45, 45], [50, 50, 50, 50]);
    expect([y.min, y.median, y.max]).toEqual([0.9, 0.9, 0.9]);
  });

  it('runs ceiling, figure, …, ceiling in that order, and refuses a mismatched count', () => {
    const calls: string[] = [];
    let c = 0;
    const figure = () => {
      calls.push('figure');
      return 30;
    };
    const ceiling = () => {
      calls.push('ceiling');
      return [40, 60, 50, 30][c++];
    };
    const x = runInterleaved(3, figure, ceiling);
    expect(calls).toEqual(['ceiling', 'figure', 'ceiling', 'figure', 'ceiling', 'figure', 'ceiling']);
    expect([x.min, x.median, x.max].map((v) => +v.toFixed(12))).toEqual([0.5, 0.5, 0.6]); // 30 ÷ 60, 30 ÷ 60, 30 ÷ 50
    expect(() => interleavedFraction([1, 2], [1, 2])).toThrow(/2 figures need 3 ceilings/);
    expect(() => interleavedFraction([], [1])).toThrow(/0 figures need 1 ceilings/);
  });

  it('an interleaved fraction is judged on its own rounds: their spread and the bound, not the start ceiling', () => {
    const d = doc();
    d.machine.after = [point(1, 20, 30), point(2, 30, 40)]; // the start ceilings drifted
    d.decode[0].tok_s_min = 30; // and the decode itself swung with the machine
    d.decode[0].interleaved = { ceiling: 'read bandwidth', median: 0.88, min: 0.86, max: 0.9, rounds: 5 };
    d.decode[0].bound_fraction = 0.88;
    d.streams[0].interleaved = { ceiling: 'GEMM peak', median: 0.72, min: 0.6, max: 0.75, rounds: 5 };
    d.streams[0].of_compute_bound = 0.72;
    d.flags = steadyFlags(d);
    expect(d.flags.map((f) => `${f.kind}: ${f.figure}`)).toContain('spread: 32 streams 2 threads (of its ceiling)');
    const t = speedTargets(d);
    expect(t).toContain('decode f32 2 threads of the bandwidth bound: 88% (goal 85%) met');
    expect(t).toContain('32 streams 2 threads of the compute bound: 72% (goal 70%) not judged: spread');
    d.decode[0].interleaved.max = 1.1;
    d.decode[0].bound_fraction = 1.02;
    d.flags = steadyFlags(d);
    expect(speedTargets(d)).toContain('decode f32 2 threads of the bandwidth bound: 102% (goal 85%) not judged: spread, bound');
    // just short of the goal: a decimal shows the miss
    d.decode[0].interleaved = { ceiling: 'read bandwidth', median: 0.8494, min: 0.84, max: 0.86, rounds: 5 };
    d.decode[0].bound_fraction = 0.8494;
    d.flags = steadyFlags(d);
    expect(speedTargets(d)).toContain('decode f32 2 threads of the bandwidth bound: 84.9% (goal 85%) MISSED');
  });
});

describe('flags on synthetic documents', () => {
  it('a steady document has no flag and the targets give met and MISSED', () => {
    const d = doc();
    expect(steadyFlags(d)).toEqual([]);
    d.flags = [];
    const t = speedTargets(d);
    expect(t).toContain('decode f32 1 thread vs llama.cpp: 1.10× (goal 1.00×) met');
    expect(t).toContain('decode f32 2 threads of the bandwidth bound: 83% (goal 85%) MISSED');
    expect(t).toContain("prefill f32 128 tokens 2 threads of frugal's GEMM peak: 90% (goal 85%) met");
    expect(t).toContain('prefill q8 over f32 (128 tokens, 1 thread): 1.20× (goal 1.00×) met');
    expect(t).toContain('32 streams 2 threads of the compute bound: 60% (goal 70%) MISSED');
    expect(t).toContain('decode q8 vs llama.cpp: not measured');
  });

  it('a target whose figure, or the ceiling it is a fraction of, carries a flag is not judged', () => {
    const d = doc();
    d.decode[0].bound_fraction = 1.2;
    d.machine.after = [point(1, 20, 30), point(2, 30, 40)]; // the 2-thread GEMM peak fell by 31%
    d.flags = steadyFlags(d);
    const t = speedTargets(d);
    expect(t).toContain('decode f32 2 threads of the bandwidth bound: 120% (goal 85%) not judged: bound');
    expect(t).toContain("prefill f32 128 tokens 2 threads of frugal's GEMM peak: 90% (goal 85%) not judged: ceiling-drift");
    expect(t).toContain("prefill f32 128 tokens 1 thread of frugal's GEMM peak: 90% (goal 85%) met");
    expect(t).toContain('32 streams 2 threads of the compute bound: 60% (goal 70%) not judged: ceiling-drift');
  });

  it('relative spread: (max − min) ÷ median, flagged over 10%', () => {
    expect(relativeSpread(100, 95, 105)).toBeCloseTo(0.1, 12);
    const d = doc();
    d.decode[0].tok_s_min = 44; // (52 − 44) / 50 = 16%
    const f = steadyFlags(d);
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ kind: 'spread', figure: 'decode f32 2 threads' });
    d.decode[0].tok_s_min = 47; // 10%: not over
    expect(steadyFlags(d)).toEqual([]);
  });

  it('a figure above its physical bound is flagged', () => {
    const d = doc();
    d.decode[0].bound_fraction = 1.11; // the quick run that put decode at 111% of the bound
    d.streams[0].of_compute_bound = 1.2;
    const f = steadyFlags(d).filter((x) => x.kind === 'bound');
    expect(f.map((x) => x.figure)).toEqual(['decode f32 2 threads', '32 streams 2 threads']);
    // the f32 GEMM peak bounds f32 prefill only: a q4 prefill of integer dots may pass it
    for (const e of d.prefill) e.of_gemm_peak = e.precision === 'f32' ? 1.05 : 1.3;
    const g = steadyFlags(d).filter((x) => x.kind === 'bound' && x.figure.startsWith('prefill'));
    expect(g.map((x) => x.figure)).toEqual(['prefill f32 128 tokens 1 thread', 'prefill f32 128 tokens 2 threads']);
  });

  it('ceilings that moved between start and end, or a 2-thread GEMM peak below the 1-thread one, are flagged', () => {
    const before = [point(1, 20, 30), point(2, 30, 25)];
    const after = [point(1, 20, 30), point(2, 20, 26)];
    const f = ceilingFlags(before, after);
    expect(f.map((x) => x.figure)).toEqual(['read bandwidth 2 threads', 'GEMM peak 2 threads']);
    expect(f[1].detail).toMatch(/below the 1 thread peak/);
    expect(ceilingFlags([point(1, 20, 30)], [point(1, 19, 28)])).toEqual([]);
  });

  it('a peer slower at more threads is an anomaly: its ratio is not judged as a win', () => {
    const d = doc();
    d.peers[1] = peer({ name: 'llama.cpp', measure: 'decode', precision: 'f32', threads: 2, tok_s: 30, ratio: 1.6 });
    expect(peerAnomalies(d.peers).map((x) => x.figure)).toEqual(['llama.cpp decode f32 2 threads']);
    d.flags = steadyFlags(d);
    const t = speedTargets(d);
    expect(t).toContain('decode f32 2 threads vs llama.cpp: 1.60× (goal 1.00×) not judged: peer-anomaly');
    expect(t).toContain('decode f32 1 thread vs llama.cpp: 1.10× (goal 1.00×) met');
  });

  it('PyTorch on the reference BLAS is an anomaly: its ratios are not judged as wins', () => {
    const d = doc();
    d.peers.push(peer({ name: 'pytorch', measure: 'train', precision: 'f32', threads: 1, tok_s: 300, ratio: 10.4 }));
    d.peer_builds = { pytorch: { python: '/usr/bin/python3', torch: '1.13.0a0', blas: 'reference (netlib)' } };
    d.flags = steadyFlags(d);
    expect(d.flags.filter((f) => f.kind === 'peer-anomaly').map((f) => f.figure)).toEqual(['pytorch train f32 1 thread']);
    expect(speedTargets(d)).toContain('train f32 1 thread vs pytorch: 10.40× (goal 5.00×) not judged: peer-anomaly');
    // on OpenBLAS the same ratio counts
    d.peer_builds = { pytorch: { python: '/usr/bin/python3', torch: '1.13.0a0', blas: 'openblas-openmp' } };
    d.flags = steadyFlags(d);
    expect(speedTargets(d)).toContain('train f32 1 thread vs pytorch: 10.40× (goal 5.00×) met');
  });

  it('fewer than 5 alternations are flagged, and so are unsteady ratios', () => {
    const d = doc();
    d.peers[0].rounds = 3;
    d.peers[1].ratio_max = 1.3;
    const f = steadyFlags(d);
    expect(f.map((x) => `${x.kind}: ${x.figure}`)).toEqual([
      'rounds: llama.cpp decode f32 1 thread',
      'spread: llama.cpp decode f32 2 threads (ratio)',
    ]);
  });
});

describe('peak resident memory per figure', () => {
  it('sees memory a figure touches', () => {
    const bytes = 96 * 2 ** 20;
    const { value, peakRss } = withPeakRss(() => {
      const b = Buffer.alloc(bytes, 1); // written, so resident
      return b[bytes - 1];
    });
    expect(value).toBe(1);
    expect(peakRss).toBeGreaterThan(bytes);
  });
});
