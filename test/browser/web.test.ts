import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

/**
 * The page served by `frugal web` on loopback, in Debian's Chromium (`.ci/run` installs it):
 * greedy output equal to `frugal generate --temperature 0`, with and without cross-origin
 * isolation; stop; a broken file; the layout on a phone-sized screen; a bundle without Node built-ins.
 */
const CHROMIUM = '/usr/bin/chromium';
const MODEL = 'test/fixtures/mamba-d256-l4'; // trained by frugal: its greedy text has many distinct bytes
const TRANSFORMER = 'test/fixtures/llama-d64-l2'; // the transformer baseline, trained by frugal too
const PROMPT = 'The ';

interface Server {
  proc: ChildProcess;
  url: string;
}

function startWeb(extra: string[]): Promise<Server> {
  const proc = spawn(process.execPath, ['bin/frugal.js', 'web', '--port', '0', '--model', MODEL, '--model', TRANSFORMER, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((ok, fail) => {
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /web: (http:\/\/\S+\/)/.exec(err);
      if (m) ok({ proc, url: m[1] });
    });
    proc.on('exit', (code) => fail(new Error(`frugal web exited with ${code}: ${err}`)));
  });
}

async function waitStatus(page: Page, done: (s: string) => boolean, timeout = 60_000): Promise<string> {
  const src = done.toString();
  await page.waitForFunction(
    (f) => new Function(`return (${f})`)()(document.querySelector('[data-testid=status]')?.textContent ?? ''),
    src,
    { timeout },
  );
  return (await page.textContent('[data-testid=status]')) ?? '';
}

const finished = (s: string) => s === 'done' || s.startsWith('error');

let browser: Browser;
const servers: Server[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  for (const s of servers) s.proc.kill('SIGTERM');
});

/** Node's greedy text for the same model and prompt (the product on stdout, less its closing newline). */
function nodeGreedy(tokens: number, model = MODEL): string {
  const r = spawnSync(
    process.execPath,
    [
      'bin/frugal.js',
      'generate',
      '--model',
      model,
      '--prompt',
      PROMPT,
      '--max-tokens',
      String(tokens),
      '--temperature',
      '0',
      '--seed',
      '1',
    ],
    { encoding: 'utf8' },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.replace(/\n$/, '');
}

describe.each([
  { isolated: true, flags: [] as string[], backend: 'wasm-simd-threads:2' },
  { isolated: false, flags: ['--no-isolation'], backend: 'wasm-simd' },
])('frugal web (cross-origin isolated: $isolated)', ({ isolated, flags, backend }) => {
  let server: Server;
  beforeAll(async () => {
    server = await startWeb(flags);
    servers.push(server);
  });

  it('generates greedily exactly what frugal generate does, and reports its backend', async () => {
    const expected = nodeGreedy(64);
    expect(new Set(expected).size).toBeGreaterThanOrEqual(10); // a byte model: one character per token here
    const page = await browser.newPage();
    await page.goto(`${server.url}?prompt=${encodeURIComponent(PROMPT)}&max_tokens=64&temperature=0&seed=1&autorun=1&threads=2`);
    expect(await waitStatus(page, finished)).toBe('done');
    expect(await page.textContent('[data-testid=output]')).toBe(expected);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(isolated);
    expect(await page.textContent('[data-testid=backend]')).toBe(backend); // threads only where memory can be shared
    expect(Number(await page.textContent('[data-testid=speed]'))).toBeGreaterThan(0);
    expect(await page.textContent('[data-testid=energy]')).toMatch(/^\d\S* J\/token \(estimated/);
    await page.close();
  });

  it('generates greedily exactly what frugal generate does with the transformer', async () => {
    const expected = nodeGreedy(64, TRANSFORMER);
    expect(new Set(expected).size).toBeGreaterThanOrEqual(10);
    const page = await browser.newPage();
    await page.goto(`${server.url}?prompt=${encodeURIComponent(PROMPT)}&max_tokens=64&temperature=0&seed=1&threads=2`);
    await waitStatus(page, (s) => s === 'ready');
    await page.selectOption('[data-testid=model]', { index: 1 });
    await page.waitForFunction(() => /llama-d64-l2: llama/.test(document.querySelector('[data-testid=model-info]')?.textContent ?? ''));
    await waitStatus(page, (s) => s === 'ready');
    await page.click('[data-testid=generate]');
    expect(await waitStatus(page, finished)).toBe('done');
    expect(await page.textContent('[data-testid=output]')).toBe(expected);
    await page.close();
  });
});

describe('the page', () => {
  let page: Page;
  beforeAll(async () => {
    page = await browser.newPage({ viewport: { width: 375, height: 667 } });
    await page.goto(servers[0].url);
    await waitStatus(page, (s) => s === 'ready' || s.startsWith('error'));
  });

  it('stops a long generation when asked', async () => {
    await page.fill('[data-testid=max-tokens]', '1000000');
    await page.fill('[data-testid=temperature]', '0');
    await page.click('[data-testid=generate]');
    await page.waitForFunction(() => (document.querySelector('[data-testid=output]')?.textContent ?? '').length > 0);
    await page.click('[data-testid=stop]');
    expect(await waitStatus(page, finished, 10_000)).toBe('done');
    const made = (await page.textContent('[data-testid=output]'))?.length ?? 0;
    expect(made).toBeGreaterThan(0);
    expect(made).toBeLessThan(1_000_000);
    await page.fill('[data-testid=max-tokens]', '8');
  });

  it('shows a readable error for a truncated safetensors file, and keeps working', async () => {
    const weights = readFileSync(join(MODEL, 'model.safetensors'));
    await page.setInputFiles('[data-testid=files]', [
      { name: 'config.json', mimeType: 'application/json', buffer: readFileSync(join(MODEL, 'config.json')) },
      { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: weights.subarray(0, weights.length >> 1) },
    ]);
    const status = await waitStatus(page, (s) => s.startsWith('error'));
    expect(status).toMatch(/^error: .*model\.safetensors/);
    await page.click('[data-testid=generate]');
    expect(await waitStatus(page, finished)).toBe('done'); // the model loaded before still runs
  });

  it('fits a 375×667 screen, and Tab reaches every enabled control', async () => {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const reached = new Set<string>();
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? ''));
    }
    for (const id of ['model', 'files', 'prompt', 'max-tokens', 'temperature', 'top-k', 'top-p', 'seed', 'continue', 'generate'])
      expect(reached, id).toContain(id);
  });

  it('has no serious or critical accessibility violation (axe-core)', async () => {
    await page.addScriptTag({ path: 'node_modules/axe-core/axe.min.js' });
    const found = await page.evaluate(async () => {
      const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string | null }[] }> } }).axe.run();
      return r.violations.map((v) => ({ id: v.id, impact: v.impact }));
    });
    expect(found.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
  });
});

// the transformer's state is a KV cache, as a hybrid's attention layers hold: it grows with the conversation
it.each([
  { model: MODEL, index: 0 },
  { model: TRANSFORMER, index: 1 },
])('keeps a conversation across a reload, in a state file that Node continues identically ($model)', async ({ model: dirOf, index }) => {
  const name = dirOf.split('/').pop() as string;
  const context = await browser.newContext(); // one origin's storage, kept across the reload
  const page = await context.newPage();
  await page.goto(`${servers[1].url}?prompt=${encodeURIComponent(PROMPT)}&max_tokens=16&temperature=0`);
  await waitStatus(page, (s) => s === 'ready');
  if (index > 0) {
    await page.selectOption('[data-testid=model]', { index });
    await page.waitForFunction((n) => document.querySelector('[data-testid=model-info]')?.textContent?.startsWith(`${n}:`), name);
    await waitStatus(page, (s) => s === 'ready');
  }
  await page.check('[data-testid=continue]');
  await page.click('[data-testid=generate]');
  await page.waitForFunction(() => /tokens saved$/.test(document.querySelector('[data-testid=saved]')?.textContent ?? ''));
  expect(await page.textContent('[data-testid=saved]')).toBe('20 tokens saved'); // 4 prompt bytes + 16 generated
  await page.reload();
  if (index > 0) await page.selectOption('[data-testid=model]', { index });
  await page.waitForFunction(() => /restored$/.test(document.querySelector('[data-testid=saved]')?.textContent ?? ''));
  expect(await page.textContent('[data-testid=saved]')).toBe('20 tokens restored');
  expect(await page.textContent('[data-testid=model-info]')).toMatch(/from this browser’s cache/); // OPFS, checked by SHA-256
  await page.fill('[data-testid=prompt]', ' and');
  await page.fill('[data-testid=max-tokens]', '24');
  await page.click('[data-testid=generate]');
  expect(await waitStatus(page, finished)).toBe('done');
  const continued = await page.textContent('[data-testid=output]');
  await page.waitForFunction(() => document.querySelector('[data-testid=saved]')?.textContent === '48 tokens saved'); // 20 + 4 + 24
  const bytes = await page.evaluate(async (n) => {
    const dir = await navigator.storage.getDirectory();
    const f = await (await dir.getFileHandle(`frugal-state-${n}.safetensors`)).getFile();
    return Array.from(new Uint8Array(await f.arrayBuffer()));
  }, name);
  await context.close();

  // Node: the state the page saved after the first generation would now be the continued one, so
  // replay: the first generation, its state through Node's saveState format, then the continuation
  const { loadModel } = await import('../../src/api/model.js');
  const { loadState } = await import('../../src/models/state.js');
  const { TokenStream } = await import('../../src/browser/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'frugal-web-'));
  const file = join(dir, 'state.safetensors');
  writeFileSync(file, Uint8Array.from(bytes));
  const model = loadModel(dirOf);
  try {
    const saved = loadState(file, model.network, 'byte'); // the page's last save: after the continuation
    expect(saved.position).toBe(20 + 4 + 24);
    const first = new TokenStream(model, PROMPT, { maxTokens: 16, temperature: 0 });
    while (first.next()) {}
    first.settle();
    const again = new TokenStream(model, ' and', { maxTokens: 24, temperature: 0, state: first.state });
    let text = '';
    for (let t = again.next(); t; t = again.next()) text += t.text;
    expect(continued).toBe(text);
    again.settle();
    const a = [...again.state.tensors.values()].map((t) => Array.from(t.floats()));
    const b = [...saved.tensors.values()].map((t) => Array.from(t.floats()));
    expect(a).toEqual(b); // the state file holds Node's state bit for bit
  } finally {
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('runs a second model side by side on the same prompt', async () => {
  const page = await browser.newPage();
  await page.goto(`${servers[1].url}?prompt=${encodeURIComponent(PROMPT)}&max_tokens=64&temperature=0`);
  await waitStatus(page, (s) => s === 'ready');
  await page.check('[data-testid=side-by-side]');
  await page.waitForFunction(() => document.querySelector('[data-testid=status-b]')?.textContent?.startsWith('ready'));
  await page.click('[data-testid=generate]');
  expect(await waitStatus(page, finished)).toBe('done');
  await page.waitForFunction(() => document.querySelector('[data-testid=status-b]')?.textContent === 'done');
  expect(await page.textContent('[data-testid=output]')).toBe(nodeGreedy(64));
  expect(await page.textContent('[data-testid=output-b]')).toBe(nodeGreedy(64, TRANSFORMER)); // the transformer by default
  await page.close();
});

it('serves COOP/COEP only when isolated, and refuses a folder that is not a model', async () => {
  const [on, off] = await Promise.all(servers.map((s) => fetch(s.url)));
  expect(on.headers.get('cross-origin-opener-policy')).toBe('same-origin');
  expect(on.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
  expect(off.headers.get('cross-origin-opener-policy')).toBeNull();
  const models = (await (await fetch(`${servers[0].url}api/models`)).json()) as { files: Record<string, { sha256: string }> }[];
  expect(Object.keys(models[0].files).sort()).toEqual(['config.json', 'model.safetensors']);
  const r = spawnSync(process.execPath, ['bin/frugal.js', 'web', '--model', 'test/fixtures'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^frugal: --model \S+: the page needs a folder with config\.json and model\.safetensors/);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
});

it('the browser bundle imports no Node built-in', () => {
  const dir = 'dist/web';
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  expect(files).toContain('frugal.js');
  for (const f of files) {
    const code = readFileSync(join(dir, f), 'utf8');
    expect(code, f).not.toMatch(/\bfrom\s*["'](node:)?(fs|path|os|crypto|worker_threads|zlib|child_process|url|http)["']/);
    expect(code, f).not.toMatch(/\bimport\s*\(\s*["']node:/);
    expect(code, f).not.toMatch(/\bfrom\s*["']node:/);
  }
});
