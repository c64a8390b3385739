import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { expect, it } from 'vitest';

/** `frugal bench web`: the page in Debian's Chromium against Node, as JSON on stdout. */
const MODEL = 'test/fixtures/mamba-d256-l4';

const frugal = (args: string[]) => spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8' });

it('measures the page beside Node on the same checkpoint and thread count', () => {
  const r = frugal(['bench', 'web', '--model', MODEL, '--tokens', '8', '--threads', '1,2', '--runs', '1']);
  expect(r.status, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout) as {
    model: string;
    rows: Record<string, number | string>[];
    first_token_ms_cached: number;
    bundle_total_bytes: number;
    wasm_bytes: number;
  };
  expect(doc.model).toBe(MODEL);
  expect(doc.rows.map((x) => [x.threads, x.backend])).toEqual([
    [1, 'wasm-simd'],
    [2, 'wasm-simd-threads:2'],
  ]);
  for (const row of doc.rows) {
    expect(row.prompt_tokens).toBe(1024); // the fixed 1024-byte prompt, one token per byte
    for (const k of ['page_decode_tok_s', 'node_decode_tok_s', 'page_prefill_tok_s', 'node_prefill_tok_s'])
      expect(row[k], k).toBeGreaterThan(0);
    expect(row.decode_ratio).toBeCloseTo((row.page_decode_tok_s as number) / (row.node_decode_tok_s as number), 2);
    // the prefill's thread counters: parallel calls only with a second thread, on both sides
    // and the generation's steps', per step
    const decode = ['page_decode_late_joins_per_step', 'node_decode_late_joins_per_step', 'page_decode_sleeps', 'node_decode_sleeps'];
    if (row.threads === 1) {
      expect([row.prefill_parallel_runs, row.page_prefill_join_ms, row.node_prefill_join_ms]).toEqual([0, 0, 0]);
      expect([row.decode_parallel_runs_per_step, ...decode.map((k) => row[k])]).toEqual([0, 0, 0, 0, 0]);
    } else {
      expect(row.prefill_parallel_runs).toBeGreaterThan(4);
      for (const k of ['page_prefill_join_ms', 'node_prefill_join_ms', 'page_prefill_sleeps', 'node_prefill_sleeps', ...decode])
        expect(row[k], k).toBeGreaterThanOrEqual(0);
      // a step of this 4-layer Mamba: the in and out projections of each layer, its scan step, and the head
      expect(row.decode_parallel_runs_per_step).toBeGreaterThanOrEqual(4);
      // a join waited at is one of the parallel calls
      for (const k of ['page_decode_late_joins_per_step', 'node_decode_late_joins_per_step'])
        expect(row[k], k).toBeLessThanOrEqual(row.decode_parallel_runs_per_step as number);
    }
  }
  expect(doc.first_token_ms_cached).toBeGreaterThan(0);
  expect(doc.wasm_bytes).toBe(statSync('build/kernels.wasm').size);
  expect(doc.bundle_total_bytes).toBeGreaterThan(doc.wasm_bytes);
  expect(r.stderr).toMatch(/^bench web: /m); // progress on stderr, JSON alone on stdout
});

it('refuses a missing Chromium in one line, with exit code 2', () => {
  const r = frugal(['bench', 'web', '--model', MODEL, '--chromium', '/nonexistent/chromium']);
  expect(r.status).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toEqual([
    'frugal: --chromium /nonexistent/chromium is missing: install Chromium (Debian: apt-get install chromium) or give its path',
  ]);
});

it("the README's browser table is the committed docs/bench-web.json", () => {
  const doc = JSON.parse(readFileSync('docs/bench-web.json', 'utf8')) as {
    command: string;
    rows: Record<string, number | string>[];
    first_token_ms_cached: number;
    bundle_total_bytes: number;
    wasm_bytes: number;
  };
  const readme = readFileSync('README.md', 'utf8');
  expect(readme).toContain(`\`npx ${doc.command}\``);
  for (const r of doc.rows) {
    const cells = [r.threads, `\`${r.backend}\``, r.page_decode_tok_s, r.node_decode_tok_s, r.decode_ratio];
    const more = [r.page_prefill_tok_s, r.node_prefill_tok_s, r.prefill_ratio];
    expect(readme).toContain(`| ${[...cells, ...more].join(' | ')} |`);
  }
  expect(readme).toContain(`**${doc.first_token_ms_cached} ms**`);
  expect(readme).toContain(
    `${doc.bundle_total_bytes.toLocaleString('en-US')} bytes; \`kernels.wasm\` ${doc.wasm_bytes.toLocaleString('en-US')} bytes`,
  );
});
