import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DirStore } from '../../src/server/store-dir.js';
import { CorruptSnapshotError } from '../../src/server/store.js';
import type { Snapshot } from '../../src/server/store.js';

/** The directory store: atomic immutable snapshots verified on load, sessions, turn locks, idempotency. */
const fresh = () => DirStore.open(mkdtempSync(join(tmpdir(), 'frugal-store-')));

function snap(id: string, bytes: number[], parent: string | null = null): Snapshot {
  const state = Uint8Array.from(bytes);
  return { id, parent, tokens: bytes.length, model: 'm', checksum: createHash('sha256').update(state).digest('hex'), state, created: 1 };
}

describe('DirStore', () => {
  it('keeps a snapshot byte for byte, once, and refuses other bytes under the same id', async () => {
    const s = await fresh();
    const a = snap('resp-1', [1, 2, 3, 250]);
    await s.putSnapshot(a);
    await s.putSnapshot(a); // same bytes: a no-op
    await expect(s.putSnapshot(snap('resp-1', [9, 9]))).rejects.toThrow(/immutable/);
    const got = await s.getSnapshot('resp-1');
    expect(got && Array.from(got.state)).toEqual([1, 2, 3, 250]);
    expect(got?.tokens).toBe(4);
    expect(await s.hasSnapshot('resp-1')).toBe(true);
    expect(await s.hasSnapshot('resp-2')).toBe(false);
    expect(await s.getSnapshot('../etc/passwd')).toBeNull();
    expect(readdirSync(join(s.dir, 'snapshots'))).toEqual(['resp-1.snap']); // no temporary file left
  });

  it('rejects a truncated or edited snapshot file with CorruptSnapshotError', async () => {
    const s = await fresh();
    await s.putSnapshot(snap('a', [1, 2, 3, 4, 5, 6]));
    await s.putSnapshot(snap('b', [1, 2, 3, 4, 5, 6]));
    const pa = join(s.dir, 'snapshots', 'a.snap');
    truncateSync(pa, readFileSync(pa).length - 2);
    await expect(s.getSnapshot('a')).rejects.toBeInstanceOf(CorruptSnapshotError);
    const pb = join(s.dir, 'snapshots', 'b.snap');
    const b = readFileSync(pb);
    b[b.length - 1] ^= 1;
    writeFileSync(pb, b);
    await expect(s.getSnapshot('b')).rejects.toThrow(/SHA-256/);
  });

  it('stores, lists and deletes sessions', async () => {
    const s = await fresh();
    await s.putSession({ id: 's1', snapshot: null, created: 1, updated: 1 });
    await s.putSession({ id: 's2', snapshot: 'x', created: 2, updated: 2 });
    await s.putSession({ id: 's1', snapshot: 'y', created: 1, updated: 3 });
    expect((await s.listSessions()).map((r) => [r.id, r.snapshot])).toEqual([
      ['s1', 'y'],
      ['s2', 'x'],
    ]);
    expect(await s.deleteSession('s1')).toBe(true);
    expect(await s.deleteSession('s1')).toBe(false);
    expect(await s.getSession('s1')).toBeNull();
  });

  it('gives a turn lock to one holder at a time, across two stores on one directory, until it expires', async () => {
    const a = await fresh();
    const b = await DirStore.open(a.dir); // another process sharing the directory
    const t = await a.lockTurn('s', 60_000);
    expect(t).toMatch(/^[0-9a-f]{32}$/);
    expect(await b.lockTurn('s', 60_000)).toBeNull();
    await b.unlockTurn('s', 'not-the-token'); // a stranger's release does nothing
    expect(await b.lockTurn('s', 60_000)).toBeNull();
    await a.unlockTurn('s', t as string);
    const u = await b.lockTurn('s', 1);
    expect(u).not.toBeNull();
    await new Promise((r) => setTimeout(r, 10)); // u expires
    const v = await a.lockTurn('s', 60_000);
    expect(v).not.toBeNull();
    await b.unlockTurn('s', u as string); // the expired holder's release leaves the new lock
    expect(await b.lockTurn('s', 60_000)).toBeNull();
    const both = await Promise.all([a.lockTurn('t', 60_000), b.lockTurn('t', 60_000)]);
    expect(both.filter((x) => x !== null)).toHaveLength(1);
  });

  it('replays idempotency records until they expire', async () => {
    const s = await fresh();
    await s.putIdempotent('key 1', { status: 200, body: '{"ok":1}', created: 5 }, 60_000);
    await s.putIdempotent('key 2', { status: 200, body: '{}', created: 5 }, 1);
    await new Promise((r) => setTimeout(r, 10));
    expect(await s.getIdempotent('key 1')).toEqual({ status: 200, body: '{"ok":1}', created: 5 });
    expect(await s.getIdempotent('key 2')).toBeNull();
    expect(await s.getIdempotent('key 3')).toBeNull();
  });
});

describe('DirStore turn lock after a crash', () => {
  it('breaks a lock at once when its holder process on this machine is gone', async () => {
    const s = await fresh();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number; // a process that has exited
    writeFileSync(
      join(s.dir, 'locks', 'sess.lock'),
      JSON.stringify({ token: 'x', expires: Date.now() + 600_000, pid: dead, host: hostname() }),
    );
    expect(await s.lockTurn('sess', 60_000)).not.toBeNull();
    writeFileSync(
      join(s.dir, 'locks', 'other.lock'),
      JSON.stringify({ token: 'y', expires: Date.now() + 600_000, pid: process.pid, host: hostname() }),
    );
    expect(await s.lockTurn('other', 60_000)).toBeNull(); // a live holder keeps it
  });
});
