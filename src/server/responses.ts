import type { ServerResponse } from 'node:http';
import type { LogprobEntry, TurnResult } from './turn.js';

/**
 * The JSON the two endpoints answer with, whole or as server-sent-event chunks, in the shapes
 * the official OpenAI clients parse: `text_completion` and `chat.completion(.chunk)`, usage,
 * and log probabilities (the completions endpoint's `tokens`/`token_logprobs`/`top_logprobs`
 * lists, the chat endpoint's `content` entries). Every response also carries `frugal`, the
 * extension fields: the snapshot ids it committed and the tokens its conversation now holds.
 */
export type Endpoint = 'completions' | 'chat';

export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
  endpoint: Endpoint;
  /** Whether log probabilities were asked for (else `logprobs: null`). */
  logprobs: boolean;
  sessionId: string | null;
}

function completionLogprobs(entries: LogprobEntry[], offset: number) {
  let at = offset;
  const textOffset = entries.map((e) => {
    const o = at;
    at += e.token.length;
    return o;
  });
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset: textOffset,
  };
}

function chatLogprobs(entries: LogprobEntry[]) {
  return {
    content: entries.map((e) => ({
      token: e.token,
      logprob: e.logprob,
      bytes: e.bytes,
      top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
    })),
    refusal: null,
  };
}

function logprobsOf(m: ResponseMeta, entries: LogprobEntry[], offset: number) {
  if (!m.logprobs) return null;
  return m.endpoint === 'chat' ? chatLogprobs(entries) : completionLogprobs(entries, offset);
}

export function usageOf(r: TurnResult) {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

function extension(m: ResponseMeta, r: TurnResult) {
  return { snapshots: r.choices.map((c) => c.snapshot), session_id: m.sessionId, conversation_tokens: r.conversationTokens };
}

/** The whole response of a finished turn. */
export function finalResponse(m: ResponseMeta, r: TurnResult): Record<string, unknown> {
  const head = { id: m.id, object: m.endpoint === 'chat' ? 'chat.completion' : 'text_completion', created: m.created, model: m.model };
  const choices = r.choices.map((c, index) =>
    m.endpoint === 'chat'
      ? {
          index,
          message: { role: 'assistant', content: c.text, refusal: null },
          logprobs: logprobsOf(m, c.logprobs, 0),
          finish_reason: c.finishReason,
        }
      : { index, text: c.text, logprobs: logprobsOf(m, c.logprobs, 0), finish_reason: c.finishReason },
  );
  return { ...head, choices, usage: usageOf(r), frugal: extension(m, r) };
}

/** Writes one streamed response: chunks, the closing chunks, keep-alive comments, and `data: [DONE]`. */
export class SseWriter {
  private readonly offsets: number[] = [];
  private keepAlive: NodeJS.Timeout | null = null;

  constructor(
    private readonly res: ServerResponse,
    private readonly m: ResponseMeta,
    private readonly includeUsage: boolean,
    keepAliveMs: number,
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), keepAliveMs);
    this.keepAlive.unref();
  }

  private write(s: string): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(s);
  }

  private chunk(choices: unknown[], usage: unknown = undefined): void {
    const object = this.m.endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const body: Record<string, unknown> = { id: this.m.id, object, created: this.m.created, model: this.m.model, choices };
    if (this.includeUsage) body.usage = usage ?? null;
    this.write(`data: ${JSON.stringify(body)}\n\n`);
  }

  /** The chat endpoint's opening chunk per choice: the assistant role. */
  open(n: number): void {
    if (this.m.endpoint !== 'chat') return;
    this.chunk(
      Array.from({ length: n }, (_, index) => ({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null })),
    );
  }

  delta(index: number, text: string, lp: LogprobEntry[]): void {
    const offset = this.offsets[index] ?? 0;
    this.offsets[index] = offset + text.length;
    const logprobs = logprobsOf(this.m, lp, offset);
    this.chunk([
      this.m.endpoint === 'chat'
        ? { index, delta: { content: text }, logprobs, finish_reason: null }
        : { index, text, logprobs, finish_reason: null },
    ]);
  }

  /** Each choice's finish reason, the usage chunk when asked for, the extension fields, then [DONE]. */
  finish(r: TurnResult): void {
    r.choices.forEach((c, index) =>
      this.chunk([
        this.m.endpoint === 'chat'
          ? { index, delta: {}, logprobs: null, finish_reason: c.finishReason }
          : { index, text: '', logprobs: null, finish_reason: c.finishReason },
      ]),
    );
    if (this.includeUsage) this.chunk([], usageOf(r));
    this.write(`: frugal ${JSON.stringify(extension(this.m, r))}\n\n`);
    this.end();
  }

  /** An error after the stream began: one `data: {"error": …}` event, then the end. */
  error(body: unknown): void {
    this.write(`data: ${JSON.stringify(body)}\n\n`);
    this.end();
  }

  private end(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
    this.write('data: [DONE]\n\n');
    if (!this.res.writableEnded) this.res.end();
  }

  /** The client went away. */
  close(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
  }
}

/** A recorded final response (an Idempotency-Key replay) sent again as a stream. */
export function replayStream(res: ServerResponse, final: Record<string, unknown>, includeUsage: boolean): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'idempotent-replayed': 'true' });
  const chat = final.object === 'chat.completion';
  const object = chat ? 'chat.completion.chunk' : 'text_completion';
  const head = { id: final.id, object, created: final.created, model: final.model };
  const choices = final.choices as { index: number; text?: string; message?: { content: string }; finish_reason: string }[];
  for (const c of choices) {
    const choice = chat
      ? { index: c.index, delta: { role: 'assistant', content: c.message?.content ?? '' }, logprobs: null, finish_reason: c.finish_reason }
      : { index: c.index, text: c.text ?? '', logprobs: null, finish_reason: c.finish_reason };
    res.write(`data: ${JSON.stringify({ ...head, choices: [choice], ...(includeUsage ? { usage: null } : {}) })}\n\n`);
  }
  if (includeUsage) res.write(`data: ${JSON.stringify({ ...head, choices: [], usage: final.usage })}\n\n`);
  res.end('data: [DONE]\n\n');
}
