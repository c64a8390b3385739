#!/usr/bin/env node
// The README's screenshot of the page (docs/web-page.png): `frugal web` with its default models
// (the bundled ones) on a free loopback port, in headless Debian Chromium, a greedy generation
// from the bundled Mamba with the transformer side by side. After `npm run build`:
//   node tools/web-screenshot.mjs [OUT.png]
// Speeds in the picture are whatever this machine measured at the time.
import { spawn } from 'node:child_process';
import { renameSync } from 'node:fs';
import { chromium } from 'playwright-core';

const out = process.argv[2] ?? 'docs/web-page.png';
const web = spawn(process.execPath, ['bin/frugal.js', 'web', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((ok, fail) => {
  let err = '';
  web.stderr.on('data', (d) => {
    err += d;
    const m = /web: (http:\/\/\S+\/)/.exec(err);
    if (m) ok(m[1]);
  });
  web.on('exit', (code) => fail(new Error(`frugal web exited with ${code}: ${err}`)));
});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 800, height: 900 }, deviceScaleFactor: 1 });
  const status = (want) =>
    page.waitForFunction((w) => (document.querySelector('[data-testid=status]')?.textContent ?? '') === w, want, { timeout: 120000 });
  await page.goto(`${url}?prompt=${encodeURIComponent('The state of the Union is')}&max_tokens=80&temperature=0&seed=1&threads=2`);
  await status('ready');
  await page.check('[data-testid=side-by-side]');
  await page.waitForFunction(() => document.querySelector('[data-testid=status-b]')?.textContent?.startsWith('ready'));
  await page.click('[data-testid=generate]');
  await status('done');
  await page.waitForFunction(() => document.querySelector('[data-testid=status-b]')?.textContent === 'done');
  const tmp = `${out}.tmp.png`;
  await page.screenshot({ path: tmp, fullPage: true });
  renameSync(tmp, out); // no half-written picture
  process.stderr.write(`web-screenshot: wrote ${out}\n`);
} finally {
  await browser.close();
  web.kill('SIGTERM');
}
