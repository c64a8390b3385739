import { InvalidArgumentError } from '@commander-js/extra-typings';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../api/model.js';
import { TokenStream } from '../browser/index.js';
import type { PoolStats } from '../kernels/threads.js';
import { inputError, runtimeError } from '../io/errors.js';
import { debugOption, intArg } from './options.js';
import type { AnyCommand } from './options.js';
import { writeOut } from './stdout.js';
import { handler, webModels } from './web.js';
import type { WebModel } from './web.js';

/**
 * `frugal bench web`: the page served by `frugal web` (cross-origin isolated, on loopback) in
 * headless Chromium, driven through playwright-core, against Node on the same checkpoint, prompt
 * and thread count: decode and prefill tokens/s (the best of --runs, interleaved, after a warm-up on each side), the
 * time from opening the page to its first token with the model already in the browser's cache,
 * and the sizes of what a browser downloads (the bundle and the kernels). JSON on stdout.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const err = (s: string) => process.stderr.write(`bench web: ${s}\n`);
/** A fixed English prompt (1024 bytes: 1024 tokens for a byte-level model) to time the prefill with. */
export const BENCH_WEB_PROMPT = 'The state of the Union is strong, and the Congress and the people have worked together for a year. '
  .repeat(11)
  .slice(0, 1024);

export interface BenchWebFlags {
  model?: string;
  tokens: number;
  threads: number[];
  runs: number;
  kernels: 'default' | 'relaxed';
  chromium: string;
}

/** One thread count: the page's numbers beside Node's. */
export interface BenchWebRow {
  threads: number;
  backend: string;
  prompt_tokens: number;
  page_decode_tok_s: number;
  node_decode_tok_s: number;
  decode_ratio: number;
  page_prefill_tok_s: number;
  node_prefill_tok_s: number;
  prefill_ratio: number;
  /**
   * Where a prefill's time goes between threads, per prefill (median over the runs): the parallel
   * kernel calls, the milliseconds the calling thread waited at the joins of the chunked ones (the
   * products) for the other threads after its own share, the times a worker had gone to sleep (Atomics.wait) between calls, and the
   * share of the chunked products' chunks the calling thread ran (0.5 at 2 threads when both keep pace).
   */
  prefill_parallel_runs: number;
  page_prefill_join_ms: number;
  node_prefill_join_ms: number;
  page_prefill_sleeps: number;
  node_prefill_sleeps: number;
  page_prefill_caller_share: number;
  node_prefill_caller_share: number;
  /**
   * The same for the generation's steps (the first token comes from the prefill's logits, so N
   * tokens take N − 1 steps), per step (median over the runs): parallel kernel calls, the
   * joins at which the calling thread found the workers still busy after its own share (counted,
   * not timed: a cross-origin isolated page's clock has a resolution of microseconds), and worker
   * sleeps over the whole generation.
   */
  decode_parallel_runs_per_step: number;
  page_decode_late_joins_per_step: number;
  node_decode_late_joins_per_step: number;
  page_decode_sleeps: number;
  node_decode_sleeps: number;
}

function threadList(v: string): number[] {
  const n = v.split(',').map((x) => Number(x.trim()));
  if (n.length === 0 || !n.every((x) => Number.isInteger(x) && x >= 1 && x <= 64))
    throw new InvalidArgumentError(`expected thread counts from 1 to 64, comma-separated (like 1,2), got '${v}'`);
  return [...new Set(n)];
}

function kernelsBuild(v: string): 'default' | 'relaxed' {
  if (v !== 'default' && v !== 'relaxed') throw new InvalidArgumentError(`expected default or relaxed, got '${v}'`);
  return v;
}

export function registerBenchWeb(bench: AnyCommand): void {
  const cmd = bench
    .command('web')
    .description('the page in headless Chromium against Node: tokens/s, time to first token (cached model), bundle sizes; JSON')
    .option('--model <dir>', "checkpoint folder (default: the page's first model)")
    .option('--tokens <n>', 'greedy tokens per generation', intArg(1, 1 << 20), 128)
    .option('--threads <list>', 'kernel thread counts, comma-separated', threadList, [1, 2])
    .option(
      '--kernels <build>',
      "the page's kernels: default (Node's build) or relaxed (the opt-in relaxed-SIMD build; Node keeps the default)",
      kernelsBuild,
      'default',
    )
    .option('--runs <n>', 'timed generations on each side, interleaved (the best is reported)', intArg(1, 1000), 10)
    .option('--chromium <path>', 'the Chromium (or Chrome) executable to drive', process.env.CHROMIUM ?? '/usr/bin/chromium');
  debugOption(cmd).action((o) => benchWebCommand(o));
}

type Playwright = typeof import('playwright-core');
type Page = import('playwright-core').Page;

async function playwright(): Promise<Playwright> {
  try {
    return await import('playwright-core');
  } catch {
    throw inputError("bench web drives Chromium through playwright-core, which is not installed: 'npm install playwright-core'");
  }
}

/** Wait for the page's status to end a load or a generation; an `error: …` status is a runtime failure. */
async function settled(page: Page, want: 'ready' | 'done'): Promise<void> {
  // a MutationObserver, not Playwright's polling (every animation frame): frames drawn while the
  // page generates would take the cores the timed threads run on
  const s = await page.evaluate(
    (w) =>
      new Promise<string>((resolve) => {
        const el = document.querySelector('[data-testid=status]');
        if (el === null) return resolve('error: the page has no status element');
        const now = () => el.textContent ?? '';
        const done = () => now() === w || now().startsWith('error');
        if (done()) return resolve(now());
        const give = setTimeout(() => {
          seen.disconnect();
          resolve(`error: no '${w}' from the page in 600 s (it says '${now()}')`);
        }, 600_000);
        const seen = new MutationObserver(() => {
          if (!done()) return;
          seen.disconnect();
          clearTimeout(give);
          resolve(now());
        });
        seen.observe(el, { childList: true, characterData: true, subtree: true });
      }),
    want,
  );
  if (s !== want) throw runtimeError(`the page says ${s}`);
}

const numberIn = async (page: Page, id: string, re: RegExp) => Number(re.exec((await page.textContent(`[data-testid=${id}]`)) ?? '')?.[1]);

interface Speeds {
  decode: number;
  prefill: number;
}
const best = (a: Speeds, b: Speeds): Speeds => ({ decode: Math.max(a.decode, b.decode), prefill: Math.max(a.prefill, b.prefill) });
/**
 * Idle milliseconds before each timed generation: on two cores the side just measured still runs
 * for a while (the page paints its result, the other pool's workers spin before they sleep), and
 * a generation timed inside that tail shares its cores with it.
 */
const QUIET_MS = 60;
const median = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1] ?? Number.NaN;

/** One greedy generation in the page (tokens/s as it reports them), and its prefill's thread counters. */
async function pageOnce(page: Page): Promise<Speeds & { pool: PoolStats; decodePool: PoolStats }> {
  await page.click('[data-testid=generate]');
  await settled(page, 'done');
  const counters = async (id: string) => {
    const p = JSON.parse((await page.getAttribute(`[data-testid=${id}]`, 'data-pool')) ?? 'null') as PoolStats | null;
    if (p === null) throw runtimeError(`the page reported no thread counters on '${id}'`);
    return p;
  };
  return {
    decode: await numberIn(page, 'speed', /^([\d.]+)/),
    prefill: await numberIn(page, 'prefill', /at ([\d.]+) tokens\/s/),
    pool: await counters('prefill'),
    decodePool: await counters('speed'),
  };
}

/**
 * The page (after the warm-up its autorun did) and Node (after one of its own) on the same model,
 * prompt and threads, their runs interleaved so that the machine's other work falls on both alike:
 * the best of `runs` on each side.
 */
async function measure(page: Page, m: WebModel, threads: number, tokens: number, runs: number) {
  const model = loadModel(m.base, { threads, adapter: m.adapter });
  try {
    // the page's own code path (TokenStream: the prefill, then token by token with the text decoded)
    const nodeOnce = (): Speeds & { pool: PoolStats; decodePool: PoolStats; count: number } => {
      const s = new TokenStream(model, BENCH_WEB_PROMPT, { maxTokens: tokens, temperature: 0 });
      const t1 = performance.now();
      let count = 0;
      while (s.next() !== null) count++;
      const decode = (performance.now() - t1) / 1000;
      const decodePool = s.decodePool();
      for (const t of s.state.tensors.values()) t.dispose();
      const prefill = s.promptTokens / Math.max(s.prefillSeconds, 1e-9);
      return { decode: count / Math.max(decode, 1e-9), prefill, pool: s.prefillPool, decodePool, count };
    };
    nodeOnce();
    let inPage: Speeds = { decode: 0, prefill: 0 };
    let inNode: Speeds = { decode: 0, prefill: 0 };
    const pools: { page: PoolStats[]; node: PoolStats[] } = { page: [], node: [] };
    // per step: N tokens take N - 1 (both sides make the same greedy tokens; Node counts them)
    const steps: { page: PoolStats[]; node: PoolStats[] } = { page: [], node: [] };
    const perStep = (p: PoolStats, tokens: number): PoolStats => {
      const n = Math.max(1, tokens - 1);
      return { ...p, runs: p.runs / n, lateJoins: p.lateJoins / n };
    };
    for (let i = 0; i < runs; i++) {
      await sleep(QUIET_MS);
      const p = await pageOnce(page);
      await sleep(QUIET_MS);
      const n = nodeOnce();
      inPage = best(inPage, p);
      inNode = best(inNode, n);
      pools.page.push(p.pool);
      pools.node.push(n.pool);
      steps.page.push(perStep(p.decodePool, n.count));
      steps.node.push(perStep(n.decodePool, n.count));
    }
    const pool = (side: PoolStats[], k: keyof PoolStats) => +median(side.map((x) => x[k])).toFixed(2);
    const share = (side: PoolStats[]) => +median(side.map((x) => (x.chunks > 0 ? x.callerChunks / x.chunks : 0))).toFixed(3);
    return {
      inPage,
      inNode,
      promptTokens: await numberIn(page, 'prefill', /^(\d+) tokens/),
      threadsRow: {
        prefill_parallel_runs: pool(pools.node, 'runs'),
        page_prefill_join_ms: pool(pools.page, 'joinMs'),
        node_prefill_join_ms: pool(pools.node, 'joinMs'),
        page_prefill_sleeps: pool(pools.page, 'sleeps'),
        node_prefill_sleeps: pool(pools.node, 'sleeps'),
        page_prefill_caller_share: share(pools.page),
        node_prefill_caller_share: share(pools.node),
        decode_parallel_runs_per_step: pool(steps.node, 'runs'),
        page_decode_late_joins_per_step: pool(steps.page, 'lateJoins'),
        node_decode_late_joins_per_step: pool(steps.node, 'lateJoins'),
        page_decode_sleeps: pool(steps.page, 'sleeps'),
        node_decode_sleeps: pool(steps.node, 'sleeps'),
      },
    };
  } finally {
    model.dispose();
  }
}

/** Bytes a browser downloads besides the model: the page's bundle (dist/web/*.js) and the kernels. */
function sizes(): { bundle_bytes: Record<string, number>; bundle_total_bytes: number; wasm_bytes: number } {
  const dir = join(ROOT, 'dist', 'web');
  const bundle: Record<string, number> = {};
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.js'))) bundle[f] = statSync(join(dir, f)).size;
  const total = Object.values(bundle).reduce((a, b) => a + b, 0);
  return { bundle_bytes: bundle, bundle_total_bytes: total, wasm_bytes: statSync(join(ROOT, 'build', 'kernels.wasm')).size };
}

async function listen(models: WebModel[]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler(models, true));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const addr = server.address();
  if (typeof addr !== 'object' || addr === null) throw runtimeError('the page server has no address');
  return { server, url: `http://127.0.0.1:${addr.port}/` };
}

export async function benchWebCommand(o: BenchWebFlags): Promise<void> {
  const [chosen] = webModels(o.model === undefined ? undefined : [o.model]);
  if (!existsSync(join(ROOT, 'dist', 'web', 'page.js'))) throw inputError(`${join(ROOT, 'dist', 'web')} is missing: run \`npm run build\``);
  if (!existsSync(o.chromium))
    throw inputError(`--chromium ${o.chromium} is missing: install Chromium (Debian: apt-get install chromium) or give its path`);
  const { chromium } = await playwright();
  const { server, url } = await listen([chosen]);
  const browser = await chromium.launch({ executablePath: o.chromium, args: ['--no-sandbox'] });
  try {
    const rows: BenchWebRow[] = [];
    let firstTokenMs = Number.NaN;
    for (const threads of o.threads) {
      const context = await browser.newContext(); // a fresh origin storage: the first visit downloads the model
      const page = await context.newPage();
      const q = `?prompt=${encodeURIComponent(BENCH_WEB_PROMPT)}&max_tokens=${o.tokens}&temperature=0&seed=1&threads=${threads}${o.kernels === 'relaxed' ? '&kernels=relaxed' : ''}`;
      err(`${threads} thread${threads > 1 ? 's' : ''}: the page and Node, ${o.runs} runs each…`);
      await page.goto(`${url}${q}&autorun=1`);
      await settled(page, 'done'); // the warm-up, and the model now in the browser's cache
      const backend = (await page.textContent('[data-testid=backend]')) ?? '';
      const { inPage, inNode, promptTokens, threadsRow } = await measure(page, chosen, threads, o.tokens, o.runs);
      if (Number.isNaN(firstTokenMs)) {
        await page.goto(`${url}${q}&autorun=1`); // the next visit: the model from the cache
        await settled(page, 'done');
        firstTokenMs = await numberIn(page, 'first-token', /^(\d+) ms/);
      }
      await context.close();
      // the ratios from the figures as reported, so that the document agrees with itself
      const node = { decode: +inNode.decode.toFixed(1), prefill: +inNode.prefill.toFixed(1) };
      const row = {
        threads,
        backend,
        prompt_tokens: promptTokens,
        page_decode_tok_s: inPage.decode,
        node_decode_tok_s: node.decode,
        decode_ratio: +(inPage.decode / node.decode).toFixed(3),
        page_prefill_tok_s: inPage.prefill,
        node_prefill_tok_s: node.prefill,
        prefill_ratio: +(inPage.prefill / node.prefill).toFixed(3),
        ...threadsRow,
      };
      err(
        `${backend}: decode ${row.page_decode_tok_s} tok/s in the page, ${row.node_decode_tok_s} in Node; ` +
          `prefill ${row.page_prefill_tok_s} / ${row.node_prefill_tok_s}; per prefill ${row.prefill_parallel_runs} parallel calls, ` +
          `join waits ${row.page_prefill_join_ms} / ${row.node_prefill_join_ms} ms, worker sleeps ${row.page_prefill_sleeps} / ${row.node_prefill_sleeps}, ` +
          `caller's share of the chunks ${row.page_prefill_caller_share} / ${row.node_prefill_caller_share}; ` +
          `per step ${row.decode_parallel_runs_per_step} parallel calls, ${row.page_decode_late_joins_per_step} / ` +
          `${row.node_decode_late_joins_per_step} of them waited on at the join, worker sleeps ${row.page_decode_sleeps} / ${row.node_decode_sleeps}`,
      );
      rows.push(row);
    }
    const doc = {
      command: `frugal bench web${o.model === undefined ? '' : ` --model ${o.model}`} --tokens ${o.tokens} --threads ${o.threads.join(',')} --runs ${o.runs}${o.kernels === 'relaxed' ? ' --kernels relaxed' : ''}`,
      runs: o.runs,
      model: relative(process.cwd(), chosen.adapter ?? chosen.base) || '.',
      tokens: o.tokens,
      browser: `${browser.browserType().name()} ${browser.version()}`,
      rows,
      first_token_ms_cached: firstTokenMs,
      ...sizes(),
    };
    writeOut(JSON.stringify(doc, null, 2) + '\n');
  } finally {
    await browser.close();
    server.close();
  }
}
