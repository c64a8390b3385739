import type { TrainOptions } from '../../src/train/trainer.js';

/** Small, fast training options for tests; override what a test is about. */
export function trainOptions(over: Partial<TrainOptions>): TrainOptions {
  return {
    arch: 'mamba',
    data: 'sotu',
    out: '',
    dModel: 32,
    layers: 2,
    dState: 8,
    seqLen: 32,
    batch: 4,
    steps: 20,
    lr: 3e-3,
    warmup: 5,
    minLr: 3e-4,
    weightDecay: 0.1,
    clip: 1,
    seed: 1,
    evalEvery: 0,
    evalWindows: 8,
    saveEvery: 0,
    valFraction: 0.05,
    kernels: 'wasm',
    threads: 1,
    resume: false,
    init: null,
    ...over,
  };
}
