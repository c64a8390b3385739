/**
 * What every StateStore must do, whatever sits behind it: `storeContract(name, make)` registers the
 * cases; each store's test file calls it with a `make` that returns a fresh, EMPTY store (a new
 * folder, a new key prefix). `hooks.corrupt`, when the backend lets a test reach its bytes, damages
 * a stored snapshot so that loading it must fail.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptSnapshotError, type Snapshot, type StateStore } from '../../src/server/store.js';

export interface StoreContractHooks {
  /** Damages the stored bytes of snapshot `id` in `store`'s backend ('flip': one byte changed; 'truncate': cut short). */
  corrupt?: (store: StateStore, id: string, how: 'flip' | 'truncate') => Promise<void>;
}

/** A snapshot whose state holds every byte value (zeros, 0xff, invalid UTF-8), its checksum computed here. */
export function sampleSnapshot(id: string, size = 4096, parent: string | null = null): Snapshot {
  const state = new Uint8Array(size);
  for (let i = 0; i < size; i++) state[i] = (i * 131 + id.length * 7) & 0xff;
  return { id, parent, tokens: 17, model: 'sha256:model', checksum: sha256(state), state, created: 1_700_000_000_000 };
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storeContract(name: string, make: () => Promise<StateStore>, hooks: StoreContractHooks = {}): void {
  describe(`StateStore contract: ${name}`, () => {
    const open: StateStore[] = [];
    const fresh = async (): Promise<StateStore> => {
      const s = await make();
      open.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });

    it('a snapshot round-trips byte for byte with its fields; an absent one is null', async () => {
      const store = await fresh();
      const a = sampleSnapshot('resp-a', 160 * 1024);
      const b = sampleSnapshot('resp-b', 1000, 'resp-a');
      await store.putSnapshot(a);
      await store.putSnapshot(b);
      const got = await store.getSnapshot('resp-a');
      expect(got).not.toBeNull();
      expect(Buffer.from(got!.state).equals(Buffer.from(a.state))).toBe(true);
      expect({ ...got!, state: null }).toEqual({ ...a, state: null });
      expect((await store.getSnapshot('resp-b'))?.parent).toBe('resp-a');
      expect(await store.hasSnapshot('resp-a')).toBe(true);
      expect(await store.getSnapshot('resp-none')).toBeNull();
      expect(await store.hasSnapshot('resp-none')).toBe(false);
    });

    it('snapshots are immutable: the same bytes again are a no-op, different bytes are refused', async () => {
      const store = await fresh();
      const a = sampleSnapshot('resp-imm');
      await store.putSnapshot(a);
      await store.putSnapshot({ ...a, state: a.state.slice() });
      const other = a.state.slice();
      other[10] ^= 0xff;
      await expect(store.putSnapshot({ ...a, state: other, checksum: sha256(other) })).rejects.toThrow(/resp-imm/);
      const got = await store.getSnapshot('resp-imm');
      expect(got!.state[10]).toBe(a.state[10]);
      expect(got!.checksum).toBe(a.checksum);
    });

    it('a snapshot whose bytes do not match its checksum is never handed out', async () => {
      const store = await fresh();
      const a = sampleSnapshot('resp-badsum');
      const bad = { ...a, checksum: sha256(new Uint8Array([1, 2, 3])) };
      // a store may refuse it on the way in, or keep it and refuse it on the way out; it may not return it
      const put = await store.putSnapshot(bad).then(
        () => true,
        () => false,
      );
      if (put) await expect(store.getSnapshot('resp-badsum')).rejects.toBeInstanceOf(CorruptSnapshotError);
      else expect(await store.getSnapshot('resp-badsum')).toBeNull();
    });

    if (hooks.corrupt !== undefined) {
      const corrupt = hooks.corrupt;
      for (const how of ['flip', 'truncate'] as const) {
        it(`a stored snapshot damaged in place (${how}) is rejected while the others still load`, async () => {
          const store = await fresh();
          await store.putSnapshot(sampleSnapshot('resp-good'));
          await store.putSnapshot(sampleSnapshot('resp-hurt'));
          await corrupt(store, 'resp-hurt', how);
          const err = await store.getSnapshot('resp-hurt').catch((e: unknown) => e);
          expect(err).toBeInstanceOf(CorruptSnapshotError);
          expect((err as CorruptSnapshotError).snapshotId).toBe('resp-hurt');
          expect((await store.getSnapshot('resp-good'))?.checksum).toBe(sampleSnapshot('resp-good').checksum);
        });
      }
    }

    it('sessions are created, updated, listed and deleted; their snapshots stay', async () => {
      const store = await fresh();
      expect(await store.listSessions()).toEqual([]);
      await store.putSnapshot(sampleSnapshot('resp-s1'));
      const s1 = { id: 'sess-1', snapshot: null, created: 1, updated: 1 };
      const s2 = { id: 'sess-2', snapshot: 'resp-s1', created: 2, updated: 2 };
      await store.putSession(s1);
      await store.putSession(s2);
      expect(await store.getSession('sess-1')).toEqual(s1);
      await store.putSession({ ...s1, snapshot: 'resp-s1', updated: 5 });
      expect(await store.getSession('sess-1')).toEqual({ ...s1, snapshot: 'resp-s1', updated: 5 });
      const listed = (await store.listSessions()).sort((x, y) => x.id.localeCompare(y.id));
      expect(listed).toEqual([{ ...s1, snapshot: 'resp-s1', updated: 5 }, s2]);
      expect(await store.deleteSession('sess-1')).toBe(true);
      expect(await store.deleteSession('sess-1')).toBe(false);
      expect(await store.getSession('sess-1')).toBeNull();
      expect((await store.listSessions()).map((s) => s.id)).toEqual(['sess-2']);
      expect(await store.hasSnapshot('resp-s1')).toBe(true);
      expect(await store.getSession('sess-none')).toBeNull();
    });

    it('one turn per session: a second lock is refused until the first is released with its token', async () => {
      const store = await fresh();
      const t1 = await store.lockTurn('sess-l', 60_000);
      expect(typeof t1).toBe('string');
      expect(await store.lockTurn('sess-l', 60_000)).toBeNull();
      // another session is not held by it
      const other = await store.lockTurn('sess-other', 60_000);
      expect(other).not.toBeNull();
      await store.unlockTurn('sess-l', 'not-the-token');
      expect(await store.lockTurn('sess-l', 60_000)).toBeNull();
      await store.unlockTurn('sess-l', t1!);
      const t2 = await store.lockTurn('sess-l', 60_000);
      expect(t2).not.toBeNull();
      expect(t2).not.toBe(t1);
    });

    it('a lock expires when its holder never releases it, and the stale token cannot release the new holder', async () => {
      const store = await fresh();
      const stale = await store.lockTurn('sess-x', 100);
      expect(stale).not.toBeNull();
      await sleep(400);
      const fresh2 = await store.lockTurn('sess-x', 60_000);
      expect(fresh2).not.toBeNull();
      await store.unlockTurn('sess-x', stale!);
      expect(await store.lockTurn('sess-x', 60_000)).toBeNull();
      await store.unlockTurn('sess-x', fresh2!);
      expect(await store.lockTurn('sess-x', 60_000)).not.toBeNull();
    });

    it('an idempotency record is replayed verbatim until its time to live runs out', async () => {
      const store = await fresh();
      const r = { status: 200, body: '{"id":"cmpl-1","choices":[{"text":"é\\n"}]}', created: 123 };
      expect(await store.getIdempotent('key-1')).toBeNull();
      await store.putIdempotent('key-1', r, 60_000);
      await store.putIdempotent('key-short', { ...r, status: 201 }, 100);
      expect(await store.getIdempotent('key-1')).toEqual(r);
      await sleep(400);
      expect(await store.getIdempotent('key-short')).toBeNull();
      expect(await store.getIdempotent('key-1')).toEqual(r);
    });

    it('racing turns: of ten concurrent lock attempts on one session exactly one wins', async () => {
      const store = await fresh();
      const tokens = await Promise.all(Array.from({ length: 10 }, () => store.lockTurn('sess-race', 60_000)));
      expect(tokens.filter((t) => t !== null).length).toBe(1);
    });

    it('racing writers of one snapshot id: one set of bytes wins, the other writer is refused', async () => {
      const store = await fresh();
      const a = sampleSnapshot('resp-race', 64 * 1024);
      const bBytes = a.state.map((x) => x ^ 0x5a);
      const b = { ...a, state: bBytes, checksum: sha256(bBytes) };
      const results = await Promise.allSettled([store.putSnapshot(a), store.putSnapshot(b)]);
      expect(results.filter((r) => r.status === 'fulfilled').length).toBe(1);
      const won = results[0].status === 'fulfilled' ? a : b;
      expect((await store.getSnapshot('resp-race'))?.checksum).toBe(won.checksum);
    });

    it('ids that come from URLs never reach another record', async () => {
      const store = await fresh();
      await store.putSession({ id: 'sess-x', snapshot: null, created: 1, updated: 1 });
      await store.putSnapshot(sampleSnapshot('resp-x'));
      for (const id of [
        '../sess-x',
        '../sessions/sess-x',
        '../session/sess-x',
        'sess-x/..',
        './sess-x',
        'sess-x/',
        '%2e%2e%2fsess-x',
        'SESS-X',
      ]) {
        const s = await store.getSession(id).catch(() => null);
        expect(s, id).toBeNull();
      }
      for (const id of ['../resp-x', 'resp-x/.', '../snapshots/resp-x']) {
        const s = await store.getSnapshot(id).catch(() => null);
        expect(s, id).toBeNull();
      }
    });

    it('names its location for logs', async () => {
      const store = await fresh();
      expect(store.where.length).toBeGreaterThan(0);
    });
  });
}
