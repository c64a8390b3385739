#!/usr/bin/env node
// Tokens/s of greedy generation in the page (headless Debian Chromium) against `frugal generate`
// in Node, for the same model, prompt and thread count. Usage (after `npm run build`):
//   node tools/web-speed.mjs [MODEL_DIR] [TOKENS] [THREADS]
// Prints one JSON line on stdout. The server is `frugal web` on a free loopback port.
import { spawn, spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const [model = 'test/fixtures/mamba-d256-l4', tokens = '256', threads = '1'] = process.argv.slice(2);
const web = spawn(process.execPath, ['bin/frugal.js', 'web', '--port', '0', '--model', model], { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((ok) => {
  let err = '';
  web.stderr.on('data', (d) => {
    err += d;
    const m = /web: (http:\/\/\S+\/)/.exec(err);
    if (m) ok(m[1]);
  });
});
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage();
const t0 = Date.now();
await page.goto(`${url}?prompt=The%20&max_tokens=${tokens}&temperature=0&seed=1&autorun=1&threads=${threads}`);
await page.waitForFunction(
  () => ['done', 'error'].some((s) => document.querySelector('[data-testid=status]')?.textContent?.startsWith(s)),
  null,
  { timeout: 120000 },
);
const pageSeconds = (Date.now() - t0) / 1000;
const pageTps = Number(await page.textContent('[data-testid=speed]'));
const backend = await page.textContent('[data-testid=backend]');
await browser.close();
web.kill('SIGTERM');
const r = spawnSync(
  process.execPath,
  ['bin/frugal.js', 'generate', '--model', model, '--prompt', 'The ', '--max-tokens', tokens, '--temperature', '0', '--threads', threads],
  { encoding: 'utf8' },
);
const nodeTps = Number(/(\d+(?:\.\d+)?) tok\/s;/.exec(r.stderr.split('tokens at ')[1] ?? '')?.[1]);
console.log(
  JSON.stringify({
    model,
    tokens: Number(tokens),
    threads: Number(threads),
    backend,
    pageTokensPerSecond: pageTps,
    nodeTokensPerSecond: nodeTps,
    ratio: +(pageTps / nodeTps).toFixed(3),
    pageOpenToDoneSeconds: pageSeconds,
  }),
);
