import { randomBytes, randomInt } from 'node:crypto';
import { FrugalError } from '../io/errors.js';
import { Rng } from '../io/rng.js';
import { checkTokenIds } from '../io/tokenids.js';
import type { ModelState } from '../models/types.js';
import type { Metrics } from './metrics.js';
import { ApiError, LIMITS, StopMatcher, badRequest, notFound, tokenLogprobs } from './openai.js';
import { QueueFullError } from './scheduler.js';
import type { Job, JobEnd, Scheduler } from './scheduler.js';
import type { ServedModel } from './served.js';
import { CorruptSnapshotError } from './store.js';
import type { Snapshot, StateStore } from './store.js';
import { sha256Hex } from './store-dir.js';

/**
 * One turn of a conversation, from its request to its committed snapshots: where it starts (a
 * session's latest snapshot, a `previous_response_id`, or nothing), its new tokens, one decode
 * stream per choice in the shared loop, stop strings and log probabilities, then one immutable
 * snapshot per completed choice (the response id, `<id>-<i>` when n > 1) and the session moved
 * to it. The session's turn lock is held from the start to the commit.
 */

/** What the server shares with every turn. */
export interface ServerContext {
  served: ServedModel;
  store: StateStore;
  scheduler: Scheduler;
  metrics: Metrics;
  lockTtlMs: number;
}

export interface LogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top: { token: string; logprob: number; bytes: number[] }[];
}

export interface TurnSpec {
  /** The response id (`cmpl-…` or `chatcmpl-…`). */
  id: string;
  /** The request's new input: text to tokenise, or token ids; a function gets whether the turn continues a conversation. */
  input: (continued: boolean) => string | number[];
  maxTokens: number;
  temperature: number;
  topP: number;
  n: number;
  seed: number | null;
  stop: string[];
  /** Top alternatives per token when log probabilities are asked for, else null. */
  logprobs: number | null;
  previousResponseId: string | null;
  sessionId: string | null;
  /** The turn passed its checks and its streams are queued: a streamed response may begin. */
  onStarted(): void;
  /** A new piece of a choice's text (and the log probabilities of the tokens it came with). */
  onDelta(choice: number, text: string, logprobs: LogprobEntry[]): void;
}

export interface ChoiceResult {
  text: string;
  finishReason: 'stop' | 'length';
  logprobs: LogprobEntry[];
  snapshot: string;
}

export interface TurnResult {
  choices: ChoiceResult[];
  promptTokens: number;
  completionTokens: number;
  /** Tokens the conversation holds after the turn (choice 0). */
  conversationTokens: number;
}

export const newId = (prefix: string) =>
  `${prefix}-${randomBytes(12)
    .toString('base64url')
    .replace(/[^A-Za-z0-9]/g, 'x')}`;

/** Where a turn starts: a restored state (with its pending token) or a fresh conversation. */
interface Start {
  bytes: Uint8Array | null;
  parent: string | null;
  tokens: number;
}

async function resolveStart(ctx: ServerContext, snapshotId: string | null): Promise<Start> {
  if (snapshotId === null) return { bytes: null, parent: null, tokens: 0 };
  let snap: Snapshot | null;
  try {
    snap = await ctx.store.getSnapshot(snapshotId);
  } catch (e) {
    if (e instanceof CorruptSnapshotError)
      throw new ApiError(422, e.message, 'invalid_request_error', 'previous_response_id', 'snapshot_corrupt');
    throw e;
  }
  if (!snap)
    throw notFound(
      `no snapshot '${snapshotId}': previous_response_id takes the id of a completed response`,
      'previous_response_id',
      'snapshot_not_found',
    );
  if (snap.model !== ctx.served.identity)
    throw badRequest(
      `snapshot '${snapshotId}' was made by another model, adapter or tokenizer`,
      'previous_response_id',
      'snapshot_model_mismatch',
    );
  return { bytes: snap.state, parent: snap.id, tokens: snap.tokens };
}

/** The state and the prompt a choice starts from (a fresh state copy per choice). */
function startState(ctx: ServerContext, start: Start, ids: Int32Array): { state: ModelState | null; prompt: Int32Array; carried: number } {
  if (!start.bytes) {
    if (ids.length > 0) return { state: null, prompt: ids, carried: 0 };
    const bos = ctx.served.model.network.hfConfig().bos_token_id;
    if (typeof bos !== 'number') throw badRequest('the prompt is empty and the model names no bos_token_id to start from', 'prompt');
    return { state: null, prompt: Int32Array.of(bos), carried: 1 };
  }
  const { state, pending } = ctx.served.decodeState(start.bytes, `snapshot ${start.parent}`);
  if (pending === null && ids.length === 0) throw badRequest('this snapshot has no pending token: send at least one new token', 'prompt');
  const prompt = pending === null ? ids : Int32Array.from([pending, ...ids]);
  return { state, prompt, carried: pending === null ? 0 : 1 };
}

function disposeState(s: ModelState | null): void {
  if (s) for (const t of s.tensors.values()) t.dispose();
}

/** Run a turn to its committed end (or throw an ApiError before anything streamed). `signal` aborts it (client gone). */
export async function runTurn(ctx: ServerContext, spec: TurnSpec, signal: AbortSignal): Promise<TurnResult> {
  let lock: string | null = null;
  let session = null;
  if (spec.sessionId !== null) {
    session = await ctx.store.getSession(spec.sessionId);
    if (!session) throw notFound(`no session '${spec.sessionId}'`, 'session_id', 'session_not_found');
    lock = await ctx.store.lockTurn(spec.sessionId, ctx.lockTtlMs);
    if (lock === null)
      throw new ApiError(
        409,
        `session '${spec.sessionId}' has a turn in progress; wait for it to finish`,
        'invalid_request_error',
        'session_id',
        'session_busy',
      );
  }
  try {
    const start = await resolveStart(ctx, spec.previousResponseId ?? session?.snapshot ?? null);
    const input = spec.input(start.bytes !== null);
    const ids = typeof input === 'string' ? ctx.served.codec.tokenizer.encode(input) : Int32Array.from(input);
    try {
      checkTokenIds(ids, ctx.served.model.vocabSize, 'prompt');
    } catch (e) {
      if (e instanceof FrugalError) throw badRequest(e.message, 'prompt', 'invalid_prompt');
      throw e;
    }
    if (ids.length > LIMITS.promptTokens)
      throw badRequest(
        `the prompt has ${ids.length} tokens; at most ${LIMITS.promptTokens} new tokens per request`,
        'prompt',
        'context_length_exceeded',
      );
    checkContext(ctx.served.maxContext, start.tokens, Math.max(ids.length, start.bytes ? 0 : 1), spec.maxTokens);
    const result = await decodeChoices(ctx, spec, start, ids, signal);
    if (session && lock !== null) {
      const now = Date.now();
      await ctx.store.putSession({ ...session, snapshot: result.choices[0].snapshot, updated: now });
    }
    return result;
  } catch (e) {
    if (e instanceof FrugalError) throw badRequest(e.message, 'previous_response_id', 'snapshot_unusable');
    throw e;
  } finally {
    if (lock !== null && spec.sessionId !== null) await ctx.store.unlockTurn(spec.sessionId, lock);
  }
}

/**
 * A KV cache holds every token of its conversation, so a model with attention layers attends to at
 * most `limit` (its max_position_embeddings): a turn that could take the conversation past it
 * (its tokens so far, the new ones, max_tokens generated) is refused before anything runs.
 */
function checkContext(limit: number | null, before: number, fresh: number, maxTokens: number): void {
  if (limit === null || before + fresh + maxTokens <= limit) return;
  const had = before > 0 ? `${before} already in the conversation, ` : '';
  throw badRequest(
    `this model's maximum context length is ${limit} tokens; this turn could reach ${before + fresh + maxTokens} ` +
      `(${had}${fresh} in the prompt, ${maxTokens} in the completion): lower max_tokens, shorten the prompt, or start a new conversation`,
    'prompt',
    'context_length_exceeded',
  );
}

/** One decode stream per choice, submitted together; resolves when every choice has committed its snapshot. */
function decodeChoices(ctx: ServerContext, spec: TurnSpec, start: Start, ids: Int32Array, signal: AbortSignal): Promise<TurnResult> {
  const { scheduler, metrics } = ctx;
  const seed = spec.seed ?? randomInt(2 ** 47);
  return new Promise<TurnResult>((resolve, reject) => {
    const jobs: Job[] = [];
    const results: ChoiceResult[] = [];
    const tokens: number[] = [];
    let remaining = spec.n,
      completion = 0,
      prefilled = 0,
      failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      for (const j of jobs) scheduler.cancel(j);
      reject(e);
    };
    const onAbort = () => fail(new ApiError(499, 'the client closed the request', 'invalid_request_error', null, 'client_closed'));
    signal.addEventListener('abort', onAbort, { once: true });
    const hooks: ChoiceHooks = {
      t0: performance.now(),
      failed: () => failed,
      fail,
      committed: (i, r, conversation, generated) => {
        results[i] = r;
        tokens[i] = conversation;
        completion += generated;
        if (--remaining > 0 || failed) return;
        signal.removeEventListener('abort', onAbort);
        resolve({ choices: results, promptTokens: ids.length, completionTokens: completion, conversationTokens: tokens[0] });
      },
    };
    for (let i = 0; i < spec.n; i++) {
      const first = startState(ctx, start, ids);
      prefilled += first.prompt.length - first.carried;
      jobs.push(choiceJob(ctx, spec, i, start.parent, first, (seed + i) % Number.MAX_SAFE_INTEGER, hooks));
    }
    try {
      scheduler.submit(jobs);
    } catch (e) {
      for (const j of jobs) disposeState(j.from);
      if (e instanceof QueueFullError)
        fail(new ApiError(429, e.message, 'rate_limit_exceeded', null, 'server_busy', { 'retry-after-ms': String(e.retryAfterMs) }));
      else fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    spec.onStarted();
    metrics.prefillTokens += prefilled;
    metrics.tokens(prefilled);
  });
}

/** What a choice's stream reports to its turn. */
interface ChoiceHooks {
  /** When the request arrived (performance.now()), for time to first token. */
  t0: number;
  failed(): boolean;
  fail(e: Error): void;
  /** Choice i committed its snapshot; the conversation holds `conversation` tokens; it generated `generated`. */
  committed(i: number, r: ChoiceResult, conversation: number, generated: number): void;
}

/** Choice i's stream: its tokens through the stream decoder and stop strings to onDelta, then its snapshot. */
function choiceJob(
  ctx: ServerContext,
  spec: TurnSpec,
  i: number,
  parent: string | null,
  first: { state: ModelState | null; prompt: Int32Array },
  seed: number,
  hooks: ChoiceHooks,
): Job {
  const { served, metrics } = ctx;
  const decoder = served.codec.tokenizer.createStreamDecoder();
  const stops = new StopMatcher(spec.stop);
  const generated: number[] = [];
  const lps: LogprobEntry[] = [];
  const snapshotId = spec.n > 1 ? `${spec.id}-${i}` : spec.id;
  let text = '',
    last = 0;
  const emit = (piece: string, lp: LogprobEntry[]) => {
    const safe = stops.push(piece);
    text += safe;
    if (safe !== '' || lp.length > 0) spec.onDelta(i, safe, lp);
  };
  const onToken = (id: number, logits: Float32Array): boolean => {
    const now = performance.now();
    if (generated.length === 0) metrics.ttft.observe((now - hooks.t0) / 1000);
    else metrics.itl.observe((now - last) / 1000);
    last = now;
    generated.push(id);
    metrics.generatedTokens++;
    metrics.tokens(1);
    const lp = spec.logprobs === null ? [] : [logprobEntry(served, logits, id, spec.logprobs)];
    lps.push(...lp);
    emit(id === served.codec.stopAt ? '' : decoder.push(id), lp);
    return !stops.stopped;
  };
  const onEnd = (end: JobEnd): void => {
    if (end.reason === 'cancelled' || hooks.failed()) {
      disposeState(end.state);
      return;
    }
    if (end.reason === 'error' || !end.state) {
      hooks.fail(end.error ?? new Error('decode failed'));
      return;
    }
    emit(decoder.flush(), []);
    const tail = stops.flush();
    if (tail) {
      text += tail;
      spec.onDelta(i, tail, []);
    }
    const bytes = served.encodeState(end.state, generated[generated.length - 1]);
    const tokens = end.state.position + 1; // the pending token is part of the conversation
    disposeState(end.state);
    const finishReason = end.reason === 'length' && !stops.stopped ? 'length' : 'stop';
    const snap = { id: snapshotId, parent, tokens, model: served.identity, checksum: sha256Hex(bytes), state: bytes, created: Date.now() };
    ctx.store.putSnapshot(snap).then(() => {
      metrics.snapshots++;
      metrics.snapshotBytes += bytes.length;
      hooks.committed(i, { text, finishReason, logprobs: lps, snapshot: snapshotId }, tokens, generated.length);
    }, hooks.fail);
  };
  return {
    prompt: first.prompt,
    from: first.state,
    maxTokens: spec.maxTokens,
    sampling: { temperature: spec.temperature, topK: 0, topP: spec.topP },
    rng: Rng.fromSeed(seed),
    stopAt: served.codec.stopAt,
    onToken,
    onEnd,
  };
}

function logprobEntry(served: ServedModel, logits: Float32Array, id: number, top: number): LogprobEntry {
  const tok = (t: number) => {
    const s = served.codec.tokenizer.decode([t]);
    return { token: s, bytes: Array.from(Buffer.from(s, 'utf8')) };
  };
  const r = tokenLogprobs(logits, id, top);
  return { ...tok(id), logprob: r.logprob, top: r.top.map(([t, lp]) => ({ ...tok(t), logprob: lp })) };
}
