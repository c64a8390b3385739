import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metric, post, startServer, stream, textOf } from './serve.js';
import type { ServerProc } from './serve.js';

/**
 * What outlives a request: sessions and their turn lock, Idempotency-Key, state export and
 * import, `kill -9` mid-stream and a restart, a truncated snapshot file, and a SIGTERM drain.
 * Real server processes on one state directory.
 */
const MODEL = 'mamba-sotu';
const dir = mkdtempSync(join(tmpdir(), 'frugal-durable-'));
const procs: ServerProc[] = [];
afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

async function server(): Promise<ServerProc> {
  const p = await startServer(['--state-dir', dir, '--max-streams', '4']);
  procs.push(p);
  return p;
}

describe('frugal serve state that outlives requests and processes', () => {
  let a: ServerProc;
  let session = '';
  let turn1 = '';
  let reference = '';
  const turn2 = { prompt: ' Tonight', max_tokens: 150, temperature: 0.9, seed: 9 };

  it('keeps sessions: one turn at a time (409), forks, Idempotency-Key replays', async () => {
    a = await server();
    const s = await post(`${a.url}/v1/sessions`, {});
    expect(s.status).toBe(201);
    session = s.json.id;
    const t1 = await post(`${a.url}/v1/completions`, {
      model: MODEL,
      prompt: 'The state of the Union is',
      max_tokens: 16,
      temperature: 0.9,
      seed: 5,
      session_id: session,
    });
    expect(t1.status).toBe(200);
    turn1 = t1.json.id;
    expect((await post(`${a.url}/v1/sessions/${session}`, undefined, {}, 'GET')).json.snapshot).toBe(turn1);

    const fork = await post(`${a.url}/v1/sessions/${session}/fork`, {});
    expect(fork.json.snapshot).toBe(turn1);
    // a long turn on the fork holds its lock: a second turn on it is refused
    let busy = 0;
    const long = stream(a.url, { ...turn2, session_id: fork.json.id }, () => {
      post(`${a.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 2, session_id: fork.json.id }).then((r) => {
        busy = r.status;
        expect(r.json.error.code).toBe('session_busy');
      });
    });
    reference = textOf(await long);
    await new Promise((r) => setTimeout(r, 50));
    expect(busy).toBe(409);
    expect(reference.length).toBeGreaterThan(100);

    const key = { 'idempotency-key': 'k-1' };
    const i1 = await post(`${a.url}/v1/completions`, { model: MODEL, prompt: 'We', max_tokens: 5, seed: 1 }, key);
    const i2 = await post(`${a.url}/v1/completions`, { model: MODEL, prompt: 'We', max_tokens: 5, seed: 1 }, key);
    expect(i2.json.id).toBe(i1.json.id);
    expect(i2.headers.get('idempotent-replayed')).toBe('true');
  });

  it('exports a session state and imports it into another session that continues alike', async () => {
    const state = await fetch(`${a.url}/v1/sessions/${session}/state`);
    expect(state.status).toBe(200);
    expect(state.headers.get('x-frugal-snapshot')).toBe(turn1);
    const bytes = new Uint8Array(await state.arrayBuffer());
    const put = await fetch(`${a.url}/v1/sessions/imported-1/state`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(put.status).toBe(201);
    const bad = await fetch(`${a.url}/v1/sessions/imported-2/state`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes.slice(0, 100),
    });
    expect(bad.status).toBe(400);
    const fromImport = await post(`${a.url}/v1/completions`, {
      model: MODEL,
      prompt: ' We',
      max_tokens: 8,
      temperature: 0,
      session_id: 'imported-1',
    });
    const fromSnap = await post(`${a.url}/v1/completions`, {
      model: MODEL,
      prompt: ' We',
      max_tokens: 8,
      temperature: 0,
      previous_response_id: turn1,
    });
    expect(fromImport.json.choices[0].text).toBe(fromSnap.json.choices[0].text);
  });

  it('after kill -9 mid-stream and a restart, the session sits at its last committed turn and the retry gives the uninterrupted output', async () => {
    const killed = await stream(a.url, { ...turn2, session_id: session }, () => a.child.kill('SIGKILL'));
    await a.exited;
    expect(killed).not.toContain('[DONE]');
    a = await server();
    expect((await post(`${a.url}/v1/sessions/${session}`, undefined, {}, 'GET')).json.snapshot).toBe(turn1);
    const retry = await post(`${a.url}/v1/completions`, { model: MODEL, ...turn2, session_id: session });
    expect(retry.status).toBe(200);
    expect(retry.json.choices[0].text).toBe(reference);
    expect((await post(`${a.url}/v1/sessions/${session}`, undefined, {}, 'GET')).json.snapshot).toBe(retry.json.id);
  });

  it('rejects a truncated snapshot file and keeps serving', async () => {
    const r = await post(`${a.url}/v1/completions`, { model: MODEL, prompt: 'Peace', max_tokens: 4 });
    const file = join(dir, 'snapshots', `${r.json.id}.snap`);
    truncateSync(file, readFileSync(file).length - 100);
    const bad = await post(`${a.url}/v1/completions`, { model: MODEL, prompt: ' and', max_tokens: 4, previous_response_id: r.json.id });
    expect(bad.status).toBe(422);
    expect(bad.json.error.code).toBe('snapshot_corrupt');
    expect((await fetch(`${a.url}/health`)).status).toBe(200);
    expect((await post(`${a.url}/v1/completions`, { model: MODEL, prompt: 'Peace', max_tokens: 4 })).status).toBe(200);
  });

  it('frees a slot at once when its client goes away, and answers a full queue with 429 and retry-after-ms', async () => {
    const ac = new AbortController();
    const r = await fetch(`${a.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'The', max_tokens: 2000, stream: true }),
      signal: ac.signal,
    });
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    ac.abort();
    let active = 1;
    for (let i = 0; i < 100 && active > 0; i++) {
      await new Promise((res) => setTimeout(res, 20));
      active = await metric(a.url, 'frugal_active_streams');
    }
    expect(active).toBe(0);
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => post(`${a.url}/v1/completions`, { model: MODEL, prompt: 'We', max_tokens: 40 })),
    );
    const refused = burst.filter((b) => b.status === 429);
    expect(refused.length).toBeGreaterThan(0); // 4 streams and 4 queued places
    expect(burst.filter((b) => b.status === 200).length).toBeGreaterThanOrEqual(8);
    for (const b of refused) {
      expect(Number(b.headers.get('retry-after-ms'))).toBeGreaterThan(0);
      expect(b.json.error.type).toBe('rate_limit_exceeded');
    }
  });

  it('drains open streams on SIGTERM, then exits 0', async () => {
    const open = stream(a.url, { prompt: 'The', max_tokens: 120, temperature: 0 }, () => a.child.kill('SIGTERM'));
    const raw = await open;
    expect(raw.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(raw).toContain('"finish_reason":"length"');
    expect(await a.exited).toBe(0);
    expect(a.log()).toMatch(/draining 1 open stream/);
  });
});
