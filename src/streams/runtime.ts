import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Tensor } from '../tensor/index.js';
import type { ModelState } from '../models/types.js';
import { HEADS_FILE, STREAM_SPEC_FILE, fileSha256, headOutputs } from '../models/heads.js';
import type { StreamModel } from '../models/heads.js';
import { readStateFile, writeStateFile } from '../io/statefile.js';
import { readTensorF32 } from '../io/safetensors.js';
import type { StreamTensor } from '../io/safetensors.js';
import { inputError } from '../io/errors.js';
import { gaussianLoss, softmax, softmaxLoss } from './loss.js';
import type { TickTime } from './parse.js';
import { TimeCheck } from './queue.js';

/**
 * One stream through a streaming model, one tick at a time: normalise the tick's features, embed
 * them, advance the backbone's state by one step (Mamba's recurrence; the transformer's KV cache as a
 * ring of `window` rows), read the head, and print. Predictions wait for their label (forecast: the
 * target `horizon` ticks later; classify: the tick's own label, released `labelDelay` ticks later);
 * when it comes they are scored and, with `learn`, the head takes one SGD step on that loss (the
 * backbone stays frozen). Everything that decides a later output (the state, the head, the
 * predictions waiting for labels, the tick count and the time check) is in the state file, so a
 * stream cut in two prints what the uninterrupted one prints.
 */
export interface StreamSettings {
  learn: boolean;
  /** SGD learning rate of the head (--learn). */
  lr: number;
  /** classify: ticks before a tick's label may be used (forecast labels come `horizon` ticks later). */
  labelDelay: number;
}

interface Pending {
  i: number;
  /** The hidden state the head read (f32 values), for the update. */
  z: number[];
  /** The head's outputs. */
  out: number[];
  /** The label, once known: normalised target (forecast) or class (classify). */
  label: number | null;
}

export interface TickOutput {
  [key: string]: unknown;
  i: number;
  t: TickTime;
  pred: number | number[];
}

/** The extra metadata of a stream state file, key `frugal_stream` (JSON). */
interface SavedStream {
  ticks: number;
  lastAt: number | null;
  interval: number | null;
  pending: Pending[];
  scored: number;
  lossSum: number;
}

export const STREAM_STATE_KEY = 'frugal_stream';

export class StreamRunner {
  state: ModelState;
  /** The head as the stream uses it (learned in place with --learn): (O, D) and (O). */
  readonly headW: Float32Array;
  readonly headB: Float32Array;
  ticks = 0;
  scored = 0;
  lossSum = 0;
  readonly time: TimeCheck;
  private pending: Pending[] = [];
  private readonly inW: Float32Array;
  private readonly inB: Float32Array;
  private readonly x: Float32Array;

  constructor(
    readonly model: StreamModel,
    readonly settings: StreamSettings,
  ) {
    const w = (n: string) => Float32Array.from((model.heads.get(n) as Tensor).floats());
    this.inW = w('stream.in.weight');
    this.inB = w('stream.in.bias');
    this.headW = w('stream.head.weight');
    this.headB = w('stream.head.bias');
    this.x = new Float32Array(model.dModel);
    this.state = model.backbone.createState(1, this.window);
    this.time = new TimeCheck(model.spec.median_dt);
  }

  /** Free the recurrent state's memory (a runner made for one pass, as validation makes). */
  dispose(): void {
    for (const t of this.state.tensors.values()) t.dispose();
  }

  /** The transformer's sliding window (its training length); Infinity for Mamba, whose state does not grow. */
  get window(): number {
    return this.model.arch === 'transformer' ? this.model.spec.window : Infinity;
  }

  /** The normalised features of a tick (a missing value takes the training mean, 0 after normalising). */
  private features(values: Record<string, number | null>): { f: Float64Array; missing: string[] } {
    const { features, norm } = this.model.spec;
    const f = new Float64Array(features.length),
      missing: string[] = [];
    features.forEach((name, j) => {
      const v = values[name];
      if (v === null || v === undefined) missing.push(name);
      else f[j] = (v - norm.mean[j]) / norm.std[j];
    });
    return { f, missing };
  }

  /** The label a tick carries for the prediction it resolves: the normalised target, or the class; null when absent. */
  private label(values: Record<string, number | null>): number | null {
    const { task, target, target_norm: tn, classes } = this.model.spec;
    const v = values[target];
    if (v === null || v === undefined) return null;
    if (task === 'classify') return Number.isInteger(v) && v >= 0 && v < classes ? v : null;
    return tn ? (v - tn.mean) / tn.std : v;
  }

  /** Run one tick; the JSON object to print. `extra` fields (gap, queue depth) go after pred. */
  tick(t: TickTime, values: Record<string, number | null>, extra: Record<string, unknown> = {}): TickOutput {
    const spec = this.model.spec,
      D = this.model.dModel,
      F = spec.features.length,
      O = headOutputs(spec);
    const { f, missing } = this.features(values);
    for (let d = 0; d < D; d++) {
      let s = this.inB[d];
      for (let j = 0; j < F; j++) s += this.inW[d * F + j] * f[j];
      this.x[d] = s;
    }
    const z = this.model.backbone.hiddenStep(this.x, this.state, this.window);
    const out = new Array<number>(O);
    for (let o = 0; o < O; o++) {
      let s = this.headB[o];
      for (let d = 0; d < D; d++) s += this.headW[o * D + d] * z[d];
      out[o] = s;
    }
    const i = this.ticks++;
    const line: TickOutput = { i, t, pred: 0, ...this.describe(out) };
    if (missing.length) line.missing = missing;
    Object.assign(line, extra);
    // labels: a forecast's target arrives `horizon` ticks later; a class label with its own tick
    const label = this.label(values);
    if (spec.task === 'forecast') {
      const p = this.pending.find((q) => q.i === i - spec.horizon);
      if (p) p.label = label;
      this.pending.push({ i, z: Array.from(z), out, label: null });
    } else this.pending.push({ i, z: Array.from(z), out, label });
    const delay = spec.task === 'forecast' ? spec.horizon : this.settings.labelDelay;
    while (this.pending.length && this.pending[0].i <= i - delay) {
      const p = this.pending.shift() as Pending;
      if (p.label === null) continue;
      const loss = this.score(p);
      line.scored = p.i;
      line.loss = loss;
    }
    return line;
  }

  /** pred (and sd, or the class probabilities) in the target's units. */
  private describe(out: number[]): Record<string, unknown> {
    const spec = this.model.spec;
    if (spec.head === 'softmax') {
      const p = Array.from(softmax(out, 0, spec.classes));
      return { pred: p, class: p.indexOf(Math.max(...p)) };
    }
    const tn = spec.target_norm ?? { mean: 0, std: 1 };
    const sd = Math.exp(Math.max(-7, Math.min(7, out[1])));
    return { pred: tn.mean + tn.std * out[0], sd: tn.std * sd };
  }

  /** The loss of a prediction whose label came (nats, normalised units); with --learn, one SGD step of the head on it (output gradient clipped to unit norm). */
  private score(p: Pending): number {
    const spec = this.model.spec,
      D = this.model.dModel,
      O = headOutputs(spec);
    const g = new Float64Array(O);
    const loss =
      spec.head === 'gaussian' ? gaussianLoss(p.out[0], p.out[1], p.label as number, g) : softmaxLoss(p.out, 0, O, p.label as number, g);
    this.scored++;
    this.lossSum += loss;
    if (this.settings.learn) {
      // the gradient in the outputs is clipped to unit norm: a Gaussian head's ∂/∂μ = −(y − μ)/σ² is unbounded as σ shrinks
      let n2 = 0;
      for (let o = 0; o < O; o++) n2 += g[o] * g[o];
      const lr = this.settings.lr / Math.max(1, Math.sqrt(n2));
      for (let o = 0; o < O; o++) {
        if (g[o] === 0) continue;
        for (let d = 0; d < D; d++) this.headW[o * D + d] -= lr * g[o] * p.z[d];
        this.headB[o] -= lr * g[o];
      }
    }
    return loss;
  }

  /** The identity a state file records: the backbone's weights and the stream files (spec and heads). */
  private identity(): { model: string; stream: string } {
    const dir = this.model.dir;
    const h = createHash('sha256');
    for (const f of [STREAM_SPEC_FILE, HEADS_FILE]) h.update(readFileSync(join(dir, f)));
    return { model: fileSha256(join(dir, 'model.safetensors')), stream: h.digest('hex') };
  }

  /** Write the stream's state to `path` atomically (temporary name, then rename). */
  save(path: string): void {
    const id = this.identity();
    const tensors: StreamTensor[] = [...this.state.tensors].map(([name, t]) => f32Tensor(name, t.shape, t.floats()));
    const O = headOutputs(this.model.spec);
    tensors.push(f32Tensor('stream.head.weight', [O, this.model.dModel], this.headW), f32Tensor('stream.head.bias', [O], this.headB));
    const saved: SavedStream = {
      ticks: this.ticks,
      lastAt: this.time.last,
      interval: this.time.interval,
      pending: this.pending,
      scored: this.scored,
      lossSum: this.lossSum,
    };
    writeStateFile(
      path,
      {
        architecture: this.model.backbone.config.modelType,
        modelSha256: id.model,
        tokenizerSha256: id.stream,
        tokens: this.state.position,
        batch: 1,
      },
      tensors,
      { [STREAM_STATE_KEY]: JSON.stringify(saved) },
    );
  }

  /** Continue from the state file at `path` (it must come from this model folder). */
  restore(path: string): void {
    if (!existsSync(path)) throw inputError(`--state ${path} does not exist`);
    const { header, file } = readStateFile(path);
    const id = this.identity();
    if (header.modelSha256 !== id.model || header.tokenizerSha256 !== id.stream)
      throw inputError(
        `${path} was saved by another streaming model (its weights or stream files differ); continue a stream with the model that made it`,
      );
    const raw = file.metadata[STREAM_STATE_KEY];
    if (raw === undefined) throw inputError(`${path} is a frugal state file but not a stream's (no ${STREAM_STATE_KEY} metadata)`);
    const saved = JSON.parse(raw) as SavedStream;
    for (const [name, t] of this.state.tensors) {
      const got = file.tensors.get(name);
      if (!got || got.shape.join() !== t.shape.join()) throw inputError(`${path}: state tensor '${name}' is missing or has another shape`);
      t.floats().set(readTensorF32(file, name));
    }
    this.headW.set(readTensorF32(file, 'stream.head.weight'));
    this.headB.set(readTensorF32(file, 'stream.head.bias'));
    this.state.position = header.tokens;
    this.ticks = saved.ticks;
    this.time.last = saved.lastAt;
    this.time.interval = saved.interval;
    this.pending = saved.pending;
    this.scored = saved.scored;
    this.lossSum = saved.lossSum;
  }
}

function f32Tensor(name: string, shape: readonly number[], v: Float32Array | Float64Array): StreamTensor {
  const f = v instanceof Float32Array ? v : Float32Array.from(v);
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, dtype: 'F32', shape: [...shape], write: (emit) => emit(new Uint8Array(f.buffer, f.byteOffset, n * 4)) };
}
