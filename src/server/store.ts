/**
 * Where the server keeps what outlives a request: immutable state snapshots (one per completed
 * turn), sessions (mutable pointers to snapshots), the per-session turn lock and idempotency
 * records. Two implementations share this contract: a directory on local disk (the embedded
 * default, `--state-dir`) and Redis (`--state-store redis://HOST:PORT`, for replicas that serve
 * the same sessions). Every method is async so that either can sit behind it.
 */

/** One committed turn: the state after it (recurrent state, or a KV cache up to its tokens), in the state file format of docs/DESIGN.md. */
export interface Snapshot {
  /** The response id that committed it (`<id>-<i>` for choice i when n > 1). */
  id: string;
  /** The snapshot it continued from, or null for a fresh conversation. */
  parent: string | null;
  /** Tokens the conversation holds after this turn (prompt and generated, all turns). */
  tokens: number;
  /** Hash of the model weights, adapter and tokenizer that produced it: a snapshot only resumes on the same. */
  model: string;
  /** SHA-256 (hex) of `state`; checked on every load. */
  checksum: string;
  /** The state file's bytes. */
  state: Uint8Array;
  /** Milliseconds since the epoch. */
  created: number;
}

/** A session: a name that points at the latest snapshot of a conversation. */
export interface SessionRecord {
  id: string;
  /** The snapshot the next turn continues from; null before the first turn. */
  snapshot: string | null;
  created: number;
  updated: number;
}

/** What a request with an `Idempotency-Key` returned the first time (replayed verbatim). */
export interface IdempotencyRecord {
  status: number;
  /** The body as sent (a JSON response; a streamed request records its final JSON form). */
  body: string;
  created: number;
}

/** A snapshot whose bytes fail their checksum or cannot be parsed: refused, never resumed from. */
export class CorruptSnapshotError extends Error {
  constructor(
    readonly snapshotId: string,
    detail: string,
  ) {
    super(`snapshot ${snapshotId} is corrupt (${detail}); it was not loaded`);
    this.name = 'CorruptSnapshotError';
  }
}

export interface StateStore {
  /** Human-readable location for logs, e.g. `dir:/var/lib/frugal` or `redis://127.0.0.1:6379`. */
  readonly where: string;
  /** Write once: a second put of an existing id is a no-op when the bytes match and an error otherwise. Durable before it resolves. */
  putSnapshot(s: Snapshot): Promise<void>;
  /** The snapshot, checksum verified (throws CorruptSnapshotError), or null when absent. */
  getSnapshot(id: string): Promise<Snapshot | null>;
  hasSnapshot(id: string): Promise<boolean>;
  putSession(s: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | null>;
  /** True when it existed. Snapshots it pointed at stay (others may continue from them). */
  deleteSession(id: string): Promise<boolean>;
  listSessions(): Promise<SessionRecord[]>;
  /**
   * Take the session's turn lock for at most `ttlMs` (it expires if the holder dies): a token to
   * release it with, or null when another turn holds it (the caller answers 409).
   */
  lockTurn(sessionId: string, ttlMs: number): Promise<string | null>;
  /** Release the lock if `token` still holds it (a lock that expired and was retaken stays). */
  unlockTurn(sessionId: string, token: string): Promise<void>;
  getIdempotent(key: string): Promise<IdempotencyRecord | null>;
  /** Keep the record for `ttlMs`. */
  putIdempotent(key: string, r: IdempotencyRecord, ttlMs: number): Promise<void>;
  close(): Promise<void>;
}
