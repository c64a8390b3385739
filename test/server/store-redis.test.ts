import { afterAll, describe, expect, it } from 'vitest';
import { createClient, RESP_TYPES } from 'redis';
import { createRedisStore, parseRedisUrl } from '../../src/server/store-redis.js';
import type { StateStore } from '../../src/server/store.js';
import { freePort } from '../../src/bench/serve/server.js';
import { type RedisServer, startRedis } from '../helpers/redis.js';
import { sampleSnapshot, storeContract } from './store-contract.js';

// started at collection time so that the contract's `make` can use it; a missing redis-server
// fails here with the line that says to install it
const server: RedisServer = await startRedis();
afterAll(() => server.stop());

const prefixes = new WeakMap<StateStore, string>();
let made = 0;
async function makeStore(): Promise<StateStore> {
  const prefix = `t${process.pid}-${made++}:`;
  const store = await createRedisStore(server.url, { prefix });
  prefixes.set(store, prefix);
  return store;
}

/** A plain client beside the store, to reach its keys the way an operator (or a failing disk) would. */
async function raw(): Promise<ReturnType<typeof createClient>> {
  const c = createClient({ url: server.url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

storeContract('redis', makeStore, {
  async corrupt(store, id, how) {
    const c = await raw();
    const key = `${prefixes.get(store)}snap:${id}`;
    const bytes = await c.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).hGet(key, 'state');
    if (bytes === null) throw new Error(`no snapshot ${key} to corrupt`);
    if (how === 'flip') bytes[bytes.length >> 1] ^= 0x01;
    await c.hSet(key, 'state', how === 'flip' ? bytes : bytes.subarray(0, bytes.length - 100));
    await c.close();
  },
});

describe('Redis store', () => {
  const stores: StateStore[] = [];
  const replica = async (prefix: string): Promise<StateStore> => {
    const s = await createRedisStore(server.url, { prefix });
    stores.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of stores) await s.close();
  });

  it('two replicas share snapshots, sessions and the turn lock', async () => {
    const a = await replica('replicas:');
    const b = await replica('replicas:');
    await a.putSnapshot(sampleSnapshot('resp-r1'));
    await a.putSession({ id: 'sess-r', snapshot: 'resp-r1', created: 1, updated: 1 });
    expect((await b.getSnapshot('resp-r1'))?.checksum).toBe(sampleSnapshot('resp-r1').checksum);
    expect((await b.getSession('sess-r'))?.snapshot).toBe('resp-r1');
    const held = await a.lockTurn('sess-r', 60_000);
    expect(held).not.toBeNull();
    expect(await b.lockTurn('sess-r', 60_000)).toBeNull();
    await b.unlockTurn('sess-r', 'a guess');
    expect(await b.lockTurn('sess-r', 60_000)).toBeNull();
    await a.unlockTurn('sess-r', held!);
    const taken = await b.lockTurn('sess-r', 60_000);
    expect(taken).not.toBeNull();
    expect(await a.lockTurn('sess-r', 60_000)).toBeNull();
    // immutability holds across replicas too
    const other = sampleSnapshot('resp-r1', 10);
    await expect(b.putSnapshot(other)).rejects.toThrow(/immutable/);
  });

  it("a dead replica's lock expires for the other; its stale release leaves the new holder's lock", async () => {
    const a = await replica('expiry:');
    const b = await replica('expiry:');
    const stale = await a.lockTurn('sess-e', 100);
    expect(stale).not.toBeNull();
    await a.close();
    await new Promise((r) => setTimeout(r, 400));
    const mine = await b.lockTurn('sess-e', 60_000);
    expect(mine).not.toBeNull();
    const a2 = await replica('expiry:');
    await a2.unlockTurn('sess-e', stale!);
    expect(await a2.lockTurn('sess-e', 60_000)).toBeNull();
  });

  it('prefixes and database numbers keep deployments apart', async () => {
    const p1 = await replica('apart1:');
    const p2 = await replica('apart2:');
    const db3 = await createRedisStore(`${server.url}/3`, { prefix: 'apart1:' });
    stores.push(db3);
    await p1.putSession({ id: 's', snapshot: null, created: 1, updated: 1 });
    expect(await p2.getSession('s')).toBeNull();
    expect(await db3.getSession('s')).toBeNull();
    expect(await p2.lockTurn('s', 60_000)).not.toBeNull();
    expect(await p1.lockTurn('s', 60_000)).not.toBeNull();
  });

  it('lists thousands of sessions (more than one MGET slice)', async () => {
    const s = await replica('many:');
    const n = 2500;
    await Promise.all(
      Array.from({ length: n }, (_, i) => s.putSession({ id: `sess-${i}`, snapshot: `resp-${i}`, created: i, updated: i })),
    );
    const listed = await s.listSessions();
    expect(listed.length).toBe(n);
    expect(new Set(listed.map((x) => x.id)).size).toBe(n);
    expect(listed.find((x) => x.id === 'sess-1234')?.snapshot).toBe('resp-1234');
  });

  it('metadata that is missing or not JSON is corrupt', async () => {
    const s = await replica('meta:');
    await s.putSnapshot(sampleSnapshot('resp-m1'));
    await s.putSnapshot(sampleSnapshot('resp-m2'));
    const c = await raw();
    await c.hDel('meta:snap:resp-m1', 'meta');
    await c.hSet('meta:snap:resp-m2', 'meta', '{not json');
    await c.close();
    await expect(s.getSnapshot('resp-m1')).rejects.toThrow(/resp-m1 is corrupt \(its metadata is missing\)/);
    await expect(s.getSnapshot('resp-m2')).rejects.toThrow(/resp-m2 is corrupt \(its metadata is not JSON\)/);
  });

  it('a store outlives a Redis restart: commands fail at once while it is down, then work again', async () => {
    const own = await startRedis();
    const s = await createRedisStore(own.url, { prefix: 'restart:' });
    stores.push(s);
    await s.putSession({ id: 'sess-a', snapshot: null, created: 1, updated: 1 });
    await own.stop();
    // refused at once rather than queued until some later reconnection
    await expect(s.getSession('sess-a')).rejects.toThrow();
    const again = await startRedis(own.port);
    try {
      let back = false;
      for (let i = 0; i < 200 && !back; i++) {
        back = await s.putSession({ id: 'sess-b', snapshot: 'resp-1', created: 2, updated: 2 }).then(
          () => true,
          () => false,
        );
        if (!back) await new Promise((r) => setTimeout(r, 50));
      }
      expect(back).toBe(true);
      expect((await s.getSession('sess-b'))?.snapshot).toBe('resp-1');
    } finally {
      await again.stop();
    }
  });

  it('an unreachable Redis fails at startup with one line that says how to fix it', async () => {
    const port = await freePort();
    const err = await createRedisStore(`redis://127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toMatch(new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(.+\\): start redis-server there`));
    expect(msg).not.toContain('\n');
  });

  it('a malformed URL is refused before any connection', () => {
    expect(() => parseRedisUrl('http://127.0.0.1:6379')).toThrow(/scheme must be redis:\/\//);
    expect(() => parseRedisUrl('127.0.0.1:6379')).toThrow(/redis:\/\/HOST:PORT/);
    expect(() => parseRedisUrl('redis://127.0.0.1:6379/x')).toThrow(/database number/);
    expect(parseRedisUrl('redis://127.0.0.1:6379/2').db).toBe(2);
  });
});
