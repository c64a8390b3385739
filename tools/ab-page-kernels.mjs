#!/usr/bin/env node
/**
 * The same wasm kernels (build/kernels.wasm, or the file given) timed in headless Chromium and in
 * Node, on the same shapes and inputs, rounds alternating between the two: which kernels the
 * browser's engine runs slower than Node's. A page served on loopback with the COOP/COEP headers
 * (shared memory needs cross-origin isolation) runs the timing function; Node runs the same text.
 *
 *   npm run build
 *   node tools/ab-page-kernels.mjs [--wasm build/kernels.wasm] [--rounds 3] [--chromium /usr/bin/chromium]
 *
 * Prints, per round, each kernel's best milliseconds per call in the page and in Node, and the
 * ratio page ÷ Node (above 1: slower in the page).
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: o } = parseArgs({
  options: {
    wasm: { type: 'string', default: 'build/kernels.wasm' },
    rounds: { type: 'string', default: '3' },
    chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
  },
});
const wasm = readFileSync(o.wasm);

// one text, run as is in both places: it instantiates the kernels on its own shared memory
const TIMING = String.raw`
async function timeKernels(bytes, reps) {
  const mem = new WebAssembly.Memory({ initial: 2048, maximum: 4096, shared: true });
  const { instance } = await WebAssembly.instantiate(bytes, { env: { memory: mem } });
  const k = instance.exports, f = new Float32Array(mem.buffer);
  const S = 512, base = 16 << 20;
  const a = base, b = a + S * S * 4, bp = b + S * S * 4, out = bp + S * S * 4;
  for (let i = 0; i < 3 * S * S; i++) f[a / 4 + i] = Math.sin(i);
  k.packPanels4(bp, b, S, S);
  const L = 128, ED = 256, N = 16, s0 = out + S * S * 4;
  const x = s0, dl = x + L * ED * 4, A = dl + L * ED * 4, Bm = A + ED * N * 4, Cm = Bm + L * N * 4, D = Cm + L * N * 4;
  const y = D + ED * 4, h = y + L * ED * 4;
  for (let i = 0; i < L * ED; i++) { f[x / 4 + i] = Math.sin(i); f[dl / 4 + i] = 0.05 + 0.01 * Math.cos(i); }
  for (let i = 0; i < ED * N; i++) f[A / 4 + i] = -(1 + (i % N));
  for (let i = 0; i < 2 * L * N; i++) f[Bm / 4 + i] = Math.cos(i);
  const res = {};
  const time = (name, fn, n) => {
    for (let i = 0; i < 3; i++) fn();
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      for (let i = 0; i < n; i++) fn();
      best = Math.min(best, (performance.now() - t) / n);
    }
    res[name] = best;
  };
  time('matmulNTP4 512³', () => k.matmulNTP4(out, a, bp, S, S, S, 0), 4);
  time('matmulNTP4 1×512→512', () => k.matmulNTP4(out, a, bp, 1, S, S, 0), 400);
  time('scanForward 128×256×16', () => k.scanForward(y, h, 0, x, dl, A, Bm, Cm, D, 1, L, ED, N, L), 20);
  time('scanStep 256×16 (decoding)', () => k.scanStep(y, h, x, dl, A, Bm, Cm, D, 1, ED, N), 400);
  time('softplusForward 32768', () => k.softplusForward(y, x, L * ED), 50);
  time('siluForward 32768', () => k.siluForward(y, x, L * ED), 50);
  return res;
}`;
const page = `<!doctype html><title>kernels</title><script>${TIMING}</script>`;
const server = createServer((req, res) => {
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
  res.setHeader('Content-Type', req.url === '/k.wasm' ? 'application/wasm' : 'text/html; charset=utf-8');
  res.end(req.url === '/k.wasm' ? wasm : page);
}).listen(0, '127.0.0.1');
await new Promise((ok) => server.on('listening', ok));
const timeKernels = new Function(`${TIMING}; return timeKernels;`)();
const browser = await chromium.launch({ executablePath: o.chromium, args: ['--no-sandbox'] });
try {
  const p = await browser.newPage();
  await p.goto(`http://127.0.0.1:${server.address().port}/`);
  if (!(await p.evaluate(() => crossOriginIsolated))) throw new Error('the page is not cross-origin isolated');
  console.error(`${browser.version()} against Node ${process.version}; ${o.wasm}`);
  for (let r = 1; r <= Number(o.rounds); r++) {
    const inPage = await p.evaluate(async () => timeKernels(await (await fetch('/k.wasm')).arrayBuffer(), 7));
    const inNode = await timeKernels(wasm, 7);
    for (const [name, ms] of Object.entries(inNode))
      console.log(
        `round ${r}  ${name.padEnd(24)} page ${inPage[name].toFixed(4)} ms  Node ${ms.toFixed(4)} ms  page ÷ Node ${(inPage[name] / ms).toFixed(3)}`,
      );
  }
} finally {
  await browser.close();
  server.close();
}
