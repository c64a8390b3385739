import type { Rng } from '../io/rng.js';
import { BatchDecoder } from '../infer/batch.js';
import { sampleToken } from '../infer/sample.js';
import type { SamplingOptions } from '../infer/sample.js';
import type { ModelState, SequenceModel } from '../models/types.js';

/**
 * The server's one decode loop: every active stream steps together through one BatchDecoder (each
 * weight read serves all of them), one batched step per turn of the event loop, so HTTP writes,
 * new requests and disconnects are handled between steps. A stream joins by prefilling its new
 * tokens alone (from a restored state when it continues a snapshot); a full batch queues it; a
 * full queue refuses it. A cancelled stream (its client went away) leaves at once.
 *
 * A stream's last sampled token is never stepped in: the state handed to `onEnd` has consumed
 * the prompt and every generated token but the last, which the caller keeps as the pending
 * token the next turn starts by feeding. So a continued conversation runs exactly the steps an
 * uninterrupted generation would, and ending a turn costs no extra step.
 */
/** Prompt tokens prefilled per turn of the loop. */
export const PREFILL_CHUNK = 2048;

export interface Job {
  /** Tokens to prefill (≥ 1): a pending token carried from the snapshot, then the request's new ones. */
  prompt: Int32Array;
  /** The one-stream state to continue (taken over by the loop), or null to start afresh. */
  from: ModelState | null;
  maxTokens: number;
  sampling: SamplingOptions;
  rng: Rng;
  /** The end-of-text id, or null. */
  stopAt: number | null;
  /** Each chosen token with the logits it was drawn from; false ends the stream (a stop string). */
  onToken(id: number, logits: Float32Array): boolean;
  /** The stream ended: `state` has consumed all but the last generated token (null when cancelled or failed). */
  onEnd(end: JobEnd): void;
}

export interface JobEnd {
  reason: 'stop' | 'length' | 'cancelled' | 'error';
  state: ModelState | null;
  generated: number;
  error?: Error;
}

interface Running {
  job: Job;
  id: number;
  logits: Float32Array;
  generated: number;
  /** Tokens the state had consumed when the stream joined (its restored state's, plus the prompt). */
  base: number;
}

/** Thrown by submit() when the queue is full: the caller answers 429 with `retry-after-ms`. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterMs: number) {
    super('the server is at capacity; retry later');
  }
}

export class Scheduler {
  private readonly dec: BatchDecoder;
  private readonly queue: Job[] = [];
  private readonly running = new Map<Job, Running>();
  private scheduled = false;
  /** The stream whose prompt is being prefilled, chunk by chunk, into its own state. */
  private pre: { job: Job; state: ModelState; at: number; base: number } | null = null;
  /** Recent batched step durations (ms), for the retry hint. */
  private stepMs = 10;

  constructor(
    private readonly model: SequenceModel,
    readonly capacity: number,
    readonly maxQueue: number,
    /** Called with each step's batch size and duration (metrics). */
    private readonly onStep: (streams: number, seconds: number) => void = () => {},
  ) {
    this.dec = new BatchDecoder(model, capacity);
  }

  get active(): number {
    return this.running.size;
  }
  /** Streams waiting for a row, the one being prefilled included. */
  get queued(): number {
    return this.queue.length + (this.pre ? 1 : 0);
  }
  get idle(): boolean {
    return this.running.size === 0 && this.queue.length === 0 && this.pre === null;
  }

  /** Queue streams, all or none: throws QueueFullError when the batch and the queue have no room for them all. */
  submit(jobs: readonly Job[]): void {
    if (this.running.size + this.queued + jobs.length > this.capacity + this.maxQueue) {
      throw new QueueFullError(Math.max(1, Math.round(this.stepMs * 16)));
    }
    this.queue.push(...jobs);
    this.wake();
  }

  /** The client went away: free its slot (or queue place) now. Nothing is committed. */
  cancel(job: Job): void {
    if (this.pre?.job === job) {
      for (const t of this.pre.state.tensors.values()) t.dispose();
      this.pre = null;
      job.onEnd({ reason: 'cancelled', state: null, generated: 0 });
      return;
    }
    const q = this.queue.indexOf(job);
    if (q >= 0) {
      this.queue.splice(q, 1);
      if (job.from) for (const t of job.from.tensors.values()) t.dispose();
      job.onEnd({ reason: 'cancelled', state: null, generated: 0 });
      return;
    }
    const r = this.running.get(job);
    if (!r) return;
    this.dec.leave(r.id);
    this.running.delete(job);
    job.onEnd({ reason: 'cancelled', state: null, generated: r.generated });
  }

  private wake(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.tick();
      if (!this.idle) this.wake();
    });
  }

  /** Admit queued streams, sample one token for each, end those that are done, step the rest once. */
  private tick(): void {
    this.admit();
    const next = new Map<number, number>();
    for (const r of [...this.running.values()]) {
      const tok = sampleToken(r.logits, r.job.sampling, r.job.rng);
      r.generated++;
      const more = r.job.onToken(tok, r.logits);
      if (!this.running.has(r.job)) continue; // cancelled from inside onToken
      const reason = !more || tok === r.job.stopAt ? 'stop' : r.generated >= r.job.maxTokens ? 'length' : null;
      if (reason) this.finish(r, reason);
      else next.set(r.id, tok);
    }
    if (next.size === 0) return;
    const t0 = performance.now();
    const out = this.dec.step(next);
    const ms = performance.now() - t0;
    this.stepMs = 0.8 * this.stepMs + 0.2 * ms;
    this.onStep(next.size, ms / 1000);
    for (const r of this.running.values()) r.logits = out.get(r.id) as Float32Array;
  }

  /**
   * Prefill one chunk of the next queued prompt (at most PREFILL_CHUNK tokens per turn of the
   * loop, so a long prompt delays the others' steps by one chunk at a time and its buffers stay
   * small); its last chunk is prefilled by the decoder's join, which gives it a row.
   */
  private admit(): void {
    if (this.running.size >= this.capacity) return;
    if (!this.pre) {
      const job = this.queue.shift();
      if (!job) return;
      const state = job.from ?? this.model.createState(1);
      this.pre = { job, state, at: 0, base: state.position + job.prompt.length };
    }
    const p = this.pre;
    try {
      const rest = p.job.prompt.length - p.at;
      if (rest > PREFILL_CHUNK) {
        this.model.prefill(p.job.prompt.subarray(p.at, p.at + PREFILL_CHUNK), PREFILL_CHUNK, p.state);
        p.at += PREFILL_CHUNK;
        return;
      }
      this.pre = null;
      const { id, logits } = this.dec.join(p.job.prompt.subarray(p.at), p.state);
      this.running.set(p.job, { job: p.job, id, logits, generated: 0, base: p.base });
    } catch (e) {
      this.pre = null;
      p.job.onEnd({ reason: 'error', state: null, generated: 0, error: e instanceof Error ? e : new Error(String(e)) });
    }
  }

  private finish(r: Running, reason: 'stop' | 'length'): void {
    let state: ModelState | null = null,
      error: Error | undefined;
    try {
      state = this.dec.rowState(r.id);
      state.position = r.base + r.generated - 1; // the last token is pending, not consumed
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
    }
    this.dec.leave(r.id);
    this.running.delete(r.job);
    r.job.onEnd(error ? { reason: 'error', state: null, generated: r.generated, error } : { reason, state, generated: r.generated });
  }

  dispose(): void {
    this.dec.dispose();
  }
}
