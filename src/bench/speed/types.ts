/**
 * `frugal bench` (the speed benchmark): the JSON document it writes and the plans that
 * size it. Every array entry holds finite numbers; what could not be measured (no PyTorch, no
 * llama-bench, past the time budget) is listed under `skipped` with the reason instead.
 */
import type { BenchArch, BenchShape } from './arch.js';
import type { CpuPeak } from './cpu-peak.js';
import { MIN_ROUNDS } from './steady.js';
import type { Flag, RssMethod } from './steady.js';
import type { WasmKind } from '../../kernels/backend.js';

export type Precision = 'f32' | 'q8' | 'q4';
export const PRECISIONS: readonly Precision[] = ['f32', 'q8', 'q4'];

/**
 * Machine ceilings measured with the project's own SIMD kernels, at one thread count: the median
 * pass with min and max. Fractions of a ceiling (bound_fraction, of_gemm_peak) use its max, or,
 * where an entry has `interleaved`, the ceiling measured in alternation with the figure.
 */
export interface MachinePoint {
  threads: number;
  /** Streaming read over `bandwidth_bytes` with the wasm `readBandwidth` kernel (read_streams streams per thread), GB/s (1e9). */
  bandwidth_gbs: number;
  bandwidth_gbs_min: number;
  bandwidth_gbs_max: number;
  /** Streams per thread of the read: the fastest of 2, 4, 8 and 16 in a probe (absent in documents from before the probe). */
  read_streams?: number;
  /** matmulNTP4 (weights in panels) at gemm_shape (M = N = K), GFLOP/s: frugal's measured GEMM peak. */
  gemm_gflops: number;
  gemm_gflops_min: number;
  gemm_gflops_max: number;
}

export interface MachineSection extends MachinePoint {
  cpu: string;
  /** Vector and matrix extensions in the CPU flags (AVX2, AVX-512F, AVX-512 VNNI …). */
  isa: string[];
  logical_cpus: number;
  node: string;
  v8: string;
  /** The CPU's theoretical float32 peak and how it was found (cpu-peak.ts): MFU is measured against it. */
  cpu_peak: CpuPeak;
  /** Share of all CPUs other processes kept busy just before the run (0.5 s) and during it: every figure drops with it. */
  other_busy_before: number;
  other_busy_during: number;
  bandwidth_bytes: number;
  gemm_shape: number;
  /** Every thread count measured (the top-level figures are the all-threads one). */
  by_threads: MachinePoint[];
  /** The same ceilings measured again at the end of the run (a move between the two is flagged). */
  after?: MachinePoint[];
  /** How peak_rss_bytes was read: per figure (VmHWM reset before each) or the process's peak so far. */
  rss_method?: RssMethod;
}

/**
 * A fraction of a machine ceiling measured in alternation with it (steady.ts interleavedFraction):
 * `rounds` rounds of the figure, each between two measurements of the ceiling, each over the
 * higher of the two. When present, the entry's fraction field is its median.
 */
export interface Interleaved {
  ceiling: 'read bandwidth' | 'GEMM peak';
  median: number;
  min: number;
  max: number;
  rounds: number;
}

/** Tokens per second: the median timed call, with the slowest and the fastest. */
export interface Rate {
  tok_s: number;
  tok_s_min: number;
  tok_s_max: number;
  /** Peak resident memory of the process while this figure was measured (machine.rss_method). */
  peak_rss_bytes?: number;
}

export interface DecodeEntry extends Rate {
  model: string;
  precision: Precision;
  threads: number;
  /** Bytes of weights read per decoded token (the whole model: the tied head reads the embedding once). */
  weight_bytes_per_token: number;
  /** bandwidth_gbs_max at these threads ÷ weight_bytes_per_token. */
  bound_tok_s: number;
  /**
   * tok_s ÷ bound_tok_s; where `interleaved` is present, its median instead: decode rounds each
   * between two reads of a buffer of weight_bytes_per_token, at the end of the run.
   */
  bound_fraction: number;
  interleaved?: Interleaved;
}

export interface PrefillEntry extends Rate {
  model: string;
  precision: Precision;
  threads: number;
  prompt_tokens: number;
  /** tok_s ÷ decode tok_s at the same precision and threads: a prefill against as many single steps. */
  over_steps: number;
  /** Model FLOPs per prompt token: 2 × the projections' parameters, plus the head once per prompt (2·V·D ÷ L). */
  flops_per_token?: number;
  /**
   * tok_s × flops_per_token ÷ frugal's measured GEMM peak (gemm_gflops_max at these threads); where
   * `interleaved` is present (f32), its median instead: prefill rounds each between two GEMM probes.
   */
  of_gemm_peak?: number;
  interleaved?: Interleaved;
}

export interface TrainEntry extends Rate {
  model: string;
  threads: number;
  batch: number;
  seq_len: number;
  parameters: number;
  /** 6 × parameters (matmul FLOPs of forward and backward). */
  flops_per_token: number;
  /** The same with the recurrence's FLOPs added (Mamba-1: 7 forward + 14 backward per (token, ED, N, layer); others: arch.ts). */
  flops_per_token_with_scan: number;
  /** Model-FLOP utilisation: tok_s × flops_per_token ÷ the CPU's theoretical peak at these threads. */
  mfu: number;
  mfu_with_scan: number;
  /** The same FLOPs as a fraction of frugal's measured GEMM peak (gemm_gflops_max at these threads): not MFU. */
  of_gemm_peak: number;
  of_gemm_peak_with_scan: number;
}

export interface StreamsEntry {
  model: string;
  precision: Precision;
  streams: number;
  threads: number;
  /** The median timed step of all streams, with min and max. */
  aggregate_tok_s: number;
  aggregate_tok_s_min: number;
  aggregate_tok_s_max: number;
  /** aggregate_tok_s ÷ the one-stream aggregate at the same threads. */
  over_one: number;
  /**
   * aggregate_tok_s × 2 × parameters ÷ frugal's measured GEMM peak at these threads: the fraction of
   * the compute bound; where `interleaved` is present, its median instead (steps between GEMM probes).
   */
  of_compute_bound?: number;
  interleaved?: Interleaved;
  peak_rss_bytes?: number;
}

export interface KernelEntry {
  name: string;
  shape: string;
  wasm_ms: number;
  ref_ms: number;
  /** Speed-up of the wasm SIMD kernel over its TypeScript twin (ref time ÷ wasm time), one thread. */
  wasm_over_ref: number;
}

/**
 * One figure of one kernel build (`--kernels wasm,wasm-relaxed`), timed in interleaved rounds with
 * the other builds listed (builds.ts): the median round with min and max.
 */
export interface BuildEntry {
  /** The kernel build: wasm (plain SIMD, the default) or wasm-relaxed (the opt-in relaxed-SIMD build). */
  kernels: WasmKind;
  /** 'gemm' (matmulNTP4 at machine.gemm_shape), 'decode' (batch 1) or 'prefill-L' (an L-token prompt). */
  measure: string;
  precision: Precision;
  threads: number;
  rounds: number;
  unit: 'GFLOP/s' | 'tok/s';
  value: number;
  value_min: number;
  value_max: number;
  /** The median of this build's value ÷ the first build's, round by round: above 1, this build is faster. */
  over_first: number;
}

/**
 * A peer against frugal, measured in interleaved rounds on the same machine in the same run: each
 * round times frugal, then the peer, back to back, so both see the same load from other processes.
 * Figures are medians over the rounds with min and max; the ratio is the median of the per-round
 * ratios.
 */
export interface PeerEntry {
  name: 'llama.cpp' | 'pytorch';
  /** 'decode', 'prefill-128', 'train' */
  measure: string;
  precision: Precision;
  threads: number;
  rounds: number;
  tok_s: number;
  tok_s_min: number;
  tok_s_max: number;
  frugal_tok_s: number;
  frugal_tok_s_min: number;
  frugal_tok_s_max: number;
  /** frugal ÷ peer: above 1 means frugal is faster. */
  ratio: number;
  ratio_min: number;
  ratio_max: number;
  /** The peer's version and build (e.g. its BLAS), the GGUF type. */
  detail: string;
  /** Training peers: the peer's own MFU against the same CPU peak (6 × its parameters, and with its scan). */
  mfu?: number;
  mfu_with_scan?: number;
}

/** How each peer was built, so that its columns can be traced and rebuilt (docs/BENCHMARKS.md). */
export interface PeerBuilds {
  llama_cpp?: { binary: string; commit: string; build_number: number; cpu_info: string; backends: string; cmake: Record<string, string> };
  pytorch?: { python: string; torch: string; blas: string };
}

export interface Skipped {
  section: string;
  what: string;
  reason: string;
}

export interface SpeedDoc {
  command: string;
  mode: SpeedMode;
  /** The architecture of the decode and training models (`--arch`; mamba: Mamba-1). */
  arch: BenchArch;
  /** The decode model's hybrid layer list (hybrid only). */
  layer_types?: string[];
  /** Bytes of one decode stream's recurrent state (conv + SSM state; attention layers' KV cache as first allocated; it grows with the context). */
  state_bytes_per_stream: number;
  seconds: number;
  machine: MachineSection;
  decode: DecodeEntry[];
  prefill: PrefillEntry[];
  train: TrainEntry[];
  streams: StreamsEntry[];
  kernels: KernelEntry[];
  /** The kernel build every section above ran on (`--kernels`, its first build): wasm or wasm-relaxed. */
  kernel_build?: WasmKind;
  /** With more than one build in `--kernels`: every build on the same figures (builds.ts). */
  builds?: BuildEntry[];
  peers: PeerEntry[];
  peer_builds: PeerBuilds;
  skipped: Skipped[];
  /** What the run should not be trusted for (steady.ts): unsteady, above a bound, a moved ceiling, too few rounds, a peer anomaly. */
  flags?: Flag[];
}

export type SpeedMode = 'full' | 'quick' | 'tiny';

/** How much of everything one run measures. */
export interface SpeedPlan {
  mode: SpeedMode;
  /** Thread counts of decode, prefill, train and the machine ceilings: 1 and all. */
  threads: number[];
  arch: BenchArch;
  decodeName: string;
  decodeModel: BenchShape;
  trainName: string;
  trainModel: BenchShape;
  trainBatch: number;
  trainSeq: number;
  /** Timed steps at least, and seconds at least, of every timed loop (after its warm-up). */
  minSeconds: number;
  decodeTokens: number;
  trainSteps: number;
  prefillLens: number[];
  /** Prompt lengths prefilled at every precision; the others at f32 only. */
  prefillAllPrecisions: number[];
  streams: number[];
  /** Thread counts of the streams section. */
  streamThreads: number[];
  bandwidthBytes: number;
  gemmSize: number;
  kernelSeconds: number;
  /** Small kernel shapes (tests). */
  kernelTiny: boolean;
  /** Seconds the run aims to stay under: optional measurements are skipped once it runs short. */
  budgetSeconds: number;
  /** Interleaved rounds (frugal, then the peer) of every peer comparison, and seconds of frugal's timing in each. */
  peerRounds: number;
  roundSeconds: number;
}

/** mamba-130m's shapes (state-spaces/mamba-130m) with random weights. */
const MAMBA_130M: BenchShape = {
  dModel: 768,
  nLayer: 24,
  dState: 16,
  dInner: 1536,
  dtRank: 48,
  vocabSize: 50280,
  tieWordEmbeddings: true,
};
/** mamba2-130m's shapes (state-spaces/mamba2-130m): Mamba-3 and the hybrid's Mamba-2 layers take the same. */
const MAMBA2_130M: BenchShape = { dModel: 768, nLayer: 24, dState: 128, headDim: 64, expand: 2, nGroups: 1, vocabSize: 50280 };
/** Bamba's pattern at 24 layers: Mamba-2 everywhere but three attention layers. */
const HYBRID_24 = Array.from({ length: 24 }, (_, i) => (i % 8 === 4 ? 'attention' : 'mamba2'));

/** Per architecture: the decode shape, the d256 training shape, and the tiny pair (tests). */
function shapes(arch: BenchArch): { name: string; decode: BenchShape; train: BenchShape; tiny: BenchShape; tinyTrain: BenchShape } {
  if (arch === 'mamba')
    return {
      name: 'mamba-130m-shape',
      decode: MAMBA_130M,
      train: { dModel: 256, nLayer: 4, dState: 16, vocabSize: 256 },
      tiny: { dModel: 64, nLayer: 2, dState: 16, vocabSize: 512 },
      tinyTrain: { dModel: 32, nLayer: 2, dState: 8, vocabSize: 256 },
    };
  const layers = (n: number) => (arch === 'hybrid' ? { layerTypes: n === 24 ? HYBRID_24 : ['mamba2', 'attention'] } : {});
  return {
    name: `${arch}-130m-shape`,
    decode: { ...MAMBA2_130M, ...layers(24) },
    train: { dModel: 256, nLayer: arch === 'hybrid' ? 2 : 4, dState: 64, headDim: 64, vocabSize: 256, ...layers(2) },
    tiny: { dModel: 64, nLayer: 2, dState: 16, headDim: 32, vocabSize: 512, ...layers(2) },
    tinyTrain: { dModel: 32, nLayer: 2, dState: 8, headDim: 16, vocabSize: 256, ...layers(2) },
  };
}

/** The plan of each mode for a machine with `all` logical CPUs. */
export function speedPlan(mode: SpeedMode, all: number, arch: BenchArch = 'mamba'): SpeedPlan {
  const threads = [...new Set([1, all])];
  const sh = shapes(arch),
    suffix = arch === 'mamba' ? '' : `-${arch}`;
  if (mode === 'tiny') {
    return {
      mode,
      threads,
      arch,
      decodeName: `tiny-d64-l2-v512${suffix}`,
      decodeModel: sh.tiny,
      trainName: `tiny-d32-l2-v256${suffix}`,
      trainModel: sh.tinyTrain,
      trainBatch: 2,
      trainSeq: 16,
      minSeconds: 0.02,
      decodeTokens: 2,
      trainSteps: 1,
      prefillLens: [8, 32],
      prefillAllPrecisions: [8, 32],
      streams: [1, 2, 4],
      streamThreads: [all],
      bandwidthBytes: 16 * 2 ** 20,
      gemmSize: 64,
      kernelSeconds: 0.005,
      kernelTiny: true,
      budgetSeconds: 600,
      peerRounds: 2,
      roundSeconds: 0.01,
    };
  }
  const quick = mode === 'quick';
  return {
    mode,
    threads,
    arch,
    decodeName: sh.name,
    decodeModel: sh.decode,
    trainName: `d256-l${sh.train.nLayer}-v256${suffix}`,
    trainModel: sh.train,
    trainBatch: 8,
    trainSeq: 256,
    minSeconds: quick ? 0.5 : 3,
    decodeTokens: quick ? 8 : 32,
    trainSteps: quick ? 1 : 3,
    prefillLens: [128, 1024],
    prefillAllPrecisions: quick ? [128] : [128, 1024],
    streams: [1, 8, 32],
    streamThreads: quick ? [all] : threads,
    bandwidthBytes: 2 ** 30,
    gemmSize: quick ? 768 : 1024,
    kernelSeconds: quick ? 0.05 : 0.25,
    kernelTiny: false,
    budgetSeconds: quick ? 80 : 540,
    peerRounds: quick ? 3 : MIN_ROUNDS,
    roundSeconds: quick ? 0.3 : 1,
  };
}
