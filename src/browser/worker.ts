/**
 * The module Worker: loads the kernels and a model, generates in batches of about BATCH_MS
 * (posting the text of each batch, then yielding so that an `abort` is heard between batches).
 */
import { decodeState, encodeState, initKernels, loadModelFiles, stateIdentity, TokenStream } from './index.js';
import type { Model, ModelFiles, StateIdentity } from './index.js';
import type { ModelState } from '../models/types.js';
import { BATCH_MS, WATTS_PER_CORE } from './protocol.js';
import type { FileEntry, FromWorker, ModelSource, ToWorker } from './protocol.js';
import { ABSENT, cacheAbsent, cachedFile, cachedUrl, cacheFile, cacheUrl, sha256Hex } from './cache.js';
import { concatBytes } from '../io/atomic.js';
import { parseWeightIndex } from '../io/weights.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../models/lora.js';

// the tsconfig's lib is DOM: the worker's global is typed by the one method used
const post = (m: FromWorker) => (self as unknown as { postMessage(m: FromWorker): void }).postMessage(m);
let model: Model | null = null;
let kernelsReady: Promise<void> | null = null;
let aborted = false;
/**
 * Tokens between two reads of the clock while a batch fills: about 8 reads a batch at the pace of
 * the last batch (kept across generations, reset with the model): a page's clock costs about a
 * microsecond a read, a small model's token a hundred.
 */
let every = 1;
let threadCount = 1;
let identity: StateIdentity | null = null;
/** The state after the last generation: what `snapshot` saves and a `continue` generation resumes. */
let conversation: ModelState | null = null;

/**
 * A model folder's files from the OPFS cache when a checked copy is there, else from the server
 * (reporting bytes as they arrive), each checked against the SHA-256 the server lists.
 */
async function fetchModel(url: string, manifest: Record<string, FileEntry>): Promise<{ files: ModelFiles; cached: boolean }> {
  const base = url.endsWith('/') ? url : `${url}/`;
  const names = Object.keys(manifest);
  const total = names.reduce((n, k) => n + manifest[k].bytes, 0);
  let loaded = 0;
  let cached = true;
  const files: Record<string, Uint8Array> = {};
  for (const name of names) {
    const entry = manifest[name];
    let bytes = await cachedFile(entry);
    if (bytes === null) {
      cached = false;
      bytes = ((await download(base + name, (n) => post({ type: 'progress', loaded: loaded + n, total }))) as Downloaded).bytes;
      const sum = await sha256Hex(bytes);
      if (sum !== entry.sha256)
        throw new Error(
          `${base}${name} arrived damaged (SHA-256 ${sum.slice(0, 12)}…, the server lists ${entry.sha256.slice(0, 12)}…); reload to try again`,
        );
      await cacheFile(entry.sha256, bytes);
    }
    loaded += entry.bytes;
    post({ type: 'progress', loaded, total });
    files[name] = bytes;
  }
  return { files, cached };
}

/** A fetch that failed before any response: offline, a refused connection, or a server that does not allow this page to read it. */
function unreachable(url: string, e: unknown): Error {
  return new Error(
    `cannot fetch ${url} (${e instanceof Error ? e.message : String(e)}): the server is unreachable, or it does not let this page ` +
      'read its files (CORS: it must send Access-Control-Allow-Origin)',
  );
}

interface Downloaded {
  bytes: Uint8Array;
  /** The server's ETag or Last-Modified ('' when it sent neither). */
  validator: string;
}

const validatorOf = (res: Response) => res.headers.get('etag') ?? res.headers.get('last-modified') ?? '';

/**
 * The bytes at `url`, reporting how many have arrived; null for a 404 when `optional`. A body
 * shorter than the Content-Length the server announced, or a connection lost midway, is an error.
 */
async function download(url: string, progress: (n: number) => void, optional = false): Promise<Downloaded | null> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw unreachable(url, e);
  }
  if (optional && res.status === 404) return null;
  if (!res.ok || res.body === null)
    throw new Error(`cannot fetch ${url} (HTTP ${res.status}${res.status === 404 ? ': no such file' : ''})`);
  // with a content encoding the header counts compressed bytes: only a plain body can be checked
  const announced = res.headers.get('content-encoding') ? Number.NaN : Number(res.headers.get('content-length') ?? Number.NaN);
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      n += value.byteLength;
      progress(n);
    }
  } catch (e) {
    throw new Error(`${url} broke off after ${n} bytes (${e instanceof Error ? e.message : String(e)}); reload to try again`);
  }
  if (Number.isFinite(announced) && n !== announced)
    throw new Error(`${url} is truncated: ${n} of the ${announced} bytes the server announced arrived; reload to try again`);
  return { bytes: concatBytes(parts), validator: validatorOf(res) };
}

/**
 * The bytes at `url`: the cached copy while the server says the file is unchanged (a HEAD with the
 * same validator and size) or cannot be reached (offline), else downloaded and cached.
 */
async function fetchUrl(
  url: string,
  progress: (n: number) => void,
  optional: boolean,
): Promise<{ bytes: Uint8Array | null; cached: boolean }> {
  const known = await cachedUrl(url);
  if (known !== null && known.bytes === ABSENT) {
    // an optional file that was absent: still absent unless the server now has it; offline, it is
    const head = await fetch(url, { method: 'HEAD' }).catch(() => null);
    if (head === null || head.status === 404) return { bytes: null, cached: true };
  } else if (known !== null) {
    const head = await fetch(url, { method: 'HEAD' }).catch(() => null);
    const unchanged =
      head === null ||
      (head.ok &&
        known.validator !== '' &&
        validatorOf(head) === known.validator &&
        Number(head.headers.get('content-length')) === known.bytes);
    const bytes = unchanged ? await cachedFile(known) : null;
    if (bytes !== null) return { bytes, cached: true };
  }
  const got = await download(url, progress, optional);
  if (got !== null) await cacheUrl(url, got.validator, got.bytes);
  else await cacheAbsent(url);
  return { bytes: got?.bytes ?? null, cached: false };
}

/** The files of a folder of an HF-style checkpoint at `folder` (and of an adapter's at `adapter`), by their standard names. */
async function fetchFolder(folder: string, adapter: string | undefined): Promise<{ files: ModelFiles; cached: boolean }> {
  const files: Record<string, Uint8Array> = {};
  let loaded = 0;
  let cached = true;
  const get = async (base: string, name: string, optional = false) => {
    const url = new URL(name, base.endsWith('/') ? base : `${base}/`).href;
    const got = await fetchUrl(url, (n) => post({ type: 'progress', loaded: loaded + n, total: 0 }), optional);
    if (got.bytes !== null) {
      files[name] = got.bytes;
      loaded += got.bytes.byteLength;
      cached &&= got.cached;
    }
    return got.bytes;
  };
  await get(folder, 'config.json');
  const index = await get(folder, 'model.safetensors.index.json', true);
  if (index === null) await get(folder, 'model.safetensors');
  else {
    const shards = new Set(parseWeightIndex(new TextDecoder().decode(index), `${folder}/model.safetensors.index.json`).values());
    for (const shard of shards) await get(folder, shard);
  }
  if ((await get(folder, 'tokenizer.json', true)) !== null) await get(folder, 'tokenizer_config.json', true);
  if (adapter !== undefined) {
    await get(adapter, ADAPTER_CONFIG);
    await get(adapter, ADAPTER_WEIGHTS);
  }
  return { files, cached };
}

/** A model's files from where the page says they are; `cached` when none had to be downloaded. */
async function modelFiles(source: ModelSource): Promise<{ files: ModelFiles; cached: boolean }> {
  if ('url' in source) return fetchModel(source.url, source.manifest);
  if ('files' in source) return { files: source.files, cached: false };
  return fetchFolder(source.folder, source.adapter);
}

async function load(m: Extract<ToWorker, { type: 'load' }>): Promise<void> {
  kernelsReady ??= initKernels(m.kernels);
  await kernelsReady;
  const { files, cached } = await modelFiles(m.model);
  // kernel threads share memory: only in a cross-origin isolated page
  const threads = crossOriginIsolated ? Math.max(1, Math.floor(m.threads)) : 1;
  const next = await loadModelFiles(files, m.name, threads);
  model?.dispose();
  model = next;
  every = 1;
  threadCount = threads;
  identity = await stateIdentity(next, files);
  conversation = null;
  const backend = (threads > 1 ? `wasm-simd-threads:${threads}` : 'wasm-simd') + (m.build ? `+${m.build}` : '');
  post({ type: 'ready', name: m.name, architecture: next.architecture, parameters: next.parameters, backend, cached });
}

/** Let queued messages (an abort) run: a macrotask, as timers are clamped and microtasks would not do. */
/**
 * Let queued messages (a stop) run between token batches. A message to itself, not setTimeout(0):
 * a timer set from a timer's callback is clamped to 4 ms after a few levels, a message is not.
 */
const yieldChannel = new MessageChannel();
const yieldToEvents = () =>
  new Promise<void>((resolve) => {
    yieldChannel.port1.onmessage = () => resolve();
    yieldChannel.port2.postMessage(null);
  });

async function generate(m: Extract<ToWorker, { type: 'generate' }>): Promise<void> {
  if (model === null) throw new Error('no model is loaded yet');
  aborted = false;
  const t0 = performance.now();
  const s = new TokenStream(model, m.prompt, { ...m, state: m.continue && conversation ? conversation : undefined });
  const t1 = performance.now();
  let count = 0;
  let ended = false;
  // the end of the last batch: the yield after it (waiting for messages) makes no token, so it is not timed
  let tEnd = t1;
  while (!ended && !aborted) {
    let text = '';
    const start = performance.now();
    let n = 0;
    while (n % every !== 0 || performance.now() - start < BATCH_MS) {
      const t = s.next();
      if (t === null) {
        ended = true;
        break;
      }
      count++;
      n++;
      text += t.text;
    }
    tEnd = performance.now();
    // tokens a batch at this pace, over 8
    every = Math.max(1, Math.min(64, Math.floor((n * BATCH_MS) / (8 * Math.max(tEnd - start, 0.01)))));
    const tps = count / Math.max((tEnd - t1) / 1000, 1e-9);
    if (text || count) post({ type: 'tokens', text, count, tokensPerSecond: tps });
    await yieldToEvents();
  }
  const seconds = (tEnd - t0) / 1000;
  const decode = (tEnd - t1) / 1000;
  const decodePool = s.decodePool();
  s.settle();
  conversation = s.state;
  post({
    type: 'done',
    tokens: count,
    tokensPerSecond: count / Math.max(decode, 1e-9),
    jPerToken: (seconds * WATTS_PER_CORE * threadCount) / Math.max(1, count + s.promptTokens),
    energyLabel: `estimated: ${WATTS_PER_CORE} W per busy core × CPU time`,
    stateBytes: s.stateBytes,
    aborted,
    promptTokens: s.promptTokens,
    prefillTokensPerSecond: s.promptTokens / Math.max(s.prefillSeconds, 1e-9),
    prefillPool: s.prefillPool,
    decodePool,
  });
}

function snapshot(): void {
  if (model === null || identity === null || conversation === null) throw new Error('snapshot: there is no conversation yet');
  post({ type: 'snapshot', bytes: encodeState(model, conversation, identity), tokens: conversation.position });
}

function restore(bytes: Uint8Array): void {
  if (model === null || identity === null) throw new Error('restore: no model is loaded yet');
  conversation = decodeState(bytes, 'the saved conversation', model, identity);
  post({ type: 'restored', tokens: conversation.position });
}

/** One message at a time, in order (a load, then a restore, then a generation); `abort` at once. */
let queue: Promise<void> = Promise.resolve();

async function handle(m: Exclude<ToWorker, { type: 'abort' }>): Promise<void> {
  try {
    if (m.type === 'load') await load(m);
    else if (m.type === 'generate') await generate(m);
    else if (m.type === 'snapshot') snapshot();
    else restore(m.bytes);
  } catch (e) {
    post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === 'abort') aborted = true;
  else queue = queue.then(() => handle(m));
};
