/**
 * The benchmark's HTTP client: raw fetch and the SSE parser, timing each streamed token as it
 * arrives (the `openai` package is not a runtime dependency of frugal).
 */
import { performance } from 'node:perf_hooks';
import { SseParser } from './sse.js';

/** What the client saw of one streamed request; times are performance.now() milliseconds. */
export interface StreamResult {
  status: number;
  /** The response id (the snapshot a later request continues from with previous_response_id). */
  id: string | null;
  text: string;
  /** When the request was sent. */
  start: number;
  /** Arrival time of every chunk that carried text. */
  tokenTimes: number[];
  end: number;
  /** `usage` of the final chunk (stream_options.include_usage), when sent. */
  usage: { prompt_tokens: number; completion_tokens: number } | null;
  done: boolean;
  /** The OpenAI-shaped error's message (HTTP status or an `error` event), or a network failure. */
  error: string | null;
}

interface ChunkChoice {
  index?: number;
  text?: string;
  delta?: { content?: string | null };
}
interface Chunk {
  id?: string;
  choices?: ChunkChoice[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  error?: { message?: string };
}

/** Tokens a stream produced: the server's count when it sent usage, else the chunks that carried text. */
export function streamTokens(r: StreamResult): number {
  return r.usage?.completion_tokens ?? r.tokenTimes.length;
}

/** POST `body` with `stream: true` to `url` and read the stream to its end. Never throws: failures land in `error`. */
export async function streamRequest(url: string, body: Record<string, unknown>): Promise<StreamResult> {
  const r: StreamResult = {
    status: 0,
    id: null,
    text: '',
    start: performance.now(),
    tokenTimes: [],
    end: 0,
    usage: null,
    done: false,
    error: null,
  };
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    });
    r.status = res.status;
    if (!res.ok || res.body === null) {
      r.error = errorMessage(await res.text(), res.status);
      return r;
    }
    const parser = new SseParser();
    const reader = res.body.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      const now = performance.now();
      for (const ev of parser.push(read.value)) onEvent(r, ev.data, now);
    }
    parser.end();
    if (!r.done && r.error === null) r.error = 'the stream ended without data: [DONE]';
  } catch (err) {
    r.error = err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
  } finally {
    r.end = performance.now();
  }
  return r;
}

function onEvent(r: StreamResult, data: string, now: number): void {
  if (data === '[DONE]') {
    r.done = true;
    return;
  }
  let c: Chunk;
  try {
    c = JSON.parse(data) as Chunk;
  } catch {
    r.error ??= `a data event is not JSON: ${data.slice(0, 80)}`;
    return;
  }
  if (c.error !== undefined) r.error ??= c.error.message ?? JSON.stringify(c.error);
  if (typeof c.id === 'string') r.id ??= c.id;
  if (c.usage) r.usage = c.usage;
  let text = '';
  for (const ch of c.choices ?? []) text += ch.text ?? ch.delta?.content ?? '';
  if (text !== '') {
    r.text += text;
    r.tokenTimes.push(now);
  }
}

/** The message of an OpenAI-shaped error body (`{"error":{"message":…}}`), else the body itself. */
export function errorMessage(body: string, status: number): string {
  try {
    const e = JSON.parse(body) as { error?: { message?: string } };
    if (typeof e.error?.message === 'string') return `HTTP ${status}: ${e.error.message}`;
  } catch {
    // not JSON: quote it
  }
  return `HTTP ${status}: ${body.slice(0, 200)}`;
}

/** POST JSON and parse the JSON answer; throws with the server's error message on a non-2xx status. */
export async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url}: ${errorMessage(text, res.status)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Run `fn(i)` for i in [0, n) with at most `concurrency` at a time. */
export async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) out[i] = await fn(i);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return out;
}

/** The server's completions URL and the model id it lists first (GET /v1/models). */
export interface Api {
  base: string;
  completions: string;
  model: string;
}

export async function apiOf(base: string): Promise<Api> {
  const res = await fetch(`${base}/v1/models`);
  if (!res.ok) throw new Error(`GET /v1/models answered ${res.status}`);
  const list = (await res.json()) as { data?: { id?: string }[] };
  const model = list.data?.[0]?.id;
  if (typeof model !== 'string') throw new Error('GET /v1/models listed no model (expected {"data":[{"id":…}]})');
  return { base, completions: `${base}/v1/completions`, model };
}

/** Greedy completion of `prompt` (plus any extension fields), streamed. */
export function complete(api: Api, prompt: string, maxTokens: number, extra: Record<string, unknown> = {}): Promise<StreamResult> {
  return streamRequest(api.completions, { model: api.model, prompt, max_tokens: maxTokens, temperature: 0, ...extra });
}

export function errorsOf(rs: readonly StreamResult[]): string[] {
  return [...new Set(rs.filter((r) => r.error !== null).map((r) => r.error as string))].slice(0, 5);
}
