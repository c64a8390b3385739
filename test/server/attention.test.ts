import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from '../../src/api/generate.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { Rng } from '../../src/io/rng.js';
import { modelFiles, rememberSource } from '../../src/models/checkpoint.js';
import { createHybridConfig } from '../../src/models/hybrid/config.js';
import { HybridLM } from '../../src/models/hybrid/model.js';
import { Engine } from '../../src/ops/index.js';
import { buildApp } from '../../src/server/app.js';
import type { Lifecycle } from '../../src/server/app.js';
import { Metrics } from '../../src/server/metrics.js';
import { Scheduler } from '../../src/server/scheduler.js';
import { openServedModel } from '../../src/server/served.js';
import type { ServedModel } from '../../src/server/served.js';
import { DirStore } from '../../src/server/store-dir.js';
import { createRedisStore } from '../../src/server/store-redis.js';
import { startRedis } from '../helpers/redis.js';
import { expectApiError, textOf } from './serve.js';
import type { Body } from './serve.js';

/**
 * The server with models whose state holds a KV cache: a hybrid of Mamba-2, Mamba-1 and attention
 * layers (random weights, the bundled tokenizer, its context capped at 96 tokens) and the bundled
 * transformer. The app, decode loop and directory store are put together as `frugal serve` does,
 * in this process, so the test sees each batched step's size. A continued conversation must give
 * exactly the tokens of one uninterrupted completion: that holds only if each snapshot carries the
 * whole KV cache (every consumed position) through the store (a directory, Redis), a restart and a batch.
 */
const tmp = mkdtempSync(join(tmpdir(), 'frugal-kv-serve-'));
const HYBRID = join(tmp, 'hybrid');
const HYBRID_CONTEXT = 96;
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(() => {
  const e = new Engine({ kernels: 'wasm', threads: 1 });
  const cfg = createHybridConfig({
    dModel: 64,
    layerTypes: ['mamba2', 'attention', 'mamba', 'attention'],
    vocabSize: 2048,
    dState: 16,
    nHead: 4,
    nKvHead: 2,
    intermediateSize: 96,
    mamba2: { headDim: 16, nGroups: 1, chunkSize: 16 },
  });
  const m = new HybridLM(e, { ...cfg, tokenizer: 'file', eosTokenId: 2047, maxPositionEmbeddings: HYBRID_CONTEXT }).init(Rng.fromSeed(7));
  rememberSource(m, 'models/mamba-sotu'); // its tokenizer files go with the checkpoint
  writeDirAtomic(HYBRID, modelFiles(m));
  e.dispose();
});

interface Srv {
  app: FastifyInstance;
  served: ServedModel;
  /** Streams in each batched step. */
  steps: number[];
  complete(body: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; json: Body; raw: string }>;
  inject(method: 'GET' | 'POST', url: string): Promise<string>;
  put(url: string, bytes: Uint8Array): Promise<{ status: number; json: Body }>;
  close(): Promise<void>;
}

/** A server of the model in `dir` on the state directory or redis:// URL `where`. */
async function start(dir: string, where: string): Promise<Srv> {
  const served = openServedModel(dir, undefined, { threads: 1 });
  const store = where.startsWith('redis://') ? await createRedisStore(where) : await DirStore.open(where);
  const steps: number[] = [];
  const scheduler = new Scheduler(served.model.network, 4, 4, (n) => steps.push(n));
  const metrics = new Metrics();
  const life: Lifecycle = { ready: true, draining: false, ctx: { served, store, scheduler, metrics, lockTtlMs: 60_000 }, inflight: 0 };
  const app = buildApp(life, { logPrompts: false, keepAliveMs: 15_000, log: () => {} });
  return {
    app,
    served,
    steps,
    complete: async (body, headers = {}) => {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/completions',
        headers: { 'content-type': 'application/json', ...headers },
        payload: { model: served.id, temperature: 0, logprobs: 0, ...body },
      });
      let json = {} as Body;
      if (!body.stream || r.statusCode !== 200) json = r.json() as Body;
      return { status: r.statusCode, json, raw: r.body };
    },
    inject: async (method, url) => (await app.inject({ method, url })).body,
    put: async (url, bytes) => {
      const r = await app.inject({
        method: 'PUT',
        url,
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from(bytes),
      });
      return { status: r.statusCode, json: r.json() as Body };
    },
    close: async () => {
      await app.close();
      metrics.close();
      scheduler.dispose();
      served.dispose();
      await store.close();
    },
  };
}

const tokensOf = (b: Body) => b.choices[0].logprobs?.tokens ?? [];
/** The response id of a streamed completion (every chunk carries it). */
const streamId = (raw: string) => (JSON.parse((raw.split('\n\n').find((e) => e.startsWith('data: {')) as string).slice(6)) as Body).id;

const MODELS = [
  ['hybrid (mamba2, attention, mamba, attention)', HYBRID],
  ['transformer', 'models/transformer-sotu'],
] as const;

describe.each(MODELS)('frugal serve with a KV cache: %s', (_, dir) => {
  it('continues a session and a previous_response_id, across a restart, exactly as one uninterrupted completion', async () => {
    const stateDir = join(tmp, `state-${Math.random().toString(36).slice(2)}`);
    let s = await start(dir, stateDir);
    const P = Array.from(s.served.codec.tokenizer.encode('The state of the Union is'));
    const whole = await s.complete({ prompt: P, max_tokens: 64 }); // past a new cache's 64 rows
    expect(whole.status).toBe(200);
    expect(tokensOf(whole.json)).toHaveLength(64);
    const sess = JSON.parse(await s.inject('POST', '/v1/sessions')) as { id: string };
    const first = await s.complete({ prompt: P, max_tokens: 10, session_id: sess.id });
    expect(tokensOf(first.json)).toEqual(tokensOf(whole.json).slice(0, 10));
    await s.close();
    s = await start(dir, stateDir); // the snapshot comes back from the directory store
    try {
      const key = { 'idempotency-key': `k-${sess.id}` };
      const second = await s.complete({ prompt: '', max_tokens: 54, session_id: sess.id }, key);
      expect(second.status).toBe(200);
      expect([...tokensOf(first.json), ...tokensOf(second.json)]).toEqual(tokensOf(whole.json));
      expect(second.json.frugal.conversation_tokens).toBe(P.length + 64);
      expect((await s.complete({ prompt: '', max_tokens: 54, session_id: sess.id }, key)).json.id).toBe(second.json.id); // replayed
      // new tokens after the snapshot = the same tokens in one prompt (ids from the library's own greedy decoding)
      const G = generate(s.served.model, Int32Array.from(P), { maxTokens: 64, temperature: 0 }).ids;
      expect(s.served.codec.tokenizer.decode(G)).toBe(whole.json.choices[0].text);
      const Q = Array.from(s.served.codec.tokenizer.encode(' And we must'));
      const third = await s.complete({ prompt: Q, max_tokens: 12, previous_response_id: second.json.id });
      const one = await s.complete({ prompt: [...P, ...G, ...Q], max_tokens: 12 });
      expect(third.json.usage.prompt_tokens).toBe(Q.length); // only the new tokens are read
      expect(tokensOf(third.json)).toHaveLength(12);
      expect(tokensOf(third.json)).toEqual(tokensOf(one.json));
      expect(third.json.choices[0].text).toBe(one.json.choices[0].text);
    } finally {
      await s.close();
    }
  });

  it('answers a chat completion streamed as whole, and continues it', async () => {
    const s = await start(dir, join(tmp, `state-${Math.random().toString(36).slice(2)}`));
    try {
      const chat = async (body: Record<string, unknown>) =>
        s.app.inject({
          method: 'POST',
          url: '/v1/chat/completions',
          headers: { 'content-type': 'application/json' },
          payload: { model: s.served.id, temperature: 0, max_tokens: 12, ...body },
        });
      const messages = [{ role: 'user', content: 'Hello' }];
      const whole = (await chat({ messages })).json() as Body;
      const raw = (await chat({ messages, stream: true })).body;
      const streamed = raw
        .split('\n\n')
        .filter((e) => e.startsWith('data: {'))
        .map((e) => (JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
        .join('');
      expect(whole.choices[0].message.content.length).toBeGreaterThan(0);
      expect(streamed).toBe(whole.choices[0].message.content);
      const next = await chat({ messages: [{ role: 'user', content: 'And?' }], previous_response_id: whole.id });
      expect(next.statusCode).toBe(200);
      expect((next.json() as Body).usage.prompt_tokens).toBe(
        s.served.codec.tokenizer.encode('\nUser: And?\nAssistant:').length, // the plain template, continued: only the new message
      );
    } finally {
      await s.close();
    }
  });

  it('batches two concurrent streams, each as it is alone, and their snapshots continue as the lone ones', async () => {
    const s = await start(dir, join(tmp, `state-${Math.random().toString(36).slice(2)}`));
    try {
      const prompts = ['The state of the Union is', 'We the people'];
      const alone = [];
      for (const prompt of prompts) alone.push((await s.complete({ prompt, max_tokens: 20, stream: true })).raw);
      expect(Math.max(...s.steps)).toBe(1);
      s.steps.length = 0;
      const together = (await Promise.all(prompts.map((prompt) => s.complete({ prompt, max_tokens: 20, stream: true })))).map((r) => r.raw);
      expect(Math.max(...s.steps)).toBe(2); // they stepped together
      for (let i = 0; i < 2; i++) {
        expect(textOf(together[i]).length).toBeGreaterThan(0);
        expect(textOf(together[i])).toBe(textOf(alone[i]));
        const next = (raw: string) => s.complete({ prompt: '', max_tokens: 8, previous_response_id: streamId(raw) });
        const [a, b] = [await next(alone[i]), await next(together[i])];
        expect(tokensOf(b.json)).toHaveLength(8);
        expect(tokensOf(b.json)).toEqual(tokensOf(a.json));
      }
    } finally {
      await s.close();
    }
  });
});

describe('KV-cache snapshots in Redis', () => {
  it('a hybrid conversation begun on one server continues on another sharing the Redis store, token for token', async () => {
    const redis = await startRedis();
    const [a, b] = [await start(HYBRID, redis.url), await start(HYBRID, redis.url)];
    try {
      const prompt = 'The state of the Union is';
      const whole = await a.complete({ prompt, max_tokens: 40 });
      const first = await a.complete({ prompt, max_tokens: 15 });
      const second = await b.complete({ prompt: '', max_tokens: 25, previous_response_id: first.json.id });
      expect(second.status).toBe(200);
      expect([...tokensOf(first.json), ...tokensOf(second.json)]).toEqual(tokensOf(whole.json));
      expect(tokensOf(whole.json)).toHaveLength(40);
    } finally {
      await a.close();
      await b.close();
      await redis.stop();
    }
  });
});

describe('the context limit of a KV cache', () => {
  it('refuses with a 400 a turn that could take the conversation past max_position_embeddings; Mamba has none', async () => {
    const mamba = openServedModel('models/mamba-sotu', undefined, {});
    expect(mamba.maxContext).toBeNull(); // a fixed-size state
    mamba.dispose();
    const t = await start('models/transformer-sotu', join(tmp, 'state-t'));
    try {
      expect(t.served.maxContext).toBe(2048);
      for (const stream of [false, true]) {
        const r = await t.complete({ prompt: 'The state of the Union is', max_tokens: 4096, stream });
        expect(r.status).toBe(400);
        expectApiError(r.json);
        expect(r.json.error.code).toBe('context_length_exceeded');
        expect(r.json.error.message).toMatch(/maximum context length is 2048 tokens/);
      }
    } finally {
      await t.close();
    }
    const h = await start(HYBRID, join(tmp, 'state-h'));
    try {
      const bytes = async () => Number(/^frugal_snapshot_bytes_total (\d+)$/m.exec(await h.inject('GET', '/metrics'))?.[1]);
      const P = Array.from({ length: 6 }, (_, i) => 100 + i);
      const first = await h.complete({ prompt: P, max_tokens: 40 });
      expect(first.json.frugal.conversation_tokens).toBe(46);
      const small = await bytes();
      const over = await h.complete({ prompt: '', max_tokens: HYBRID_CONTEXT - 46 + 1, previous_response_id: first.json.id });
      expect(over.status).toBe(400);
      expectApiError(over.json);
      expect(over.json.error.code).toBe('context_length_exceeded');
      const full = await h.complete({ prompt: '', max_tokens: HYBRID_CONTEXT - 46, previous_response_id: first.json.id });
      expect(full.status).toBe(200);
      expect(full.json.frugal.conversation_tokens).toBe(HYBRID_CONTEXT);
      expect((await bytes()) - small).toBeGreaterThan(small); // the KV cache grew with the conversation
      // a state file past the limit is refused on import too
      const net = h.served.model.network;
      const long = net.createState(1);
      net.prefill(new Int32Array(HYBRID_CONTEXT + 1).fill(5), HYBRID_CONTEXT + 1, long);
      const file = h.served.encodeState(long, 7);
      for (const t of long.tensors.values()) t.dispose();
      const put = await h.put('/v1/sessions/too-long/state', file);
      expect(put.status).toBe(400);
      expect(put.json.error.code).toBe('context_length_exceeded');
    } finally {
      await h.close();
    }
  });
});
