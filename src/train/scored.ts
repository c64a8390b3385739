import { valueAndGrad } from '../ops/index.js';
import * as op from '../ops/ops.js';
import type { Tensor } from '../tensor/index.js';
import type { TrainableModel } from '../models/types.js';
import { startEnergy } from '../energy/index.js';
import type { EnergyReport } from '../energy/index.js';
import type { ScoredBatch } from '../tasks/types.js';
import { AdamW, learningRate } from './optim.js';

/**
 * Training on scored batches (the synthetic tasks): the loss is the mean cross-entropy at the
 * scored positions only, read from the full forward pass with a row gather. Everything else is the
 * text trainer's: AdamW, linear warm-up then cosine decay, clipping by global norm.
 */
export interface ScoredRecipe {
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  minLr: number;
  weightDecay: number;
  clip: number;
  /**
   * Warm-up, then a constant `lr` until the last `decaySteps` steps, which decay it to `minLr` by a
   * cosine (warmup-stable-decay). Absent: warm-up, then a cosine decay over all the rest.
   */
  decaySteps?: number;
}

/** The learning rate of step `step` (from 1) of recipe r. */
export function scheduledLr(step: number, r: ScoredRecipe): number {
  if (r.decaySteps === undefined) return learningRate(step, r.lr, r.warmup, r.steps, r.minLr);
  const stable = r.steps - Math.min(r.decaySteps, r.steps);
  if (step <= stable) return learningRate(step, r.lr, r.warmup, Infinity, r.lr);
  return learningRate(step - stable, r.lr, 0, r.steps - stable, r.minLr);
}

/** Mean over a window of steps: the learning curve. Accuracy is on each step's fresh batch, before its update. */
export interface CurvePoint {
  step: number;
  tokens: number;
  loss: number;
  accuracy: number;
}

export interface ScoredTrainResult {
  steps: number;
  tokens: number;
  seconds: number;
  energy: EnergyReport;
  curve: CurvePoint[];
  /** Why training ended before `recipe.steps` (a time budget), or null. */
  stoppedEarly: string | null;
}

/** Index of the largest of the first `among` values of row r of logits (rows, V); ties go to the lower id. */
export function argmaxRow(logits: ArrayLike<number>, r: number, V: number, among = V): number {
  let best = 0,
    bv = -Infinity;
  for (let j = 0; j < among; j++) {
    const x = logits[r * V + j];
    if (x > bv) {
      bv = x;
      best = j;
    }
  }
  return best;
}

/** Correct predictions (argmax over ids below `among`) of gathered logits (n, V) against targets. */
export function countCorrect(picked: ArrayLike<number>, targets: Int32Array, V: number, among = V): number {
  let c = 0;
  for (let i = 0; i < targets.length; i++) if (argmaxRow(picked, i, V, among) === targets[i]) c++;
  return c;
}

/** Logits (n, V) at the scored positions of a batch, differentiable. */
export function scoredLogits(model: TrainableModel, b: ScoredBatch): Tensor {
  const e = model.e;
  const logits = model.forward(b.ids, b.B, b.L); // (B, L, V)
  return op.gatherRows(e, logits, e.ids(b.rows)); // (n, V)
}

export interface ScoredHooks {
  /** After each step: step count, loss, tokens so far. */
  onStep?: (step: number, loss: number, tokens: number) => void;
  /** performance.now() time after which training stops (a budget); recorded in stoppedEarly. */
  deadline?: number;
  /** Steps per learning-curve point (default: steps / 40). */
  curveEvery?: number;
  /** Accuracy counts argmax over ids below this (default: the whole vocabulary). */
  among?: number;
}

/**
 * The steps a budgeted run can still take: at `msPerStep` (the recent time per step), the steps
 * that fit before the deadline, at most the recipe's. A time-budgeted run sizes its schedule (and
 * its length curriculum) by this, so that it still ends with its decay when the budget cuts it short.
 */
export function plannedSteps(recipeSteps: number, step: number, msPerStep: number, leftMs: number): number {
  if (!(msPerStep > 0)) return recipeSteps;
  const fit = Math.floor(Math.max(0, leftMs) / msPerStep);
  return Math.max(step + 1, Math.min(recipeSteps, step + fit));
}

/** Steps before a budgeted run trusts its step time (the first ones compile code and grow buffers). */
const PLAN_AFTER = 5;

/** The recipe with its schedule scaled to `planned` steps (warm-up kept, the decay phase scaled alike). */
export function scaledRecipe(r: ScoredRecipe, planned: number): ScoredRecipe {
  if (planned >= r.steps) return r;
  const f = planned / r.steps;
  return { ...r, steps: planned, ...(r.decaySteps !== undefined ? { decaySteps: Math.max(1, Math.round(r.decaySteps * f)) } : {}) };
}

/**
 * Train `model` for recipe.steps steps on batches from `next(step, planned)`; energy covers the
 * whole loop. With a deadline, `planned` (the steps the budget allows, see plannedSteps) sizes the
 * learning-rate schedule; without one it is recipe.steps throughout.
 */
export function trainScored(
  model: TrainableModel,
  r: ScoredRecipe,
  next: (step: number, planned: number) => ScoredBatch,
  hooks: ScoredHooks = {},
): ScoredTrainResult {
  const e = model.e,
    V = model.config.vocabSize;
  const opt = new AdamW(e, model.specs, model.params, { lr: r.lr, weightDecay: r.weightDecay });
  const every = Math.max(1, hooks.curveEvery ?? Math.round(r.steps / 40));
  const curve: CurvePoint[] = [];
  const energy = startEnergy();
  const t0 = performance.now();
  let tokens = 0,
    step = 0,
    wLoss = 0,
    wCorrect = 0,
    wTotal = 0,
    wSteps = 0,
    stoppedEarly: string | null = null;
  let planned = r.steps,
    msPerStep = 0, // moving average of the recent steps' times (a curriculum makes later steps dearer)
    last = t0;
  while (step < r.steps) {
    if (hooks.deadline !== undefined) {
      const now = performance.now();
      if (now > hooks.deadline) {
        stoppedEarly = `time budget reached after ${step} of ${r.steps} steps`;
        break;
      }
      if (step > 0) msPerStep = step <= PLAN_AFTER ? now - last : 0.9 * msPerStep + 0.1 * (now - last);
      last = now;
      if (step >= PLAN_AFTER) planned = plannedSteps(r.steps, step, msPerStep, hooks.deadline - now);
    }
    const b = next(step, planned);
    opt.zeroGrad();
    const loss = valueAndGrad(e, () => {
      const picked = scoredLogits(model, b);
      wCorrect += countCorrect(picked.data(), b.targets, V, hooks.among);
      return op.crossEntropy(e, picked, e.ids(b.targets));
    });
    step++;
    opt.update(scheduledLr(step, scaledRecipe(r, planned)), r.clip);
    model.weightsChanged();
    tokens += b.B * b.L;
    wLoss += loss;
    wTotal += b.targets.length;
    wSteps++;
    if (step % every === 0 || step === r.steps) {
      curve.push({ step, tokens, loss: wLoss / wSteps, accuracy: wCorrect / wTotal });
      wLoss = 0;
      wCorrect = 0;
      wTotal = 0;
      wSteps = 0;
    }
    hooks.onStep?.(step, loss, tokens);
  }
  if (wSteps > 0) curve.push({ step, tokens, loss: wLoss / wSteps, accuracy: wCorrect / wTotal });
  const seconds = (performance.now() - t0) / 1000;
  return { steps: step, tokens, seconds, energy: energy.stop(tokens), curve, stoppedEarly };
}
