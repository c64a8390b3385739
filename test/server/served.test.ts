import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrugalError } from '../../src/io/errors.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { PENDING_KEY, openServedModel } from '../../src/server/served.js';
import type { ServedModel } from '../../src/server/served.js';
import { StopMatcher, tokenLogprobs } from '../../src/server/openai.js';
import { buildApp } from '../../src/server/app.js';

/** The served model's snapshot encoding and chat templates; stop strings and log probabilities. */
const opened: ServedModel[] = [];
afterAll(() => {
  for (const m of opened) m.dispose();
});
function open(dir: string): ServedModel {
  const m = openServedModel(dir, undefined, { threads: 1 });
  opened.push(m);
  return m;
}

describe('ServedModel', () => {
  it('renders the plain chat template, and the tokenizer config template when there is one', () => {
    const plain = open('models/mamba-sotu');
    const msgs = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello' },
    ];
    expect(plain.renderChat(msgs, false)).toBe('System: Be brief.\nUser: Hello\nAssistant:');
    expect(plain.renderChat(msgs.slice(1), true)).toBe('\nUser: Hello\nAssistant:');
    const dir = mkdtempSync(join(tmpdir(), 'frugal-chat-'));
    cpSync('models/mamba-sotu', dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    cfg.chat_template =
      '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
    const templated = open(dir);
    expect(templated.renderChat(msgs, false)).toBe('<|system|>Be brief.<|endoftext|><|user|>Hello<|endoftext|><|assistant|>');
    expect(templated.identity).toBe(plain.identity); // same weights and tokenizer.json: snapshots move between them
  });

  it('encodes a state with its pending token and restores it only on the same model', () => {
    const m = open('models/mamba-sotu');
    const net = m.model.network;
    const state = net.createState(1);
    net.prefill(Int32Array.of(5, 6, 7), 3, state);
    const bytes = m.encodeState(state, 42);
    expect(decodeSafetensors(bytes, 'x').metadata[PENDING_KEY]).toBe('42');
    const back = m.decodeState(bytes, 'x');
    expect(back.pending).toBe(42);
    expect(back.state.position).toBe(3);
    for (const [name, t] of state.tensors) expect(Array.from(back.state.tensors.get(name)?.floats() ?? [])).toEqual(Array.from(t.floats()));
    const other = open('models/mamba-sotu-q8'); // other weights, the same tokenizer and shapes
    expect(() => other.decodeState(bytes, 'x')).toThrow(FrugalError);
  });
});

describe('StopMatcher', () => {
  it('holds back a possible stop string across pieces and cuts at the first one', () => {
    const s = new StopMatcher(['END', 'xyz']);
    expect(s.push('abcE')).toBe('abc');
    expect(s.push('N')).toBe('');
    expect(s.push('Dmore')).toBe('');
    expect(s.stopped).toBe(true);
    const t = new StopMatcher(['END']);
    expect(t.push('EN')).toBe('');
    expect(t.push('x')).toBe('ENx');
    expect(t.push('E')).toBe('');
    expect(t.flush()).toBe('E');
  });
});

describe('tokenLogprobs', () => {
  it('is log softmax, with the alternatives most likely first', () => {
    const r = tokenLogprobs(Float32Array.of(0, Math.log(3), 0), 0, 2);
    expect(r.logprob).toBeCloseTo(Math.log(1 / 5), 6);
    expect(r.top.map(([i]) => i)).toEqual([1, 0]);
    expect(r.top[0][1]).toBeCloseTo(Math.log(3 / 5), 6);
  });
});

describe('the HTTP app before the model is loaded', () => {
  it('answers /health with 503 and every API route with an OpenAI-shaped 503, the key still checked first', async () => {
    const life = { ready: false, draining: false, ctx: null, inflight: 0 };
    const app = buildApp(life, { apiKey: 'k', logPrompts: false, keepAliveMs: 15_000, log: () => {} });
    try {
      const health = await app.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toEqual({ status: 'loading' });
      const noKey = await app.inject({ method: 'GET', url: '/v1/models' });
      expect(noKey.statusCode).toBe(401);
      const models = await app.inject({ method: 'GET', url: '/v1/models', headers: { authorization: 'Bearer k' } });
      expect(models.statusCode).toBe(503);
      expect(models.json().error.code).toBe('loading');
      const done = await app.inject({
        method: 'POST',
        url: '/v1/completions',
        headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
        payload: { model: 'm', prompt: 'x' },
      });
      expect(done.statusCode).toBe(503);
    } finally {
      await app.close();
    }
  });
});
