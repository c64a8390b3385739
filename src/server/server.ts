import { existsSync, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { inputError } from '../io/errors.js';
import type { KernelKind } from '../kernels/backend.js';
import { buildApp } from './app.js';
import type { Lifecycle } from './app.js';
import { Metrics } from './metrics.js';
import { Scheduler } from './scheduler.js';
import { openServedModel } from './served.js';
import type { ServedModel } from './served.js';
import { DirStore } from './store-dir.js';
import type { StateStore } from './store.js';

/**
 * `frugal serve` put together: the state store, the HTTP app listening at once (GET /health
 * answers 503 until the model is loaded), the model and the decode loop, and a drain on SIGTERM
 * or SIGINT (no new turns; open streams run to their end; then exit 0).
 */
export interface ServeOptions {
  model: string;
  adapter?: string;
  port: number;
  host: string;
  apiKey?: string;
  maxStreams: number;
  stateDir?: string;
  stateStore?: string;
  logPrompts: boolean;
  threads: number;
  kernels: KernelKind;
  tdp?: number;
  log: (line: string) => void;
}

/** Where state lives when neither --state-dir nor --state-store is given: ./frugal-state (it must outlive the process). */
export const DEFAULT_STATE_DIR = 'frugal-state';
const LOCK_TTL_MS = 10 * 60_000;
const KEEP_ALIVE_MS = 15_000;
const DRAIN_LIMIT_MS = 10 * 60_000;

async function openStore(o: ServeOptions): Promise<StateStore> {
  if (o.stateStore === undefined) return DirStore.open(resolve(o.stateDir ?? DEFAULT_STATE_DIR));
  if (o.stateDir !== undefined) throw inputError('give --state-dir or --state-store, not both');
  if (!/^redis:\/\/[^/:\s]+:\d+\/?$/.test(o.stateStore))
    throw inputError(`--state-store '${o.stateStore}' is not redis://HOST:PORT (for example redis://127.0.0.1:6379)`);
  const path = './store-redis.js'; // a variable: builds without the Redis store still compile
  let mod: { createRedisStore?: (url: string) => Promise<StateStore> };
  try {
    mod = (await import(path)) as typeof mod;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    throw inputError('--state-store needs the Redis state store, which this build of frugal does not include; use --state-dir DIR');
  }
  if (typeof mod.createRedisStore !== 'function') throw inputError('this build of frugal has no Redis state store; use --state-dir DIR');
  return mod.createRedisStore(o.stateStore);
}

/**
 * Read every file of the checkpoint (and adapter) once, asynchronously, into the page cache: the
 * load that follows is synchronous and would hold the event loop for the whole disk read of a large
 * checkpoint, so /health would hang instead of answering 503. What remains blocking is the parse
 * from memory.
 */
/** What the load reads: weights (single, sharded or PyTorch), adapters, configs and tokenizers. */
const WEIGHT_FILE = /^(model.*\.safetensors|adapter_model\.safetensors|pytorch_model.*\.bin|.*\.json)$/;

async function warmFiles(dirs: readonly string[]): Promise<void> {
  const buf = new Uint8Array(1 << 22);
  for (const dir of dirs) {
    if (!statSync(dir).isDirectory()) continue;
    for (const name of readdirSync(dir)) {
      if (!WEIGHT_FILE.test(name)) continue; // a training checkpoint's optimizer state is twice the weights and never loaded
      const f = join(dir, name);
      if (!statSync(f).isFile()) continue;
      const h = await open(f, 'r');
      try {
        while ((await h.read(buf, 0, buf.length, null)).bytesRead > 0);
      } finally {
        await h.close();
      }
    }
  }
}

/** Start serving; resolves once listening (the model loads right after). Returns how to stop. */
export async function serve(o: ServeOptions): Promise<{ url: string; stop: () => Promise<void> }> {
  if (!existsSync(o.model))
    throw inputError(`--model ${o.model} does not exist; give a checkpoint directory (the bundled one is models/mamba-sotu)`);
  if (o.adapter !== undefined && !existsSync(o.adapter))
    throw inputError(`--adapter ${o.adapter} does not exist; give an adapter folder from 'frugal finetune'`);
  const store = await openStore(o);
  const life: Lifecycle = { ready: false, draining: false, ctx: null, inflight: 0 };
  const app = buildApp(life, { apiKey: o.apiKey, logPrompts: o.logPrompts, keepAliveMs: KEEP_ALIVE_MS, log: o.log });
  let url: string;
  try {
    url = await app.listen({ port: o.port, host: o.host });
  } catch (e) {
    await store.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      throw inputError(`cannot listen on ${o.host}:${o.port} (${code}); choose another --port or --host`);
    throw e;
  }
  o.log(`frugal serve: listening on ${url}, state in ${store.where}; loading ${o.model}`);
  let served: ServedModel;
  try {
    await warmFiles(o.adapter === undefined ? [o.model] : [o.model, o.adapter]); // /health answers 503 meanwhile
    served = openServedModel(o.model, o.adapter, { threads: o.threads, kernels: o.kernels });
  } catch (e) {
    await app.close();
    await store.close();
    throw e;
  }
  for (const w of served.model.warnings) o.log(`warning: ${w}`);
  const metrics = new Metrics(o.tdp);
  const scheduler = new Scheduler(served.model.network, o.maxStreams, o.maxStreams);
  life.ctx = { served, store, scheduler, metrics, lockTtlMs: LOCK_TTL_MS };
  life.ready = true;
  o.log(`frugal serve: ready: model '${served.id}', ${o.maxStreams} streams${o.apiKey ? ', API key required' : ''}`);

  const stop = async () => {
    if (life.draining) return;
    life.draining = true;
    o.log(`frugal serve: draining ${scheduler.active + scheduler.queued} open stream(s)`);
    const closed = app.close(); // stops accepting; waits for requests in progress
    const t0 = Date.now();
    do {
      app.server.closeIdleConnections(); // a keep-alive connection whose stream just ended holds the close up otherwise
      await new Promise((r) => setTimeout(r, 20));
    } while ((!scheduler.idle || life.inflight > 0) && Date.now() - t0 < DRAIN_LIMIT_MS);
    app.server.closeAllConnections();
    await closed;
    metrics.close();
    scheduler.dispose();
    served.dispose();
    await store.close();
    o.log('frugal serve: stopped');
  };
  return { url, stop };
}
