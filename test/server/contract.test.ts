import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/api/model.js';
import { generate } from '../../src/api/generate.js';
import { expectApiError, metric, post, startServer } from './serve.js';
import type { ServerProc } from './serve.js';

/**
 * `frugal serve` as the official OpenAI client sees it, on one server process (the bundled Mamba,
 * an API key): streaming and not, usage, stop strings across chunks, n, logprobs, continuing a
 * snapshot with `previous_response_id`, malformed requests, and 64 concurrent streams. The
 * expected greedy text comes from the library's own one-stream generate (no server code).
 */
const KEY = 'test-key-123';
const MODEL = 'mamba-sotu';
const PROMPT = 'The state of the Union is';
const auth = { authorization: `Bearer ${KEY}` };
let srv: ServerProc;
let client: OpenAI;
const model = loadModel('models/mamba-sotu');
const tokenizer = model.text().tokenizer;
/** The greedy continuation of PROMPT, 96 tokens, decoded alone by the library. */
const reference = generate(model, PROMPT, { maxTokens: 96, temperature: 0 });
const refTokens = reference.ids.map((id) => tokenizer.decode([id]));

beforeAll(async () => {
  srv = await startServer(['--api-key', KEY, '--max-streams', '64', '--state-dir', mkdtempSync(join(tmpdir(), 'frugal-serve-'))]);
  client = new OpenAI({ apiKey: KEY, baseURL: `${srv.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  srv?.child.kill('SIGKILL');
  model.dispose();
});

describe('frugal serve with the official openai client', () => {
  it('lists its model and completes greedily as the library does, with usage', async () => {
    expect((await client.models.list()).data.map((m) => m.id)).toEqual([MODEL]);
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 24, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0].text).toBe(tokenizer.decode(reference.ids.slice(0, 24)));
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage).toMatchObject({ prompt_tokens: tokenizer.encode(PROMPT).length, completion_tokens: 24 });
  });

  it('streams chat chunks that add up to the whole answer, with usage last', async () => {
    const messages = [{ role: 'user' as const, content: 'Hello' }];
    const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 20,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '',
      chunks = 0,
      finish: string | null = null,
      usage = null;
    for await (const c of stream) {
      chunks++;
      if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      if (c.usage) usage = c.usage;
    }
    expect(chunks).toBeGreaterThan(5);
    expect(text).toBe(whole.choices[0].message.content);
    expect(finish).toBe('length');
    expect(usage).toEqual(whole.usage);
  });

  it('honours stop strings that span two tokens, streamed and not', async () => {
    const full = tokenizer.decode(reference.ids.slice(0, 40));
    const pieces = refTokens.slice(0, 40);
    const k = pieces.findIndex((p, i) => i > 0 && p.length >= 3 && pieces[i - 1].length >= 3);
    const stop = pieces[k - 1].slice(-2) + pieces[k].slice(0, 2); // across the boundary of tokens k-1 and k
    const want = full.slice(0, full.indexOf(stop));
    const r = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0, stop: ['zzzz', stop] });
    expect(r.choices[0].text).toBe(want);
    expect(r.choices[0].finish_reason).toBe('stop');
    const s = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 40, temperature: 0, stop, stream: true });
    let text = '';
    for await (const c of s) text += c.choices[0]?.text ?? '';
    expect(text).toBe(want);
  });

  it('gives n choices, each its own snapshot, the same again for the same seed', async () => {
    const ask = () => client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 12, temperature: 1, n: 3, seed: 42 });
    const a = await ask();
    const b = await ask();
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(a.choices.map((c) => c.text)).toEqual(b.choices.map((c) => c.text));
    expect(new Set(a.choices.map((c) => c.text)).size).toBeGreaterThan(1);
    const ext = (a as unknown as { frugal: { snapshots: string[] } }).frugal;
    expect(ext.snapshots).toEqual([0, 1, 2].map((i) => `${a.id}-${i}`));
    const next = await client.completions.create({
      model: MODEL,
      prompt: '',
      max_tokens: 4,
      previous_response_id: ext.snapshots[1],
    } as never);
    expect(next.choices[0].text.length).toBeGreaterThan(0);
  });

  it('returns log probabilities: the greedy token is the most likely, the alternatives sorted', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 6,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = r.choices[0].logprobs?.content ?? [];
    expect(content).toHaveLength(6);
    for (const t of content) {
      expect(t.top_logprobs).toHaveLength(3);
      expect(t.top_logprobs[0].token).toBe(t.token);
      expect(t.top_logprobs[0].logprob).toBeCloseTo(t.logprob, 6);
      expect(t.top_logprobs[1].logprob).toBeLessThanOrEqual(t.top_logprobs[0].logprob);
      expect(t.top_logprobs.reduce((s, x) => s + Math.exp(x.logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
    const c = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 5, temperature: 0, logprobs: 2 });
    expect(c.choices[0].logprobs?.tokens).toEqual(refTokens.slice(0, 5));
    expect(c.choices[0].logprobs?.top_logprobs?.[0]).toBeTypeOf('object');
  });

  it('continues a snapshot token for token as one uninterrupted greedy generation, prefilling only new tokens', async () => {
    expect(new Set(reference.ids).size).toBeGreaterThanOrEqual(10);
    const first = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 32, temperature: 0, logprobs: 0 });
    const before = await metric(srv.url, 'frugal_prefill_tokens_total', auth);
    const second = await client.completions.create({
      model: MODEL,
      prompt: '',
      max_tokens: 64,
      temperature: 0,
      logprobs: 0,
      previous_response_id: first.id,
    } as never);
    expect(await metric(srv.url, 'frugal_prefill_tokens_total', auth)).toBe(before); // no new tokens: nothing re-read
    const got = [...(first.choices[0].logprobs?.tokens ?? []), ...(second.choices[0].logprobs?.tokens ?? [])];
    expect(got).toHaveLength(96);
    expect(got).toEqual(refTokens);
    const more = ' And we must';
    const third = await client.completions.create({
      model: MODEL,
      prompt: more,
      max_tokens: 4,
      temperature: 0,
      previous_response_id: second.id,
    } as never);
    expect(await metric(srv.url, 'frugal_prefill_tokens_total', auth)).toBe(before + tokenizer.encode(more).length);
    expect(third.usage?.prompt_tokens).toBe(tokenizer.encode(more).length);
  });

  it('prefills a prompt longer than one chunk as the library prefills it whole', async () => {
    const ids = Array.from(tokenizer.encode('The state of the Union is strong, and we shall keep it so. '.repeat(400)));
    expect(ids.length).toBeGreaterThan(2 * 2048); // three chunks
    const want = generate(model, ids, { maxTokens: 8, temperature: 0 });
    const r = await client.completions.create({ model: MODEL, prompt: ids, max_tokens: 8, temperature: 0, logprobs: 0 });
    expect(r.choices[0].logprobs?.tokens).toEqual(want.ids.map((id) => tokenizer.decode([id])));
    expect(r.usage?.prompt_tokens).toBe(ids.length);
  });

  it('answers malformed requests with the right 4xx in OpenAI shape and keeps serving', async () => {
    const url = `${srv.url}/v1/completions`;
    const cases: [unknown, number, Record<string, string>?][] = [
      ['{"model": "mamba-sotu", "prompt": ', 400],
      [{ model: MODEL, prompt: 42 }, 400],
      [{ model: MODEL, prompt: 'x', max_tokens: 'ten' }, 400],
      [{ model: MODEL, prompt: 'x', temperature: 7 }, 400],
      [{ model: MODEL, prompt: 'x', max_tokens: 1e6 }, 400],
      [{ model: MODEL, prompt: 'x', n: 1000 }, 400],
      [{ model: MODEL, prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 400],
      [{ model: MODEL }, 400],
      [{ model: MODEL, prompt: 'x'.repeat(2 << 20) }, 413],
      [{ model: 'gpt-4', prompt: 'x' }, 404],
      [{ model: MODEL, prompt: 'x', session_id: 'no-such-session' }, 404],
      [{ model: MODEL, prompt: 'x', previous_response_id: 'cmpl-none' }, 404],
      [{ model: MODEL, prompt: 'x' }, 401, {}],
      [{ model: MODEL, prompt: 'x' }, 401, { authorization: 'Bearer wrong-key-123' }],
    ];
    for (const [body, status, headers] of cases) {
      const r = await post(url, body, headers ?? auth);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expectApiError(r.json);
    }
    await expect(client.completions.create({ model: 'nope', prompt: 'x' })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await fetch(`${srv.url}/health`)).status).toBe(200); // public
    expect((await fetch(`${srv.url}/metrics`)).status).toBe(401);
    const ok = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 3, temperature: 0 });
    expect(ok.choices[0].text).toBe(tokenizer.decode(reference.ids.slice(0, 3)));
  });

  it('runs 64 concurrent streams to [DONE], each with its sequential greedy output', async () => {
    const prompts = ['The', 'We the people', 'Congress shall', 'Tonight I'];
    const sequential = [];
    for (const p of prompts)
      sequential.push((await client.completions.create({ model: MODEL, prompt: p, max_tokens: 10, temperature: 0 })).choices[0].text);
    const streams = Array.from({ length: 64 }, async (_, i) => {
      const r = await fetch(`${srv.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ model: MODEL, prompt: prompts[i % 4], max_tokens: 10, temperature: 0, stream: true }),
      });
      const raw = await r.text();
      const text = raw
        .split('\n\n')
        .filter((e) => e.startsWith('data: {'))
        .map((e) => (JSON.parse(e.slice(6)) as { choices: { text: string }[] }).choices[0]?.text ?? '')
        .join('');
      return { raw, text };
    });
    const got = await Promise.all(streams);
    got.forEach((g, i) => {
      expect(g.raw.endsWith('data: [DONE]\n\n')).toBe(true);
      expect(g.text).toBe(sequential[i % 4]);
    });
    expect(await metric(srv.url, 'frugal_active_streams', auth)).toBe(0);
  });
});
