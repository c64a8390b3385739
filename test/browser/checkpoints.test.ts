import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { sotuDocuments } from '../../src/io/corpus.js';

/**
 * Checkpoints beyond a single f32 file, in the page (Debian's Chromium, `frugal web` on loopback):
 * shards, q8 and q4, a LoRA adapter, Mamba-2, Mamba-3 and a hybrid, each made here by the CLI and each generating
 * greedily what `frugal generate` does; and a model folder opened from a URL, with one-line errors
 * for a missing file, a server without CORS and a download that breaks off.
 */
const CHROMIUM = '/usr/bin/chromium';
const MODEL = 'test/fixtures/mamba-d256-l4';
const PROMPT = 'The ';
const TOKENS = 32;

const frugal = (args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
};
/** Node's greedy text for a checkpoint (the product on stdout, less its closing newline). */
const nodeGreedy = (model: string[]) =>
  frugal(['generate', ...model, '--prompt', PROMPT, '--max-tokens', String(TOKENS), '--temperature', '0', '--seed', '1']).replace(
    /\n$/,
    '',
  );

let dir: string;
let browser: Browser;
let web: ChildProcess;
let url: string;
/** Serves MODEL's files from another origin: /ok/ with CORS, /nocors/ without, /cut/ breaking off model.safetensors midway. */
let other: Server;
let otherUrl: string;

function serveOther(): Promise<void> {
  other = createServer((req, res) => {
    const [, mode, name] = /^\/(ok|nocors|cut)\/([\w.-]+)$/.exec(req.url ?? '') ?? [];
    const file = join(MODEL, name ?? '');
    if (!mode || !name || !existsSync(file)) {
      res.writeHead(404, { 'access-control-allow-origin': '*' }).end();
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, { 'content-length': String(body.length), ...(mode === 'nocors' ? {} : { 'access-control-allow-origin': '*' }) });
    if (mode === 'cut' && name === 'model.safetensors') {
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.destroy(), 50); // the connection drops before the announced length
    } else res.end(body);
  });
  return new Promise((ok) =>
    other.listen(0, '127.0.0.1', () => {
      const a = other.address();
      otherUrl = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/`;
      ok();
    }),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-web-ck-'));
  const corpus = join(dir, 'corpus.txt');
  // a fixed text (the start of the corpus package's second address), so edits to the docs do not
  // change what the small models learn
  writeFileSync(corpus, sotuDocuments()[1].bytes.subarray(0, 6000));
  frugal(['convert', '--model', MODEL, '--out', join(dir, 'sharded'), '--max-shard-size', '1MB']);
  frugal(['quantize', '--model', MODEL, '--to', 'q8', '--out', join(dir, 'q8')]);
  frugal(['quantize', '--model', MODEL, '--to', 'q4', '--out', join(dir, 'q4')]);
  const run = ['--seq-len', '16', '--batch', '2', '--eval-windows', '2', '--threads', '1'];
  frugal([
    'finetune',
    '--model',
    MODEL,
    '--data',
    corpus,
    '--out',
    join(dir, 'lora'),
    '--rank',
    '2',
    '--steps',
    '4',
    '--lr',
    '0.01',
    ...run,
  ]);
  frugal([
    'train',
    '--arch',
    'mamba2',
    '--d-model',
    '32',
    '--layers',
    '2',
    '--steps',
    '150',
    '--lr',
    '0.01',
    '--data',
    corpus,
    '--out',
    join(dir, 'm2'),
    ...run,
  ]);
  const small = ['--d-model', '32', '--steps', '150', '--lr', '0.01', '--data', corpus, ...run];
  frugal(['train', '--arch', 'mamba3', '--layers', '2', '--out', join(dir, 'm3'), ...small]);
  // the hybrid learns slower on 16-byte windows: longer windows and a larger batch
  const longer = ['--seq-len', '32', '--batch', '4', '--steps', '200', '--lr', '0.01', '--eval-windows', '2', '--threads', '1'];
  frugal([
    'train',
    '--arch',
    'hybrid',
    '--layer-types',
    'mamba2,attention',
    '--d-model',
    '32',
    '--data',
    corpus,
    '--out',
    join(dir, 'hy'),
    ...longer,
  ]);
  const models = ['sharded', 'q8', 'q4', 'lora', 'm2', 'm3', 'hy'].flatMap((m) => ['--model', join(dir, m)]);
  web = spawn(process.execPath, ['bin/frugal.js', 'web', '--port', '0', '--no-isolation', ...models], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  url = await new Promise((ok, fail) => {
    let err = '';
    web.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /web: (http:\/\/\S+\/)/.exec(err);
      if (m) ok(m[1]);
    });
    web.on('exit', (code) => fail(new Error(`frugal web exited with ${code}: ${err}`)));
  });
  await serveOther();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  web?.kill('SIGTERM');
  other?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function status(page: Page, done: (s: string) => boolean): Promise<string> {
  await page.waitForFunction(
    (f) => new Function(`return (${f})`)()(document.querySelector('[data-testid=status]')?.textContent ?? ''),
    done.toString(),
    { timeout: 60_000 },
  );
  return (await page.textContent('[data-testid=status]')) ?? '';
}
const settled = (s: string) => s === 'ready' || s === 'done' || s.startsWith('error');

describe('checkpoints in the page', () => {
  it.each([
    { index: 0, name: 'shards', info: 'sharded', arch: 'mamba', model: () => ['--model', join(dir, 'sharded')] },
    { index: 1, name: 'q8', info: 'q8', arch: 'mamba', model: () => ['--model', join(dir, 'q8')] },
    { index: 2, name: 'q4', info: 'q4', arch: 'mamba', model: () => ['--model', join(dir, 'q4')] },
    {
      index: 3,
      name: 'a LoRA adapter',
      info: 'mamba-d256-l4 \\+ lora',
      arch: 'mamba',
      model: () => ['--model', MODEL, '--adapter', join(dir, 'lora')],
    },
    { index: 4, name: 'Mamba-2', info: 'm2', arch: 'mamba2', model: () => ['--model', join(dir, 'm2')] },
    { index: 5, name: 'Mamba-3', info: 'm3', arch: 'mamba3', model: () => ['--model', join(dir, 'm3')] },
    { index: 6, name: 'a hybrid (Mamba-2 and attention)', info: 'hy', arch: 'bamba', model: () => ['--model', join(dir, 'hy')] },
  ])('$name: greedy output equals frugal generate', async ({ index, info, arch, model }) => {
    const expected = nodeGreedy(model());
    expect(new Set(expected).size).toBeGreaterThanOrEqual(3);
    const page = await browser.newPage();
    await page.goto(`${url}?prompt=${encodeURIComponent(PROMPT)}&max_tokens=${TOKENS}&temperature=0&seed=1`);
    expect(await status(page, settled)).toBe('ready');
    if (index > 0) {
      await page.selectOption('[data-testid=model]', { index });
      expect(await status(page, settled)).toBe('ready'); // the change sets 'loading' at once
    }
    expect(await page.textContent('[data-testid=model-info]')).toMatch(new RegExp(`^${info}: ${arch},`));
    await page.click('[data-testid=generate]');
    expect(await status(page, (s) => s === 'done' || s.startsWith('error'))).toBe('done');
    expect(await page.textContent('[data-testid=output]')).toBe(expected);
    await page.close();
  });

  it('the LoRA adapter changes what the base generates (so the test above sees it run)', () => {
    expect(nodeGreedy(['--model', MODEL, '--adapter', join(dir, 'lora')])).not.toBe(nodeGreedy(['--model', MODEL]));
  });
});

it('runs the opt-in relaxed-SIMD kernels with ?kernels=relaxed, and names them in the backend', async () => {
  const page = await browser.newPage();
  await page.goto(`${url}?kernels=relaxed&prompt=${encodeURIComponent(PROMPT)}&max_tokens=${TOKENS}&temperature=0&autorun=1`);
  expect(await status(page, (s) => s === 'done' || s.startsWith('error'))).toBe('done');
  expect(await page.textContent('[data-testid=backend]')).toBe('wasm-simd+relaxed-simd'); // Chromium runs relaxed SIMD
  expect(await page.textContent('[data-testid=output]')).toHaveLength(TOKENS); // one byte a token here
  await page.close();
});

describe('a model folder from a URL', () => {
  it('loads shards and an adapter by URL, greedy output equal to frugal generate', async () => {
    const page = await browser.newPage();
    const q = `model_url=${encodeURIComponent('/models/0/')}&adapter_url=${encodeURIComponent('/models/3/')}`;
    await page.goto(`${url}?${q}&prompt=${encodeURIComponent(PROMPT)}&max_tokens=${TOKENS}&temperature=0&seed=1&autorun=1`);
    expect(await status(page, (s) => s === 'done' || s.startsWith('error'))).toBe('done');
    const expected = nodeGreedy(['--model', MODEL, '--adapter', join(dir, 'lora')]);
    expect(await page.textContent('[data-testid=output]')).toBe(expected);
    expect(await page.textContent('[data-testid=model-info]')).not.toMatch(/cache/);
    await page.reload(); // the next visit: the server says the files are unchanged, the copies kept in OPFS are used
    expect(await status(page, (s) => s === 'done' || s.startsWith('error'))).toBe('done');
    expect(await page.textContent('[data-testid=model-info]')).toMatch(/from this browser’s cache/);
    expect(await page.textContent('[data-testid=output]')).toBe(expected);
    await page.close();
  });

  it('reuses a model folder loaded from a URL offline, optional files it lacked included', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}?prompt=${encodeURIComponent(PROMPT)}&max_tokens=${TOKENS}&temperature=0&seed=1`);
    expect(await status(page, settled)).toBe('ready');
    const load = async (u: string) => {
      await page.fill('[data-testid=model-url]', u);
      await page.click('[data-testid=load-url]');
      return status(page, (s) => s === 'ready' || s.startsWith('error'));
    };
    // the q8 folder is one safetensors file: its index (optional) answers 404 and is remembered as absent
    expect(await load(`${url}models/1/`)).toBe('ready');
    expect(await page.textContent('[data-testid=model-info]')).not.toMatch(/cache/);
    await page.context().setOffline(true);
    try {
      expect(await load(`${url}models/1/`)).toBe('ready');
      expect(await page.textContent('[data-testid=model-info]')).toMatch(/from this browser’s cache/);
      await page.click('[data-testid=generate]');
      expect(await status(page, (s) => s === 'done' || s.startsWith('error'))).toBe('done');
      expect(await page.textContent('[data-testid=output]')).toBe(nodeGreedy(['--model', join(dir, 'q8')]));
      // a folder never loaded has nothing cached: offline, it fails with the reason
      expect(await load(`${url}models/2/`)).toMatch(/^error: cannot fetch .*models\/2\/config\.json/);
    } finally {
      await page.context().setOffline(false);
      await page.close();
    }
  });

  it('says what went wrong for a missing file, a server without CORS and a broken download, and keeps working', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}?prompt=${encodeURIComponent(PROMPT)}&max_tokens=8&temperature=0`);
    expect(await status(page, settled)).toBe('ready');
    const tryUrl = async (u: string) => {
      await page.fill('[data-testid=model-url]', u);
      await page.click('[data-testid=load-url]');
      return status(page, (s) => s === 'ready' || s.startsWith('error')); // the click sets 'loading' at once
    };
    expect(await tryUrl(`${url}nothing/`)).toBe(`error: cannot fetch ${url}nothing/config.json (HTTP 404: no such file)`);
    expect(await tryUrl(`${otherUrl}nocors/`)).toMatch(
      new RegExp(`^error: cannot fetch ${otherUrl}nocors/config\\.json \\(.*\\): .*CORS: it must send Access-Control-Allow-Origin\\)$`),
    );
    expect(await tryUrl(`${otherUrl}cut/`)).toMatch(
      new RegExp(`^error: ${otherUrl}cut/model\\.safetensors (broke off after \\d+ bytes|is truncated: \\d+ of the \\d+ bytes)`),
    );
    await page.click('[data-testid=generate]');
    expect(await status(page, (s) => s === 'done' || s.startsWith('error'))).toBe('done'); // the model loaded before still runs
    expect(await tryUrl(`${otherUrl}ok/`)).toBe('ready'); // another origin that allows it
    await page.click('[data-testid=generate]');
    expect(await status(page, (s) => s === 'done' || s.startsWith('error'))).toBe('done');
    expect(await page.textContent('[data-testid=output]')).toBe(nodeGreedy(['--model', MODEL]).slice(0, 8));
    await page.close();
  });
});
