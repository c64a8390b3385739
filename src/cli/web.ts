import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputError } from '../io/errors.js';
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
export const DEFAULT_WEB_MODELS = ['models/mamba', 'models/transformer'];
export const FALLBACK_WEB_MODELS = ['test/fixtures/mamba-d256-l4', 'test/fixtures/llama-d64-l2'];
const MODEL_FILES = new Set(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
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

/** The model folders to offer, checked up front (a bad --model is a clear error, not a broken page). */
export function webModels(given: readonly string[] | undefined, root = ROOT): string[] {
  const dirs = given?.length ? given.map((d) => resolve(d)) : DEFAULT_WEB_MODELS.map((d) => join(root, d)).filter((d) => existsSync(d));
  if (!given?.length && dirs.length === 0) dirs.push(...FALLBACK_WEB_MODELS.map((d) => join(root, d)));
  for (const d of dirs) {
    if (!existsSync(join(d, 'config.json')) || !existsSync(join(d, 'model.safetensors')))
      throw inputError(
        `--model ${d}: the page needs a folder with config.json and model.safetensors (a single-file Hugging Face checkpoint)`,
      );
  }
  return dirs;
}

function send(res: ServerResponse, isolation: boolean, status: number, type: string, body: string | Uint8Array): void {
  const headers: Record<string, string> = {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-cache',
  };
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
  if (head) {
    res.writeHead(200, { 'content-length': String(body.byteLength), 'content-type': type });
    res.end();
  } else send(res, isolation, 200, type, body);
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
export function listing(models: readonly string[]) {
  return models.map((d, i) => {
    const files: Record<string, FileEntry> = {};
    for (const f of MODEL_FILES) if (existsSync(join(d, f))) files[f] = fileEntry(join(d, f));
    return { name: basename(d), url: `/models/${i}/`, files };
  });
}

/** Route one request: the page, its scripts, the kernels, the model list and the models' files. */
export function handler(models: readonly string[], isolation: boolean, root = ROOT) {
  const bundle = join(root, 'dist', 'web');
  return (req: IncomingMessage, res: ServerResponse): void => {
    const p = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const head = req.method === 'HEAD';
    const m = /^\/models\/(\d+)\/([^/]+)$/.exec(p);
    if (p === '/' || p === '/index.html') send(res, isolation, 200, 'text/html; charset=utf-8', PAGE_HTML);
    else if (p === '/kernels.wasm') sendFile(res, isolation, join(root, 'build', 'kernels.wasm'), head);
    else if (p === '/api/models') send(res, isolation, 200, 'application/json', JSON.stringify(listing(models)));
    else if (m && Number(m[1]) < models.length && MODEL_FILES.has(m[2])) sendFile(res, isolation, join(models[Number(m[1])], m[2]), head);
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
    `web: http://${o.host}:${port}/ (${o.isolation ? 'cross-origin isolated' : 'not isolated'}; models: ${models.join(', ')})\n`,
  );
  await new Promise<void>((done) => {
    const stop = () => server.close(() => done());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
