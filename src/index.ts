/**
 * frugal as a library: load a checkpoint, generate text, compute logits, train, convert and
 * quantise checkpoints, all on the CPU in Node, with the energy figure of each call. The `frugal` command is a thin layer over these same
 * functions.
 *
 * ```ts
 * import { loadModel, generate } from 'frugal';
 * const model = loadModel('runs/demo');
 * const out = generate(model, 'The Congress', { maxTokens: 50, onText: (s) => process.stdout.write(s) });
 * console.log(out.energy.jPerToken, out.energy.kind);
 * ```
 *
 * Errors meant for people are {@link FrugalError}s: `exitCode` 2 for bad input (the message names
 * what, where and how to fix it), 1 for a failure while doing valid work.
 *
 * @packageDocumentation
 */
export { loadModel, Model } from './api/model.js';
export type { RunOptions, TextCodec } from './api/model.js';
export { generate, logits } from './api/generate.js';
export type { EnergyOptions, GenerateOptions, Generation, Logits } from './api/generate.js';
export { startTraining, train, trainOptions, TRAIN_DEFAULTS } from './api/train.js';
export type { Trained, TrainDefaults, Training, TrainSettings } from './api/train.js';
export type { StepReport, TrainHooks, TrainOptions } from './train/trainer.js';
export { convert, quantize } from './api/checkpoints.js';
export type { Converted, ConvertSettings, Quantized, QuantizeSettings } from './api/checkpoints.js';
export type { ConvertDtype, ConvertTarget } from './models/convert.js';
export { FrugalError, StoppedError } from './io/errors.js';
export { TokenIdError } from './io/tokenids.js';
export type { StreamDecoder, Tokenizer } from './io/tokenizer.js';
export type { EnergyKind, EnergyReport } from './energy/index.js';
export { formatJPerToken } from './energy/index.js';
export type { KernelKind } from './kernels/backend.js';
