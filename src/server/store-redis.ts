/**
 * The Redis state store (`frugal serve --state-store redis://HOST:PORT[/db]`): what several
 * replicas behind one load balancer share, so that any of them continues any session.
 *
 * Keys (all under one prefix, `frugal:` unless told otherwise):
 *   <p>snap:<id>      hash {meta: JSON without the bytes, state: the state file's bytes}; written once
 *   <p>session:<id>   JSON SessionRecord
 *   <p>sessions       set of session ids (listSessions reads it instead of SCANning the keyspace)
 *   <p>lock:<id>      the turn lock: a random token, SET NX PX so that it expires if its holder dies
 *   <p>idem:<key>     JSON IdempotencyRecord with a PX expiry
 *
 * Durability is the Redis server's: run it with `appendonly yes` (and `appendfsync always` for a
 * snapshot to survive a power cut the moment putSnapshot resolves).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createClient, RESP_TYPES } from 'redis';
import { CorruptSnapshotError, type IdempotencyRecord, type SessionRecord, type Snapshot, type StateStore } from './store.js';

export interface RedisStoreOptions {
  /** Prefix of every key, so that several deployments (or tests) share one Redis. */
  prefix?: string;
  /** Milliseconds to wait for the first connection before giving up (default 3000). */
  connectTimeoutMs?: number;
}

/** Writes the snapshot unless the id exists: 1 written, 0 same bytes already there, -1 different bytes. */
const PUT_SNAPSHOT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'state') == ARGV[2] then return 0 end
  return -1
end
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'state', ARGV[2])
return 1`;

/** Deletes the lock only while it still holds this token: a lock that expired and was retaken stays. */
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type SnapshotMeta = Omit<Snapshot, 'state'>;

/** The URL checked before any connection, so that a typo gets a message about the URL, not the network. */
export function parseRedisUrl(url: string): { url: string; db: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--state-store ${JSON.stringify(url)} is not a URL: write redis://HOST:PORT[/db]`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`--state-store ${JSON.stringify(url)}: the scheme must be redis:// or rediss:// (redis://HOST:PORT[/db])`);
  }
  if (u.hostname === '') throw new Error(`--state-store ${JSON.stringify(url)} names no host: write redis://HOST:PORT[/db]`);
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) {
    throw new Error(`--state-store ${JSON.stringify(url)}: the path must be a database number (redis://HOST:PORT/0)`);
  }
  return { url, db: path === '' ? 0 : Number(path) };
}

/** Connects (failing fast with a one-line fix when Redis is unreachable) and returns the store. */
export async function createRedisStore(url: string, opts: RedisStoreOptions = {}): Promise<StateStore> {
  parseRedisUrl(url);
  const prefix = opts.prefix ?? 'frugal:';
  const where = safeUrl(url) + (opts.prefix === undefined ? '' : ` (prefix ${prefix})`);
  return new RedisStore(await connect(url, opts.connectTimeoutMs ?? 3000), prefix, where);
}

/** A connected client that reconnects by itself once it has served, and says so (once per cause) on stderr. */
async function connect(url: string, connectTimeoutMs: number) {
  let connected = false;
  let lastError = '';
  const client = createClient({
    url,
    // a command sent while the connection is down fails at once (the request gets an error) rather
    // than waiting in a queue that a client-side timeout would abandon anyway
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      // at startup one refused connection is the answer; once serving, reconnect with backoff
      reconnectStrategy: (retries, cause) => (connected ? Math.min(50 * 2 ** retries, 2000) : cause),
    },
  });
  // node-redis emits 'error' on every failed (re)connection; without a listener it would crash the process
  client.on('error', (err: Error) => {
    if (connected && client.isOpen && err.message !== lastError)
      process.stderr.write(`frugal serve: Redis at ${safeUrl(url)}: ${err.message}; reconnecting\n`);
    lastError = err.message;
  });
  client.on('ready', () => {
    lastError = '';
  });
  try {
    await client.connect();
  } catch (err) {
    client.destroy();
    const why = err instanceof Error ? err.message || err.name : String(err);
    throw new Error(
      `cannot reach Redis at ${safeUrl(url)} (${why}): start redis-server there, or point --state-store at a running one, or use --state-dir DIR`,
    );
  }
  connected = true;
  return client;
}

type RedisClient = Awaited<ReturnType<typeof connect>>;

class RedisStore implements StateStore {
  /** The same connection, replying with Buffers: snapshot bytes are not UTF-8. */
  private readonly bin;

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    readonly where: string,
  ) {
    this.bin = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  }

  private key(kind: 'snap' | 'session' | 'lock' | 'idem', id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }
  private get sessionSet(): string {
    return `${this.prefix}sessions`;
  }

  async putSnapshot(s: Snapshot): Promise<void> {
    const meta: SnapshotMeta = { id: s.id, parent: s.parent, tokens: s.tokens, model: s.model, checksum: s.checksum, created: s.created };
    const state = Buffer.from(s.state.buffer, s.state.byteOffset, s.state.byteLength);
    const r = await this.client.eval(PUT_SNAPSHOT, { keys: [this.key('snap', s.id)], arguments: [JSON.stringify(meta), state] });
    if (r === -1) throw new Error(`snapshot ${s.id} already exists with different bytes; snapshots are immutable`);
  }

  async getSnapshot(id: string): Promise<Snapshot | null> {
    const [meta, state] = await this.bin.hmGet(this.key('snap', id), ['meta', 'state']);
    if (meta === null && state === null) return null;
    return decodeSnapshot(id, meta, state);
  }

  async hasSnapshot(id: string): Promise<boolean> {
    return (await this.client.exists(this.key('snap', id))) === 1;
  }

  async putSession(s: SessionRecord): Promise<void> {
    await this.client.multi().set(this.key('session', s.id), JSON.stringify(s)).sAdd(this.sessionSet, s.id).exec();
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const v = await this.client.get(this.key('session', id));
    return v === null ? null : (JSON.parse(v) as SessionRecord);
  }

  async deleteSession(id: string): Promise<boolean> {
    const [deleted] = await this.client.multi().del(this.key('session', id)).sRem(this.sessionSet, id).exec();
    return Number(deleted) === 1;
  }

  async listSessions(): Promise<SessionRecord[]> {
    const ids = await this.client.sMembers(this.sessionSet);
    const out: SessionRecord[] = [];
    // MGET in slices: one round trip per thousand sessions, no single reply of unbounded size
    for (let i = 0; i < ids.length; i += 1000) {
      const values = await this.client.mGet(ids.slice(i, i + 1000).map((id) => this.key('session', id)));
      for (const v of values) if (v !== null) out.push(JSON.parse(v) as SessionRecord);
    }
    return out;
  }

  async lockTurn(sessionId: string, ttlMs: number): Promise<string | null> {
    const token = randomUUID();
    const expiration = { type: 'PX' as const, value: Math.max(1, Math.ceil(ttlMs)) };
    const r = await this.client.set(this.key('lock', sessionId), token, { condition: 'NX', expiration });
    return r === 'OK' ? token : null;
  }

  async unlockTurn(sessionId: string, token: string): Promise<void> {
    await this.client.eval(UNLOCK, { keys: [this.key('lock', sessionId)], arguments: [token] });
  }

  async getIdempotent(key: string): Promise<IdempotencyRecord | null> {
    const v = await this.client.get(this.key('idem', key));
    return v === null ? null : (JSON.parse(v) as IdempotencyRecord);
  }

  async putIdempotent(key: string, r: IdempotencyRecord, ttlMs: number): Promise<void> {
    await this.client.set(this.key('idem', key), JSON.stringify(r), { expiration: { type: 'PX', value: Math.max(1, Math.ceil(ttlMs)) } });
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close();
  }
}

/** Parses and verifies a stored snapshot; anything missing, unparsable or off its checksum is corrupt. */
function decodeSnapshot(id: string, meta: Buffer | null, state: Buffer | null): Snapshot {
  if (meta === null) throw new CorruptSnapshotError(id, 'its metadata is missing');
  if (state === null) throw new CorruptSnapshotError(id, 'its state bytes are missing');
  let m: SnapshotMeta;
  try {
    m = JSON.parse(meta.toString('utf8')) as SnapshotMeta;
  } catch {
    throw new CorruptSnapshotError(id, 'its metadata is not JSON');
  }
  if (
    m === null ||
    typeof m !== 'object' ||
    typeof m.checksum !== 'string' ||
    typeof m.tokens !== 'number' ||
    typeof m.model !== 'string'
  ) {
    throw new CorruptSnapshotError(id, 'its metadata lacks checksum, tokens or model');
  }
  const sum = createHash('sha256').update(state).digest('hex');
  if (sum !== m.checksum)
    throw new CorruptSnapshotError(id, `SHA-256 ${sum.slice(0, 12)}… of ${state.length} bytes, expected ${m.checksum.slice(0, 12)}…`);
  // a copy that owns its memory: the reply Buffer may be a view into a pooled allocation
  return {
    id,
    parent: m.parent ?? null,
    tokens: m.tokens,
    model: m.model,
    checksum: m.checksum,
    created: m.created,
    state: new Uint8Array(state),
  };
}

/** The URL for messages and logs, without a password. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
