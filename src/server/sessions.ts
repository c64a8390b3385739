import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { FrugalError } from '../io/errors.js';
import type { Lifecycle } from './app.js';
import { ApiError, badRequest, notFound, sessionCreateSchema } from './openai.js';
import { STORE_ID, sha256Hex } from './store-dir.js';
import { CorruptSnapshotError } from './store.js';
import type { SessionRecord, Snapshot } from './store.js';
import type { ServerContext } from './turn.js';

/**
 * Sessions: named, mutable pointers to snapshots. A turn that names a session (`session_id`)
 * continues from its snapshot and moves it to the turn's own; a fork is a second pointer to the
 * same snapshot; the state routes export a session's state file and import one (checked against
 * this model, then committed as a new snapshot the session points at).
 */
const view = (s: SessionRecord) => ({ id: s.id, object: 'session', snapshot: s.snapshot, created: s.created, updated: s.updated });

async function sessionOr404(ctx: ServerContext, id: string): Promise<SessionRecord> {
  const s = STORE_ID.test(id) ? await ctx.store.getSession(id) : null;
  if (!s) throw notFound(`no session '${id}'`, 'session_id', 'session_not_found');
  return s;
}

function newSession(snapshot: string | null): SessionRecord {
  const now = Date.now();
  return { id: `sess-${randomBytes(12).toString('hex')}`, snapshot, created: now, updated: now };
}

export function registerSessions(app: FastifyInstance, life: Lifecycle): void {
  const ctx = () => life.ctx as ServerContext;
  type Params = { Params: { id: string } };

  app.post('/v1/sessions', { schema: { body: sessionCreateSchema } }, async (req, reply) => {
    const from = (req.body as { previous_response_id?: string | null } | null)?.previous_response_id ?? null;
    if (from !== null && !(await ctx().store.hasSnapshot(from)))
      throw notFound(`no snapshot '${from}'`, 'previous_response_id', 'snapshot_not_found');
    const s = newSession(from);
    await ctx().store.putSession(s);
    return reply.code(201).send(view(s));
  });
  app.get('/v1/sessions', async () => ({ object: 'list', data: (await ctx().store.listSessions()).map(view) }));
  app.get<Params>('/v1/sessions/:id', async (req) => view(await sessionOr404(ctx(), req.params.id)));
  app.delete<Params>('/v1/sessions/:id', async (req) => {
    await sessionOr404(ctx(), req.params.id);
    await ctx().store.deleteSession(req.params.id);
    return { id: req.params.id, object: 'session.deleted', deleted: true };
  });
  app.post<Params>('/v1/sessions/:id/fork', async (req, reply) => {
    const s = newSession((await sessionOr404(ctx(), req.params.id)).snapshot);
    await ctx().store.putSession(s);
    return reply.code(201).send(view(s));
  });

  app.get<Params>('/v1/sessions/:id/state', async (req, reply) => {
    const s = await sessionOr404(ctx(), req.params.id);
    if (s.snapshot === null) throw notFound(`session '${s.id}' has no turn yet, so no state`, 'session_id', 'no_state');
    let snap: Snapshot | null;
    try {
      snap = await ctx().store.getSnapshot(s.snapshot);
    } catch (e) {
      if (e instanceof CorruptSnapshotError) throw new ApiError(422, e.message, 'invalid_request_error', 'session_id', 'snapshot_corrupt');
      throw e;
    }
    if (!snap) throw notFound(`snapshot '${s.snapshot}' of session '${s.id}' is gone`, 'session_id', 'snapshot_not_found');
    reply.header('x-frugal-snapshot', snap.id).header('x-frugal-tokens', String(snap.tokens)).type('application/octet-stream');
    return reply.send(Buffer.from(snap.state));
  });

  app.put<Params>('/v1/sessions/:id/state', async (req, reply) => {
    const { id } = req.params;
    if (!STORE_ID.test(id)) throw badRequest(`session id '${id}' is not 1-128 letters, digits, '-' or '_'`, 'session_id');
    if (!Buffer.isBuffer(req.body))
      throw new ApiError(415, 'send the state file as application/octet-stream', 'invalid_request_error', null, 'unsupported_media_type');
    const bytes = new Uint8Array(req.body);
    const c = ctx();
    let tokens: number;
    try {
      const { state, pending } = c.served.decodeState(bytes, 'the state file sent');
      tokens = state.position + (pending === null ? 0 : 1);
      for (const t of state.tensors.values()) t.dispose();
    } catch (e) {
      if (e instanceof FrugalError) throw badRequest(e.message, 'body', 'invalid_state');
      throw e;
    }
    const limit = c.served.maxContext;
    if (limit !== null && tokens > limit)
      throw badRequest(
        `the state file holds ${tokens} tokens; this model's maximum context length is ${limit} tokens`,
        'body',
        'context_length_exceeded',
      );
    const old = await c.store.getSession(id);
    const snapId = `import-${randomBytes(12).toString('hex')}`;
    await c.store.putSnapshot({
      id: snapId,
      parent: null,
      tokens,
      model: c.served.identity,
      checksum: sha256Hex(bytes),
      state: bytes,
      created: Date.now(),
    });
    const now = Date.now();
    const s: SessionRecord = { id, snapshot: snapId, created: old?.created ?? now, updated: now };
    await c.store.putSession(s);
    return reply.code(old ? 200 : 201).send(view(s));
  });
}
