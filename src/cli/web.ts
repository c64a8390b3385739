import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputError } from '../io/errors.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, parseAdapterConfig } from '../models/lora.js';
import { debugOption, intArg } from './options.js';
import type { AnyCommand } from './options.js';
import { PAGE_HTML } from './page-html.js';

/**
 * `frugal web`: serve the page (dist/web/, built by `npm run build`), the kernels module and
 * the models' files on one origin, cross-origin isolated (COOP/COEP) unless --no-isolation.
 * The server only reads: a fixed set of file names inside the model folders it was given.
 */

/** The package root, from src/cli/ or dist/cli/. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * Models the page offers when --model is not given: the bundled ones when present, else a small
 * trained Mamba and transformer committed with the tests (so the page always opens on something).
 */
export const DEFAULT_WEB_MODELS = ['models/mamba-sotu', 'models/transformer-sotu', 'models/mamba-sotu-q8'];
export const FALLBACK_WEB_MODELS = ['test/fixtures/mamba-d256-l4', 'test/fixtures/llama-d64-l2'];
const BASE_FILES = new Set(['config.json', 'model.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json']);
const SHARD = /^model-\d{5}-of-\d{5}\.safetensors$/;
const ADAPTER_FILES = new Set([ADAPTER_CONFIG, ADAPTER_WEIGHTS]);

/** A model the page offers: a checkpoint folder, and the LoRA adapter folder run on it, if any. */
export interface WebModel {
  base: string;
  adapter?: string;
}

/** Where the file `name` of model `m` lives, or null when the server does not serve that name. */
function modelFilePath(m: WebModel, name: string): string | null {
  if (BASE_FILES.has(name) || SHARD.test(name)) return join(m.base, name);
  if (m.adapter !== undefined && ADAPTER_FILES.has(name)) return join(m.adapter, name);
  return null;
}
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

export interface WebFlags {
  model?: string[];
  port: number;
  host: string;
  isolation: boolean;
}

export function registerWeb(program: AnyCommand): void {
  const cmd = program
    .command('web')
    .description('serve the in-browser page (the same engine and kernels, in a Web Worker) on http://HOST:PORT/')
    .option('--model <dir>', 'model folder the page offers (repeat for several; default: the bundled models)', collect)
    .option('--port <n>', 'TCP port (0: any free one)', intArg(0, 65535), 8080)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--no-isolation', 'serve without the COOP/COEP headers (no threads in the page)');
  debugOption(cmd).action((o) => webCommand(o));
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

/**
 * The models to offer, checked up front (a bad --model is a clear error, not a broken page). A
 * LoRA adapter folder (from `frugal finetune --method lora`) is offered on its base, the folder
 * its adapter_config.json names.
 */
export function webModels(given: readonly string[] | undefined, root = ROOT): WebModel[] {
  const dirs = given?.length ? given.map((d) => resolve(d)) : DEFAULT_WEB_MODELS.map((d) => join(root, d)).filter((d) => existsSync(d));
  if (!given?.length && dirs.length === 0) dirs.push(...FALLBACK_WEB_MODELS.map((d) => join(root, d)));
  return dirs.map((d) => {
    const m: WebModel = existsSync(join(d, ADAPTER_CONFIG)) ? { base: adapterBase(d), adapter: d } : { base: d };
    const weights = ['model.safetensors', 'model.safetensors.index.json'].some((f) => existsSync(join(m.base, f)));
    if (!existsSync(join(m.base, 'config.json')) || !weights)
      throw inputError(
        `--model ${m.base}: the page needs a folder with config.json and model.safetensors (or model.safetensors.index.json and its shards), or a LoRA adapter's folder`,
      );
    return m;
  });
}

/** The base of adapter folder `dir`: its adapter_config.json's base_model_name_or_path, a folder (as `frugal finetune` was given it). */
function adapterBase(dir: string): string {
  const file = join(dir, ADAPTER_CONFIG);
  const c = parseAdapterConfig(readFileSync(file, 'utf8'), file);
  const base = resolve(c.base_model_name_or_path ?? '');
  if (!c.base_model_name_or_path || !existsSync(join(base, 'config.json')))
    throw inputError(
      `--model ${dir}: a LoRA adapter whose base (base_model_name_or_path ${JSON.stringify(c.base_model_name_or_path ?? '')}) is not a model folder here; run frugal web where that path leads to the base`,
    );
  return base;
}

function send(res: ServerResponse, isolation: boolean, status: number, type: string, body: string | Uint8Array, modified?: string): void {
  const headers: Record<string, string> = {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-cache',
  };
  if (modified !== undefined) headers['last-modified'] = modified;
  if (isolation) {
    headers['cross-origin-opener-policy'] = 'same-origin';
    headers['cross-origin-embedder-policy'] = 'require-corp';
    headers['cross-origin-resource-policy'] = 'same-origin';
  }
  res.writeHead(status, headers);
  res.end(body);
}

function sendFile(res: ServerResponse, isolation: boolean, path: string, head: boolean): void {
  if (!existsSync(path) || !statSync(path).isFile()) {
    send(res, isolation, 404, 'text/plain', 'not found\n');
    return;
  }
  const ext = path.slice(path.lastIndexOf('.'));
  const type = TYPES[ext] ?? 'application/octet-stream';
  const body = readFileSync(path);
  // a validator, so that a page that read this file from its URL knows when its cached copy is stale
  const modified = statSync(path).mtime.toUTCString();
  if (head) {
    res.writeHead(200, { 'content-length': String(body.byteLength), 'content-type': type, 'last-modified': modified });
    res.end();
  } else send(res, isolation, 200, type, body, modified);
}

/** A model file's size and SHA-256, which the page checks and caches it by. */
export interface FileEntry {
  bytes: number;
  sha256: string;
}

const hashes = new Map<string, FileEntry & { mtime: number }>();

/** The SHA-256 of a file, computed once per version (size and modification time). */
function fileEntry(path: string): FileEntry {
  const st = statSync(path);
  const known = hashes.get(path);
  if (known && known.mtime === st.mtimeMs && known.bytes === st.size) return known;
  const e = { bytes: st.size, sha256: createHash('sha256').update(readFileSync(path)).digest('hex'), mtime: st.mtimeMs };
  hashes.set(path, e);
  return { bytes: e.bytes, sha256: e.sha256 };
}

/** What /api/models says: each model's name, URL and files (size and SHA-256). */
export function listing(models: readonly WebModel[]) {
  return models.map((m, i) => {
    const files: Record<string, FileEntry> = {};
    for (const dir of m.adapter === undefined ? [m.base] : [m.base, m.adapter]) {
      for (const f of readdirSync(dir).sort()) {
        const path = modelFilePath(m, f);
        if (path === join(dir, f) && statSync(path).isFile()) files[f] = fileEntry(path);
      }
    }
    const name = m.adapter === undefined ? basename(m.base) : `${basename(m.base)} + ${basename(m.adapter)}`;
    return { name, url: `/models/${i}/`, files };
  });
}

/** Route one request: the page, its scripts, the kernels, the model list and the models' files. */
export function handler(models: readonly WebModel[], isolation: boolean, root = ROOT) {
  const bundle = join(root, 'dist', 'web');
  return (req: IncomingMessage, res: ServerResponse): void => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const head = req.method === 'HEAD';
    const m = /^\/models\/(\d+)\/([^/]+)$/.exec(p);
    const file = m && Number(m[1]) < models.length ? modelFilePath(models[Number(m[1])], m[2]) : null;
    if (p === '/' || p === '/index.html') send(res, isolation, 200, 'text/html; charset=utf-8', PAGE_HTML);
    else if (p === '/kernels.wasm' || p === '/kernels-relaxed.wasm') sendFile(res, isolation, join(root, 'build', p.slice(1)), head);
    else if (p === '/api/models') send(res, isolation, 200, 'application/json', JSON.stringify(listing(models)));
    else if (file !== null) sendFile(res, isolation, file, head);
    else if (/^\/[\w.-]+\.js$/.test(p)) sendFile(res, isolation, join(bundle, p.slice(1)), head);
    else send(res, isolation, 404, 'text/plain', 'not found\n');
  };
}

/** Serve until stopped; the address goes to stderr as `web: http://HOST:PORT/`. */
export async function webCommand(o: WebFlags): Promise<void> {
  const models = webModels(o.model);
  if (!existsSync(join(ROOT, 'dist', 'web', 'page.js'))) throw inputError(`${join(ROOT, 'dist', 'web')} is missing: run \`npm run build\``);
  const server = createServer(handler(models, o.isolation));
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(e.code === 'EADDRINUSE' ? inputError(`--port ${o.port}: the port is in use on ${o.host}; pick another (or --port 0)`) : e),
    );
    server.listen(o.port, o.host, () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  process.stderr.write(
    `web: http://${o.host}:${port}/ (${o.isolation ? 'cross-origin isolated' : 'not isolated'}; models: ${models.map((m) => m.adapter ?? m.base).join(', ')})\n`,
  );
  await new Promise<void>((done) => {
    const stop = () => server.close(() => done());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
