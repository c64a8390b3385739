import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';

/** A `frugal serve` process on a free loopback port (the built CLI, one thread), its log collected. */
export interface ServerProc {
  url: string;
  child: ChildProcessByStdio<null, Readable, Readable>;
  log: () => string;
  exited: Promise<number | null>;
}

export async function startServer(args: readonly string[]): Promise<ServerProc> {
  const child = spawn(process.execPath, ['bin/frugal.js', 'serve', '--port', '0', '--threads', '1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (b: Buffer) => {
    log += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    log += b.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const poll = () => {
      const m = /listening on (http:\/\/[^,\s]+)/.exec(log);
      if (m && /ready/.test(log)) resolve(m[1]);
      else if (child.exitCode !== null) reject(new Error(`frugal serve exited: ${log}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
  return { url, child, log: () => log, exited };
}

/** The fields tests read from the server's JSON answers (each answer has some of them). */
export interface Body {
  id: string;
  object: string;
  status: string;
  error: { message: string; type: string; param: string | null; code: string | null };
  choices: { index: number; text: string; message: { content: string }; finish_reason: string; logprobs: { tokens: string[] } | null }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  frugal: { snapshots: string[]; conversation_tokens: number };
  snapshot: string | null;
  data: { id: string }[];
}

/** POST JSON, the response and its parsed body. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<{ status: number; json: Body; headers: Headers }> {
  const r = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = {} as Body;
  try {
    json = JSON.parse(text) as Body;
  } catch {
    /* not JSON: tests check the status */
  }
  return { status: r.status, json, headers: r.headers };
}

/** The value of a Prometheus sample line `name labels value`. */
export async function metric(url: string, name: string, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`no metric ${name}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** An OpenAI-shaped error body. */
export function expectApiError(json: Partial<Body>): void {
  if (
    !json.error ||
    typeof json.error.message !== 'string' ||
    typeof json.error.type !== 'string' ||
    !('param' in json.error) ||
    !('code' in json.error)
  )
    throw new Error(`not an OpenAI-shaped error: ${JSON.stringify(json)}`);
}

/**
 * A streamed completion of the bundled model's id: resolves with the raw event text (whatever
 * arrived, if the server dies mid-stream); `onFirst` runs at the first text chunk.
 */
export async function stream(
  url: string,
  body: Record<string, unknown>,
  onFirst: () => void = () => {},
  headers: Record<string, string> = {},
): Promise<string> {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'mamba-sotu', stream: true, ...body }),
  });
  expect(r.status).toBe(200);
  const reader = (r.body as ReadableStream<Uint8Array>).getReader();
  let raw = '',
    first = true;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      raw += Buffer.from(value).toString();
      if (first && raw.includes('"text":"')) {
        first = false;
        onFirst();
      }
    }
  } catch {
    /* the server died mid-stream */
  }
  return raw;
}

/** The text of choice 0 in a stream's raw events. */
export const textOf = (raw: string): string =>
  raw
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => (JSON.parse(e.slice(6)) as Body).choices[0]?.text ?? '')
    .join('');
