import { afterAll, describe, expect, it } from 'vitest';
import { startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { post, startServer, stream, textOf } from './serve.js';
import type { ServerProc } from './serve.js';

/**
 * Two `frugal serve` replicas on one redis-server (`--state-store redis://…`): a session begun on
 * one continues on the other exactly as on one server, a turn on a session that the other replica
 * is running is refused (409), because the turn lock lives in Redis, and so is a request whose
 * Idempotency-Key the other replica is still answering.
 */
const MODEL = 'mamba-sotu';
const procs: ServerProc[] = [];
let redis: RedisServer | null = null;

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await redis?.stop();
});

async function replica(url: string): Promise<ServerProc> {
  const p = await startServer(['--state-store', url, '--max-streams', '4']);
  procs.push(p);
  return p;
}

describe('frugal serve replicas sharing one Redis', () => {
  it('continue each other’s sessions and refuse a concurrent turn', async () => {
    redis = await startRedis();
    const [a, b] = await Promise.all([replica(redis.url), replica(redis.url)]);
    const greedy = { temperature: 0 };

    // the reference: one uninterrupted conversation of two turns on replica A alone
    const r1 = await post(`${a.url}/v1/completions`, { model: MODEL, prompt: 'The state of the Union is', max_tokens: 40, ...greedy });
    const r2 = await post(`${a.url}/v1/completions`, {
      model: MODEL,
      prompt: ' We',
      max_tokens: 40,
      previous_response_id: r1.json.id,
      ...greedy,
    });
    expect(r2.status).toBe(200);

    // a session: turn 1 on A, turn 2 on B
    const s = await post(`${a.url}/v1/sessions`, {});
    expect(s.status).toBe(201);
    const session = s.json.id;
    const t1 = await post(`${a.url}/v1/completions`, {
      model: MODEL,
      prompt: 'The state of the Union is',
      max_tokens: 40,
      session_id: session,
      ...greedy,
    });
    expect(t1.json.choices[0].text).toBe(r1.json.choices[0].text);
    const seen = await post(`${b.url}/v1/sessions/${session}`, undefined, {}, 'GET');
    expect(seen.status).toBe(200);
    expect(seen.json.snapshot).toBe(t1.json.id);
    const t2 = await post(`${b.url}/v1/completions`, { model: MODEL, prompt: ' We', max_tokens: 40, session_id: session, ...greedy });
    expect(t2.status).toBe(200);
    expect(t2.json.choices[0].text).toBe(r2.json.choices[0].text);
    expect(new Set(t2.json.choices[0].text.split(' ')).size).toBeGreaterThan(5);
    // B prefilled only the new tokens: the conversation's earlier tokens came from A's snapshot
    expect(t2.json.usage.prompt_tokens).toBe(r2.json.usage.prompt_tokens);

    // a long turn streaming on A holds the session: B refuses a second one
    let busy = 0,
      code: string | null = null;
    const pending: Promise<void>[] = [];
    const long = textOf(
      await stream(a.url, { prompt: ' And', max_tokens: 200, session_id: session, ...greedy }, () => {
        pending.push(
          post(`${b.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 2, session_id: session }).then((r) => {
            busy = r.status;
            code = r.json.error?.code ?? null;
          }),
        );
      }),
    );
    await Promise.all(pending);
    expect(long.length).toBeGreaterThan(100);
    expect(busy).toBe(409);
    expect(code).toBe('session_busy');

    // once A's turn is committed, B takes the next one
    const t4 = await post(`${b.url}/v1/completions`, { model: MODEL, prompt: ' Now', max_tokens: 4, session_id: session, ...greedy });
    expect(t4.status).toBe(200);
    expect((await post(`${a.url}/v1/sessions/${session}`, undefined, {}, 'GET')).json.snapshot).toBe(t4.json.id);

    // an Idempotency-Key in progress on A is in progress for B too; once done, B replays A's answer
    const key = { 'idempotency-key': 'replicated-1' };
    let second = 0;
    const dupes: Promise<void>[] = [];
    const first = textOf(
      await stream(
        a.url,
        { prompt: 'We', max_tokens: 200, ...greedy },
        () => {
          dupes.push(
            post(`${b.url}/v1/completions`, { model: MODEL, prompt: 'We', max_tokens: 200, ...greedy }, key).then((r) => {
              second = r.status;
            }),
          );
        },
        key,
      ),
    );
    await Promise.all(dupes);
    expect(second).toBe(409);
    const again = await post(`${b.url}/v1/completions`, { model: MODEL, prompt: 'We', max_tokens: 200, ...greedy }, key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.choices[0].text).toBe(first);
  });
});
