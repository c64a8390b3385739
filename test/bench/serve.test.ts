/**
 * The parts of `frugal bench serve` that need no server: SSE parsing, the streaming client against
 * a hand-written SSE responder, percentiles, the aggregate rate, the verdicts and the turns that
 * build the long conversation. Expected values are worked out by hand in the comments.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pool, streamRequest, streamTokens } from '../../src/bench/serve/client.js';
import { verdicts } from '../../src/bench/serve/run.js';
import { conversationTurns } from '../../src/bench/serve/sessions.js';
import { SseParser } from '../../src/bench/serve/sse.js';
import {
  aggregateRate,
  continuationVerdict,
  firstTokenTimes,
  interTokenGaps,
  latency,
  throughputVerdict,
  verdictLine,
} from '../../src/bench/serve/stats.js';
import { ByteTokenizer } from '../../src/io/tokenizer.js';
import { expectOneLineError, frugal } from '../helpers/cli.js';

describe('SSE parser', () => {
  const wire = ': keep-alive\r\n\r\ndata: {"t":"é"}\n\ndata: a\r\ndata: b\r\n\r\ndata:[DONE]\n\ndata: unterminated';

  it('gives the same events however the bytes are cut, even inside a UTF-8 character or a CRLF', () => {
    const bytes = new TextEncoder().encode(wire);
    const expected = ['{"t":"é"}', 'a\nb', '[DONE]'];
    for (let cut = 1; cut < bytes.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut)), ...p.end()].map((e) => e.data);
      expect(got, `cut at byte ${cut}`).toEqual(expected);
      expect(p.comments).toBe(1);
    }
    const p = new SseParser();
    const byByte = [...bytes].flatMap((b) => p.push(Uint8Array.of(b))).map((e) => e.data);
    expect(byByte).toEqual(expected);
  });

  it('ignores fields other than data and events with no data', () => {
    const p = new SseParser();
    expect(p.push('event: x\nid: 4\n\nretry: 10\ndata\n\n').map((e) => e.data)).toEqual(['']);
  });
});

describe('latency and rate arithmetic', () => {
  it('p50 and p99 interpolate between order statistics', () => {
    // 1..100: p50 sits halfway between the 50th and 51st values, p99 at 0.01 of the way from 99 to 100
    const l = latency(Array.from({ length: 100 }, (_, i) => 100 - i));
    expect(l.p50_ms).toBeCloseTo(50.5, 12);
    expect(l.p99_ms).toBeCloseTo(99.01, 12);
    expect(l.mean_ms).toBeCloseTo(50.5, 12);
    expect(l.max_ms).toBe(100);
    expect(l.n).toBe(100);
    expect(latency([7]).p99_ms).toBe(7);
    expect(Number.isNaN(latency([]).p50_ms)).toBe(true);
  });

  it('first-token times and inter-token gaps per stream', () => {
    const streams = [
      { start: 100, tokenTimes: [130, 140, 160], tokens: 3 },
      { start: 0, tokenTimes: [5, 6], tokens: 2 },
      { start: 50, tokenTimes: [], tokens: 0 },
    ];
    expect(firstTokenTimes(streams)).toEqual([30, 5]);
    expect(interTokenGaps(streams)).toEqual([10, 20, 1]);
  });

  it('the aggregate rate counts tokens while every stream decodes', () => {
    // stream A: tokens at 10..100 ms every 10 ms; stream B: at 40..70 ms every 10 ms, two tokens a chunk.
    // The window is (40, 70]: A has 3 chunks there (50, 60, 70), B 3 chunks of 2 tokens: 9 tokens in 30 ms.
    const a = { start: 0, tokenTimes: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], tokens: 10 };
    const b = { start: 30, tokenTimes: [40, 50, 60, 70], tokens: 8 };
    const r = aggregateRate([a, b]);
    expect(r.method).toBe('all streams decoding');
    expect(r.window_s).toBeCloseTo(0.03, 12);
    expect(r.tokens_per_s).toBeCloseTo(300, 9);
  });

  it('falls back to end to end when no window holds a step of every stream', () => {
    // A ends at 20 ms before B's first token at 30 ms: 5 tokens from 0 to 40 ms
    const r = aggregateRate([
      { start: 0, tokenTimes: [10, 20], tokens: 2 },
      { start: 5, tokenTimes: [30, 40], tokens: 3 },
    ]);
    expect(r.method).toBe('end to end');
    expect(r.tokens_per_s).toBeCloseTo(125, 9);
    expect(aggregateRate([]).tokens_per_s).toBe(0);
  });
});

describe('verdicts', () => {
  it('throughput meets its target at 90% of the batched decode and not below', () => {
    expect(throughputVerdict(900, 1000).met).toBe(true);
    expect(throughputVerdict(899, 1000).met).toBe(false);
    expect(throughputVerdict(899, 1000).value).toBeCloseTo(0.899, 12);
    expect(verdictLine(throughputVerdict(899, 1000))).toMatch(/: 0\.90 \(target ≥ 0\.90\) MISSED$/);
  });

  it('continuing from a snapshot must beat re-processing the history', () => {
    const v = continuationVerdict(20, 5000);
    expect(v.value).toBe(250);
    expect(v.met).toBe(true);
    expect(continuationVerdict(20, 19).met).toBe(false);
    expect(verdictLine(v)).toMatch(/: 250 \(target > 1\) met$/);
  });

  it('only the parts that were measured are judged', () => {
    expect(verdicts({ throughput: { error: 'x' }, long_conversation: { continued_ttft_ms: 10, reprocessed_ttft_ms: 40 } })).toEqual([
      continuationVerdict(10, 40),
    ]);
    expect(verdicts({ throughput: { server_tok_s: 95, reference_tok_s: 100 } }).map((v) => v.met)).toEqual([true]);
  });
});

describe('streaming client', () => {
  let server: Server;
  let base = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/bad') {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"max_tokens must be at most 4096","type":"invalid_request_error"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (text: string) =>
        `data: {"id":"cmpl-7","object":"text_completion","choices":[{"index":0,"text":${JSON.stringify(text)},"finish_reason":null}]}\n\n`;
      const parts = [
        ': ping\n\n',
        chunk('Hel'),
        chunk(''),
        chunk('lo'),
        'data: {"id":"cmpl-7","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":3}}\n\n',
      ];
      if (req.url !== '/cut') parts.push('data: [DONE]\n\n');
      // split mid-event, as TCP may
      const all = parts.join('');
      res.write(all.slice(0, 37));
      setTimeout(() => res.end(all.slice(37)), 20);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = server.address();
    base = `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('reads text, id, usage and one time per text chunk', async () => {
    const r = await streamRequest(`${base}/ok`, { prompt: 'x' });
    expect(r.error).toBeNull();
    expect(r.done).toBe(true);
    expect(r.id).toBe('cmpl-7');
    expect(r.text).toBe('Hello');
    expect(r.tokenTimes.length).toBe(2);
    expect(streamTokens(r)).toBe(3);
    expect(r.tokenTimes[0]).toBeGreaterThanOrEqual(r.start);
  });

  it("reports an OpenAI-shaped error's message and a stream cut before [DONE]", async () => {
    expect((await streamRequest(`${base}/bad`, {})).error).toBe('HTTP 400: max_tokens must be at most 4096');
    expect((await streamRequest(`${base}/cut`, {})).error).toBe('the stream ended without data: [DONE]');
  });

  it('pool runs every index once with the concurrency asked', async () => {
    let live = 0,
      peak = 0;
    const out = await pool(10, 3, async (i) => {
      peak = Math.max(peak, ++live);
      await new Promise((r) => setTimeout(r, 5));
      live--;
      return i * i;
    });
    expect(out).toEqual([0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    expect(peak).toBe(3);
  });
});

describe('the long conversation', () => {
  it('is cut into turns of at most turn-tokens tokens that add up to the length asked', () => {
    expect(conversationTurns(new ByteTokenizer(), 'abcdefghij', 7, 3)).toEqual(['abc', 'def', 'g']);
    expect(() => conversationTurns(new ByteTokenizer(), 'abc', 7, 3)).toThrow(/only 3 tokens/);
  });
});

describe('frugal bench serve', () => {
  it('refuses a missing model in one line, exit 2', () => {
    expectOneLineError(
      frugal(['bench', 'serve', '--quick', '--model', '/nonexistent/model']),
      2,
      /no model at \/nonexistent\/model: pass --model DIR/,
    );
  });
});
