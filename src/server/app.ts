import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, LIMITS, badRequest, chatSchema, completionSchema, notFound } from './openai.js';
import type { ChatBody, CommonBody, CompletionBody } from './openai.js';
import { SseWriter, finalResponse, replayStream } from './responses.js';
import type { Endpoint, ResponseMeta } from './responses.js';
import { registerSessions } from './sessions.js';
import { newId, runTurn } from './turn.js';
import type { ServerContext, TurnSpec } from './turn.js';
import type { IdempotencyRecord } from './store.js';

/**
 * The HTTP side of `frugal serve` (fastify, requests validated against JSON schemas): the OpenAI
 * routes, /health, /metrics and the session routes; bearer keys compared in constant time;
 * errors always in OpenAI's shape; one log line per request on stderr, without prompts or keys
 * unless asked.
 */
export interface AppOptions {
  apiKey?: string;
  logPrompts: boolean;
  /** Seconds between keep-alive comments on an open stream. */
  keepAliveMs: number;
  log: (line: string) => void;
}

/** The server's lifecycle, read by the hooks: loading (503), ready, draining (503 to new turns). */
export interface Lifecycle {
  ready: boolean;
  draining: boolean;
  ctx: ServerContext | null;
  /** Requests in progress (a drain waits for them). */
  inflight: number;
}

const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

function keyDigest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function buildApp(life: Lifecycle, o: AppOptions): FastifyInstance {
  const app = Fastify({
    bodyLimit: LIMITS.bodyBytes,
    logger: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
  });
  const want = o.apiKey === undefined ? null : keyDigest(o.apiKey);

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: LIMITS.stateBytes }, (_req, body, done) =>
    done(null, body),
  );

  app.addHook('onRequest', async (req, reply) => {
    const t0 = performance.now();
    const path = req.url.split('?')[0];
    life.inflight++;
    reply.raw.once('close', () => {
      life.inflight--;
      const route = req.routeOptions.url ?? 'unknown';
      life.ctx?.metrics.request(route, reply.raw.statusCode);
      o.log(`${req.method} ${path} ${reply.raw.statusCode} ${(performance.now() - t0).toFixed(0)}ms`);
    });
    if (path === '/health') return;
    if (want !== null) {
      const h = req.headers.authorization ?? '';
      const got = keyDigest(h.startsWith('Bearer ') ? h.slice(7) : '\u0000no key');
      if (!timingSafeEqual(got, want))
        throw new ApiError(
          401,
          'missing or wrong API key: send Authorization: Bearer <key>',
          'invalid_request_error',
          null,
          'invalid_api_key',
        );
    }
    if (!life.ready) throw new ApiError(503, 'the model is loading; retry shortly', 'server_error', null, 'loading');
  });

  app.setErrorHandler((e: FastifyError | ApiError, _req, reply) => {
    const err = toApiError(e);
    if (err.status >= 500 && !(e instanceof ApiError)) o.log(`error: ${e.message}`);
    reply.code(err.status).headers(err.headers).send(err.body());
  });
  app.setNotFoundHandler((req, reply) => {
    const err = notFound(`no route ${req.method} ${req.url.split('?')[0]}`, null, 'unknown_route');
    reply.code(404).send(err.body());
  });

  app.get('/health', async (_req, reply) => {
    if (!life.ready) return reply.code(503).send({ status: 'loading' });
    return { status: life.draining ? 'draining' : 'ok' };
  });
  app.get('/metrics', async (_req, reply) => {
    const ctx = life.ctx as ServerContext;
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return ctx.metrics.text(ctx.scheduler.active, ctx.scheduler.queued);
  });
  app.get('/v1/models', async () => {
    const ctx = life.ctx as ServerContext;
    return { object: 'list', data: [{ id: ctx.served.id, object: 'model', created: 0, owned_by: 'frugal' }] };
  });

  const handle = (endpoint: Endpoint) => async (req: FastifyRequest, reply: FastifyReply) => {
    const ctx = life.ctx as ServerContext;
    if (life.draining) throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'draining');
    const body = req.body as CompletionBody | ChatBody;
    const spec = turnSpec(ctx, endpoint, body);
    if (o.logPrompts) o.log(`prompt ${spec.id}: ${JSON.stringify('messages' in body ? body.messages : body.prompt)}`);
    const idem = req.headers['idempotency-key'];
    const key = typeof idem === 'string' && idem !== '' ? `${endpoint}:${o.apiKey ?? ''}:${idem}` : null;
    const stream = body.stream === true;
    const includeUsage = body.stream_options?.include_usage === true;
    const replay = (rec: IdempotencyRecord) => {
      reply.hijack();
      if (stream) return replayStream(reply.raw, JSON.parse(rec.body), includeUsage);
      reply.raw.writeHead(rec.status, { 'content-type': 'application/json; charset=utf-8', 'idempotent-replayed': 'true' });
      return reply.raw.end(rec.body);
    };
    // a key in progress is held by a lock in the store, so replicas sharing it see it too
    const lockId = key === null ? '' : `idem_${createHash('sha256').update(key).digest('hex')}`;
    let token: string | null = null;
    if (key !== null) {
      const rec = await ctx.store.getIdempotent(key);
      if (rec) return replay(rec);
      token = await ctx.store.lockTurn(lockId, ctx.lockTtlMs);
      if (token === null)
        throw new ApiError(
          409,
          'a request with this Idempotency-Key is in progress',
          'invalid_request_error',
          null,
          'idempotency_in_progress',
        );
      const done = await ctx.store.getIdempotent(key); // finished elsewhere between the read and the lock
      if (done) {
        await ctx.store.unlockTurn(lockId, token);
        return replay(done);
      }
    }
    try {
      return await respond(ctx, spec, reply, { endpoint, stream, includeUsage, key });
    } finally {
      if (token !== null) await ctx.store.unlockTurn(lockId, token);
    }
  };

  /** Run the turn and answer: a stream that begins once the turn passed its checks, or the whole JSON. */
  const respond = async (
    ctx: ServerContext,
    spec: TurnSpec,
    reply: FastifyReply,
    { endpoint, stream, includeUsage, key }: { endpoint: Endpoint; stream: boolean; includeUsage: boolean; key: string | null },
  ) => {
    const meta: ResponseMeta = {
      id: spec.id,
      created: Math.floor(Date.now() / 1000),
      model: ctx.served.id,
      endpoint,
      logprobs: spec.logprobs !== null,
      sessionId: spec.sessionId,
    };
    const abort = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    let sse: SseWriter | null = null;
    if (stream) {
      spec.onStarted = () => {
        reply.hijack();
        sse = new SseWriter(reply.raw, meta, includeUsage, o.keepAliveMs);
        sse.open(spec.n);
      };
      spec.onDelta = (i, text, lp) => sse?.delta(i, text, lp);
    }
    try {
      const result = await runTurn(ctx, spec, abort.signal);
      const final = finalResponse(meta, result);
      if (key !== null)
        await ctx.store.putIdempotent(key, { status: 200, body: JSON.stringify(final), created: Date.now() }, IDEMPOTENCY_TTL_MS);
      if (sse) return (sse as SseWriter).finish(result);
      return final;
    } catch (e) {
      if (!sse) throw e;
      (sse as SseWriter).error(toApiError(e).body());
    } finally {
      (sse as SseWriter | null)?.close();
    }
  };

  app.post('/v1/completions', { schema: { body: completionSchema } }, handle('completions'));
  app.post('/v1/chat/completions', { schema: { body: chatSchema } }, handle('chat'));
  registerSessions(app, life);
  return app;
}

/** The turn a validated request asks for. */
function turnSpec(ctx: ServerContext, endpoint: Endpoint, req: CompletionBody | ChatBody): TurnSpec {
  const body = req as CommonBody & { max_completion_tokens?: number | null };
  if (body.model !== ctx.served.id)
    throw notFound(`no model '${body.model}'; this server runs '${ctx.served.id}'`, 'model', 'model_not_found');
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  let logprobs: number | null = null;
  let input: TurnSpec['input'];
  if (endpoint === 'chat') {
    const chat = req as ChatBody;
    if (chat.logprobs === true) logprobs = chat.top_logprobs ?? 0;
    else if (chat.top_logprobs != null) throw badRequest('top_logprobs needs logprobs: true', 'top_logprobs');
    const messages = chat.messages.map((m) => ({
      role: m.role,
      content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
    }));
    if (messages.length === 0) throw badRequest('messages must hold at least one message', 'messages');
    input = (continued) => ctx.served.renderChat(messages, continued);
  } else {
    const comp = req as CompletionBody;
    logprobs = comp.logprobs ?? null;
    const p = comp.prompt;
    input = () => (typeof p === 'string' ? p : typeof p[0] === 'string' ? (p[0] as string) : (p as number[]));
  }
  return {
    id: newId(endpoint === 'chat' ? 'chatcmpl' : 'cmpl'),
    input,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? 16,
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    n: body.n ?? 1,
    seed: body.seed ?? null,
    stop,
    logprobs,
    previousResponseId: body.previous_response_id ?? null,
    sessionId: body.session_id ?? null,
    onStarted: () => {},
    onDelta: () => {},
  };
}

/** Any error as an OpenAI-shaped one: fastify's validation and body errors become 4xx, the rest 500. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const fe = e as FastifyError;
  if (fe.validation) {
    const first = fe.validation[0];
    const param =
      (first?.instancePath ?? '').replace(/^\//, '').split('/')[0] ||
      (first?.params as { missingProperty?: string })?.missingProperty ||
      null;
    return badRequest(`invalid request: ${param ?? 'body'} ${first?.message ?? fe.message}`, param, 'invalid_value');
  }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new ApiError(413, 'the request body is too large', 'invalid_request_error', null, 'body_too_large');
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new ApiError(415, 'send the body as application/json', 'invalid_request_error', null, 'unsupported_media_type');
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)
    return new ApiError(
      fe.statusCode,
      `invalid request: ${fe.message}`,
      'invalid_request_error',
      null,
      fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'invalid_json' : null,
    );
  return new ApiError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'server_error', null, null);
}
