import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptSnapshotError } from './store.js';
import type { IdempotencyRecord, SessionRecord, Snapshot, StateStore } from './store.js';

/**
 * The embedded state store: one directory on local disk, which several `frugal serve` processes
 * on the same machine may share.
 *
 *   snapshots/<id>.snap   MAGIC, one JSON line (id, parent, tokens, model, checksum, created,
 *                         bytes), then the state file's bytes; written once (hard-linked into
 *                         place, so of two racing writers exactly one wins)
 *   sessions/<id>.json    the session record, replaced atomically on each turn
 *   locks/<id>.lock       a session's turn lock: {"token", "expires", "pid", "host"} created with
 *                         O_EXCL; an expired lock, or one whose process on this machine has died, is
 *                         broken by whoever first creates <id>.lock.break (O_EXCL)
 *   idempotency/<sha256 of the key>.json   {"record", "expires"}
 *
 * Every write goes to a temporary name, is fsynced, renamed (a snapshot: linked) into place, and the directory is
 * fsynced, so a crash leaves either the old file or the new one. Snapshots are verified (length
 * and SHA-256) on every load: a torn or edited file raises CorruptSnapshotError, never a state.
 */
const MAGIC = 'FRUGALSNAP1\n';
/** Ids become file names: letters, digits, '-' and '_' only. */
export const STORE_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** A breaker that died leaves its .break file; after this long another may break the lock. */
const BREAK_STALE_MS = 10_000;

function checkId(id: string, what: string): void {
  if (!STORE_ID.test(id)) throw new Error(`${what} id ${JSON.stringify(id)} is not 1-128 letters, digits, '-' or '_'`);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await open(dir, 'r').catch(() => null); // some platforms cannot open a directory: the rename is all there is
  if (!fd) return;
  try {
    await fd.sync().catch(() => undefined);
  } finally {
    await fd.close();
  }
}

/** Write `data` to a new temporary file beside `path` and fsync it; returns its name (the caller publishes or removes it). */
async function writeTemp(path: string, data: Uint8Array | string): Promise<string> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = await open(tmp, 'w');
  try {
    await fd.writeFile(data);
    await fd.sync();
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  } finally {
    await fd.close();
  }
  return tmp;
}

/** Temporary file, fsync, rename over `path`, fsync the directory. */
export async function writeAtomic(path: string, dir: string, data: Uint8Array | string): Promise<void> {
  const tmp = await writeTemp(path, data);
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dir);
}

/**
 * Create `path` with `data` unless it exists, atomically: a fsynced temporary file is hard-linked
 * into place (link, unlike rename, fails when the name is taken, so of two racing writers one
 * wins), then the directory is fsynced. False when `path` already existed.
 */
async function writeOnce(path: string, dir: string, data: Uint8Array): Promise<boolean> {
  const tmp = await writeTemp(path, data);
  try {
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await fsyncDir(dir);
  return true;
}

async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** The bytes of a snapshot file. */
export function encodeSnapshot(s: Snapshot): Uint8Array {
  const { state, ...meta } = s;
  const head = Buffer.from(`${MAGIC}${JSON.stringify({ ...meta, bytes: state.length })}\n`, 'utf8');
  return Buffer.concat([head, state]);
}

/** A snapshot file's bytes decoded and verified (length and checksum), or CorruptSnapshotError. */
export function decodeSnapshot(id: string, buf: Uint8Array): Snapshot {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.subarray(0, MAGIC.length).toString('latin1') !== MAGIC)
    throw new CorruptSnapshotError(id, 'it does not start with the snapshot mark');
  const nl = b.indexOf(10, MAGIC.length);
  if (nl < 0) throw new CorruptSnapshotError(id, 'its header is cut short');
  let meta: Omit<Snapshot, 'state'> & { bytes: number };
  try {
    meta = JSON.parse(b.subarray(MAGIC.length, nl).toString('utf8'));
  } catch {
    throw new CorruptSnapshotError(id, 'its header is not JSON');
  }
  const state = new Uint8Array(b.subarray(nl + 1));
  if (meta.id !== id) throw new CorruptSnapshotError(id, `it names itself ${JSON.stringify(meta.id)}`);
  if (state.length !== meta.bytes) throw new CorruptSnapshotError(id, `it holds ${state.length} state bytes of ${meta.bytes}`);
  if (sha256Hex(state) !== meta.checksum) throw new CorruptSnapshotError(id, 'its SHA-256 does not match');
  const { bytes: _bytes, ...rest } = meta;
  return { ...rest, state };
}

interface LockFile {
  token: string;
  expires: number;
  /** The holder's process and machine: a lock whose holder is gone from this machine is stale at once (a restart after a crash). */
  pid?: number;
  host?: string;
}

/** False when `l` was taken by a process of this machine that no longer runs. */
function holderAlive(l: LockFile): boolean {
  if (l.pid === undefined || l.host !== hostname()) return true;
  try {
    process.kill(l.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export class DirStore implements StateStore {
  readonly where: string;
  private readonly snaps: string;
  private readonly sessions: string;
  private readonly locks: string;
  private readonly idem: string;

  private constructor(readonly dir: string) {
    this.where = `dir:${dir}`;
    this.snaps = join(dir, 'snapshots');
    this.sessions = join(dir, 'sessions');
    this.locks = join(dir, 'locks');
    this.idem = join(dir, 'idempotency');
  }

  /** Open (creating when missing) a store directory. */
  static async open(dir: string): Promise<DirStore> {
    const s = new DirStore(dir);
    for (const d of [s.snaps, s.sessions, s.locks, s.idem]) await mkdir(d, { recursive: true });
    return s;
  }

  private snapPath(id: string): string {
    checkId(id, 'snapshot');
    return join(this.snaps, `${id}.snap`);
  }
  private sessionPath(id: string): string {
    checkId(id, 'session');
    return join(this.sessions, `${id}.json`);
  }
  private lockPath(id: string): string {
    checkId(id, 'session');
    return join(this.locks, `${id}.lock`);
  }

  async putSnapshot(s: Snapshot): Promise<void> {
    const path = this.snapPath(s.id);
    if (sha256Hex(s.state) !== s.checksum) throw new Error(`snapshot ${s.id}: its checksum does not match its state bytes`);
    if (await writeOnce(path, this.snaps, encodeSnapshot(s))) return;
    const prev = decodeSnapshot(s.id, (await readOrNull(path)) ?? new Uint8Array());
    if (prev.checksum === s.checksum && prev.model === s.model && prev.tokens === s.tokens) return;
    throw new Error(`snapshot ${s.id} already exists with other contents; snapshots are immutable`);
  }

  async getSnapshot(id: string): Promise<Snapshot | null> {
    if (!STORE_ID.test(id)) return null;
    const b = await readOrNull(this.snapPath(id));
    return b ? decodeSnapshot(id, b) : null;
  }

  async hasSnapshot(id: string): Promise<boolean> {
    if (!STORE_ID.test(id)) return false;
    return stat(this.snapPath(id)).then(
      () => true,
      () => false,
    );
  }

  async putSession(s: SessionRecord): Promise<void> {
    await writeAtomic(this.sessionPath(s.id), this.sessions, JSON.stringify(s));
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    if (!STORE_ID.test(id)) return null;
    const b = await readOrNull(this.sessionPath(id));
    return b ? (JSON.parse(b.toString('utf8')) as SessionRecord) : null;
  }

  async deleteSession(id: string): Promise<boolean> {
    if (!STORE_ID.test(id)) return false;
    try {
      await unlink(this.sessionPath(id));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await fsyncDir(this.sessions);
    return true;
  }

  async listSessions(): Promise<SessionRecord[]> {
    const names = (await readdir(this.sessions)).filter((n) => n.endsWith('.json'));
    const out: SessionRecord[] = [];
    for (const n of names) {
      const s = await this.getSession(n.slice(0, -'.json'.length));
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
  }

  async lockTurn(sessionId: string, ttlMs: number): Promise<string | null> {
    const path = this.lockPath(sessionId);
    const token = randomBytes(16).toString('hex');
    for (let attempt = 0; attempt < 2; attempt++) {
      if (
        await createExclusive(
          path,
          JSON.stringify({ token, expires: Date.now() + ttlMs, pid: process.pid, host: hostname() } satisfies LockFile),
        )
      )
        return token;
      const held = await readLock(path);
      if (held && held.expires > Date.now() && holderAlive(held)) return null;
      if (!(await this.breakLock(path, held))) return null;
    }
    return null;
  }

  /** Remove an expired lock, when this process is the one breaker (a `.break` file made with O_EXCL). */
  private async breakLock(path: string, seen: LockFile | null): Promise<boolean> {
    const brk = `${path}.break`;
    if (!(await createExclusive(brk, String(Date.now())))) {
      const age = await stat(brk).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age < BREAK_STALE_MS) return false;
      await unlink(brk).catch(() => undefined); // its breaker died: the next attempt may break the lock
      return false;
    }
    try {
      const now = await readLock(path);
      if (now && (now.token !== seen?.token || (now.expires > Date.now() && holderAlive(now)))) return false; // retaken meanwhile
      await unlink(path).catch(() => undefined);
      return true;
    } finally {
      await unlink(brk).catch(() => undefined);
    }
  }

  async unlockTurn(sessionId: string, token: string): Promise<void> {
    const path = this.lockPath(sessionId);
    const held = await readLock(path);
    if (held?.token === token) await unlink(path).catch(() => undefined);
  }

  private idemPath(key: string): string {
    return join(this.idem, `${createHash('sha256').update(key).digest('hex')}.json`);
  }

  async getIdempotent(key: string): Promise<IdempotencyRecord | null> {
    const b = await readOrNull(this.idemPath(key));
    if (!b) return null;
    const { record, expires } = JSON.parse(b.toString('utf8')) as { record: IdempotencyRecord; expires: number };
    if (expires > Date.now()) return record;
    await unlink(this.idemPath(key)).catch(() => undefined);
    return null;
  }

  async putIdempotent(key: string, r: IdempotencyRecord, ttlMs: number): Promise<void> {
    await writeAtomic(this.idemPath(key), this.idem, JSON.stringify({ record: r, expires: Date.now() + ttlMs }));
  }

  async close(): Promise<void> {
    /* nothing held open */
  }
}

/** Create `path` with `data` only if it does not exist (O_EXCL); false when it does. */
async function createExclusive(path: string, data: string): Promise<boolean> {
  let fd: FileHandle;
  try {
    fd = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await fd.writeFile(data);
    await fd.sync();
  } finally {
    await fd.close();
  }
  return true;
}

/** A lock file's contents; an unreadable one (being written, or its writer died mid-write) expires BREAK_STALE_MS after it was made. */
async function readLock(path: string): Promise<LockFile | null> {
  const b = await readOrNull(path);
  if (!b) return null;
  try {
    const l = JSON.parse(b.toString('utf8')) as LockFile;
    if (typeof l.token === 'string' && typeof l.expires === 'number') return l;
  } catch {
    /* torn: judged by its age below */
  }
  const made = await stat(path).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  return { token: '', expires: made + BREAK_STALE_MS };
}
