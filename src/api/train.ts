import { runToEnd, startTraining as startRun } from '../train/trainer.js';
import type { StepReport, TrainHooks, TrainOptions, TrainingRun } from '../train/trainer.js';
import { startEnergy } from '../energy/index.js';
import type { EnergyReport } from '../energy/index.js';
import { Model } from './model.js';
import { defaultDState } from '../models/factory.js';
import type { EnergyOptions } from './generate.js';

/**
 * The settings of a training run. Every field is optional except `out`; the defaults are
 * {@link TRAIN_DEFAULTS} (those of `frugal train`). With `resume`, the settings not given here
 * come from the saved run.
 */
export type TrainSettings = Partial<Omit<TrainOptions, 'explicit' | 'out'>> &
  EnergyOptions & {
    /** The checkpoint folder to write (Hugging Face layout, plus the optimiser state to resume from). */
    out: string;
  };

/** The training settings that have a fixed default (`minLr` defaults to `lr / 10`, `heads` to a head size near 64). */
export type TrainDefaults = Readonly<Omit<TrainOptions, 'out' | 'minLr' | 'heads' | 'explicit'>>;

/** The defaults of every training setting, those of `frugal train` (which runs on every core: `threads` here is 1). */
export const TRAIN_DEFAULTS: TrainDefaults = {
  arch: 'mamba',
  data: 'sotu',
  dModel: 128,
  layers: 2,
  dState: 16,
  seqLen: 128,
  batch: 8,
  steps: 300,
  lr: 2e-3,
  warmup: 30,
  weightDecay: 0.1,
  clip: 1.0,
  seed: 1,
  evalEvery: 0,
  evalWindows: 64,
  saveEvery: 100,
  valFraction: 0.05,
  kernels: 'wasm',
  threads: 1,
  resume: false,
  force: false,
  init: null,
};

/** The full options of a run: `settings` over the defaults; the settings given are the explicit ones (see TrainOptions.explicit). */
export function trainOptions(settings: TrainSettings): TrainOptions {
  const given = Object.fromEntries(Object.entries(settings).filter(([k, v]) => v !== undefined && k !== 'tdp'));
  const lr = settings.lr ?? TRAIN_DEFAULTS.lr;
  // the state size's default is the architecture's (Mamba-1 16, Mamba-2/-3 128); a hybrid is as deep as its layer list
  const arch = settings.arch ?? TRAIN_DEFAULTS.arch;
  const depth = settings.layerTypes !== undefined ? { layers: settings.layerTypes.split(',').length } : {};
  return {
    ...TRAIN_DEFAULTS,
    dState: defaultDState(arch),
    ...depth,
    minLr: lr / 10,
    ...given,
    out: settings.out,
    explicit: Object.keys(given),
  };
}

/** What a finished run reached and what it cost. */
export interface Trained {
  /** The trained model, ready for {@link generate} (also saved in `out`). */
  model: Model;
  /** Number of parameters. */
  parameters: number;
  /** Parameters the run trained: all of them, or a LoRA run's adapter alone. */
  trainable: number;
  /** The step reached (a resumed run counts the steps of earlier sessions too). */
  steps: number;
  /** Validation loss at the end, in bits per byte (bits per token ÷ bytes per token). */
  valBpb: number;
  /** The training text's unigram byte entropy: a model that learnt nothing but byte frequencies scores this. */
  unigramBpb: number;
  /** Training tokens per second of this session. */
  tokensPerSecond: number;
  /** Tokens the energy figure covers: this session's, after the first step when more steps followed (warm-up). */
  tokens: number;
  /** Energy of this session (warm-up excluded when `warmUpExcluded`); `energy.kind` says measured or estimated. */
  energy: EnergyReport;
  /** Whether the first step (compilation, first allocations) was left out of `tokens` and `energy`. */
  warmUpExcluded: boolean;
}

/** A training run in progress, one optimiser step at a time (so a caller can stop it between steps). */
export interface Training {
  /** The options in force (a resumed run's are the saved ones). */
  readonly options: TrainOptions;
  /** The last step taken (a resumed run starts at its saved step; 0 before the first). */
  readonly reached: number;
  /** The step of the checkpoint on disk (-1: none written by this run yet). */
  readonly savedStep: number;
  /** Whether every step of the schedule is taken. */
  done(): boolean;
  /** One optimiser step, with its validation and periodic save. */
  step(): void;
  /** Save a checkpoint of the step reached (for example before stopping early). */
  save(): void;
  /** Final validation and save; stops the energy meter. */
  finish(): Trained;
  /** Release the output folder (its lock) and the energy meter. Always call it, also after an error. */
  close(): void;
}

/**
 * Prepare a run: check `out` and take its lock, then load (or resume) the corpus, the model and
 * the optimiser. Step it with `step()` until `done()`, then `finish()`; always `close()`, also
 * after an error (it releases the lock).
 *
 * @throws FrugalError when `out` may not be written, a setting is out of range or contradicts a resumed run
 */
export function startTraining(settings: TrainSettings, hooks: TrainHooks = {}): Training {
  const energy = startEnergy({ tdp: settings.tdp });
  for (const n of energy.notes) hooks.log?.(`energy: ${n}; figures are estimates`);
  // the first step (JIT compilation, first allocations) is warm-up, excluded when more steps follow
  let warmStep = -1;
  const onStep = (s: StepReport) => {
    if (warmStep < 0 && s.step < s.steps) {
      warmStep = s.step;
      energy.markWarm();
    }
    energy.poll();
    hooks.onStep?.(s);
  };
  let metering = true;
  const stopMeter = (tokens: number) => {
    metering = false;
    return energy.stop(tokens);
  };
  let run: TrainingRun;
  try {
    run = startRun(trainOptions(settings), { ...hooks, onStep });
  } catch (e) {
    stopMeter(0); // releases its samplers
    throw e;
  }
  return {
    get options() {
      return run.options;
    },
    get reached() {
      return run.state.step;
    },
    get savedStep() {
      return run.savedStep;
    },
    done: () => run.done(),
    step: () => run.step(),
    save: () => run.save(),
    close: () => {
      run.close();
      if (metering) stopMeter(0);
    },
    finish: (): Trained => {
      const r = run.finish();
      const { batch, seqLen, out } = run.options;
      // tokens of this session only (a resumed run's tokensSeen counts earlier sessions too)
      const tokens = warmStep < 0 ? r.sessionTokens : (r.state.step - warmStep) * batch * seqLen;
      return {
        model: new Model(r.model, out),
        parameters: r.parameters,
        trainable: r.trainable,
        steps: r.state.step,
        valBpb: r.valBpb,
        unigramBpb: r.unigramBpb,
        tokensPerSecond: r.trainTokPerSec,
        tokens,
        energy: stopMeter(tokens),
        warmUpExcluded: warmStep >= 0,
      };
    },
  };
}

/**
 * Train (or resume) a language model to the end and save it in `settings.out`: AdamW, warm-up
 * then cosine decay, a held-out tail scored in bits per byte; seeded, so the same settings on the
 * same machine give the same numbers.
 *
 * @throws FrugalError when `out` may not be written, a setting is out of range or contradicts a resumed run
 */
export function train(settings: TrainSettings, hooks: TrainHooks = {}): Trained {
  return runToEnd(startTraining(settings, hooks));
}
