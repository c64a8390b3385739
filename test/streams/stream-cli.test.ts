import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Engine } from '../../src/ops/index.js';
import { loadStreamModel } from '../../src/models/heads.js';
import { StreamRunner } from '../../src/streams/runtime.js';
import { runStream } from '../../src/streams/loop.js';
import type { RunResult } from '../../src/streams/loop.js';
import type { OverflowPolicy } from '../../src/streams/queue.js';
import { expectOneLineError, frugal } from '../helpers/cli.js';

/**
 * `frugal train --task` and `frugal stream` as a user runs them: bit-exact resume (both
 * architectures, with and without --learn), malformed lines, feed faults, the overflow policies
 * under a producer faster than the model, and SIGTERM.
 */
let root: string;
const TICKS = 160;

function csvRows(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return `${i},${Math.sin(i / 4).toFixed(5)},${Math.cos(i / 9).toFixed(5)},${Math.sin(i / 4) > 0.6 ? 1 : 0}`;
  });
}
const HEADER = 't,x,y,cls';

function train(dir: string, args: string[]): void {
  const r = frugal([
    'train',
    '--data',
    join(root, 'series.csv'),
    '--out',
    dir,
    '--d-model',
    '16',
    '--layers',
    '1',
    '--seq-len',
    '16',
    '--batch',
    '2',
    '--steps',
    '8',
    '--threads',
    '1',
    ...args,
  ]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe('');
}

beforeAll(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'frugal-stream-')));
  writeFileSync(join(root, 'series.csv'), [HEADER, ...csvRows(TICKS)].join('\n') + '\n');
  train(join(root, 'fm'), ['--task', 'forecast', '--target', 'x', '--features', 'x,y']);
  train(join(root, 'ft'), ['--task', 'forecast', '--target', 'x', '--features', 'x,y', '--arch', 'transformer', '--seq-len', '8']);
  train(join(root, 'ct'), ['--task', 'classify', '--target', 'cls', '--arch', 'transformer']);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const file = (name: string, lines: string[]) => {
  const p = join(root, name);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
};

describe('frugal train --task', () => {
  it('records the task, features and their normalisation', () => {
    const s = JSON.parse(readFileSync(join(root, 'ct', 'stream.json'), 'utf8'));
    expect(s).toMatchObject({
      format: 'frugal-stream/1',
      task: 'classify',
      head: 'softmax',
      features: ['x', 'y'],
      target: 'cls',
      classes: 2,
    });
    expect(s.rows).toEqual({ train: 128, held_out: 32 });
    expect(s.norm.mean).toHaveLength(2);
  });

  it('refuses a missing target column with a one-line error', () => {
    const r = frugal(['train', '--task', 'forecast', '--data', join(root, 'series.csv'), '--target', 'nope', '--out', join(root, 'bad')]);
    expectOneLineError(r, 2, /no column 'nope'/);
  });
});

describe('frugal stream', () => {
  const stream = (model: string, args: string[], input?: string) =>
    frugal(['stream', '--model', join(root, model), ...args], input === undefined ? {} : { input });

  for (const [model, extra] of [
    ['fm', ['--learn', '--lr', '0.01']],
    ['ft', []],
    ['ct', ['--learn', '--label-delay', '3']],
  ] as [string, string[]][]) {
    it(`a stream cut in two and resumed prints what the uninterrupted one prints (${model} ${extra.join(' ')})`, () => {
      const all = file('all.csv', [HEADER, ...csvRows(TICKS)]);
      const whole = stream(model, ['--input', all, ...extra]);
      expect(whole.code, whole.stderr).toBe(0);
      const lines = whole.stdout.trim().split('\n');
      expect(lines).toHaveLength(TICKS);
      const first = JSON.parse(lines[0]);
      expect(Object.keys(first).slice(0, 3)).toEqual(['i', 't', 'pred']);
      const state = join(root, `${model}-${extra.length}.state`);
      rmSync(state, { force: true });
      const a = stream(model, ['--input', file('a.csv', [HEADER, ...csvRows(70)]), '--state', state, '--save-every', '16', ...extra]);
      expect(a.code, a.stderr).toBe(0);
      // the second half as JSON Lines on stdin: the format does not change the ticks
      const b = stream(
        model,
        ['--input', '-', '--format', 'jsonl', '--state', state, ...extra],
        csvRows(TICKS - 70, 70)
          .map(toJsonl)
          .join('\n') + '\n',
      );
      expect(b.code, b.stderr).toBe(0);
      expect(a.stdout + b.stdout).toBe(whole.stdout);
      expect(JSON.parse(b.stdout.split('\n')[0]).i).toBe(70);
    });
  }

  it('resuming on the whole input again skips the ticks already processed', () => {
    const all = file('all.csv', [HEADER, ...csvRows(TICKS)]);
    const whole = stream('fm', ['--input', all]);
    const state = join(root, 'replay.state');
    rmSync(state, { force: true });
    const a = stream('fm', ['--input', file('a.csv', [HEADER, ...csvRows(50)]), '--state', state]);
    const b = stream('fm', ['--input', all, '--state', state]);
    expect(a.stdout + b.stdout).toBe(whole.stdout);
    expect(b.stderr).toMatch(/50 already processed/);
  });

  it('flags gaps and skips duplicate and out-of-order ticks, as stated', () => {
    const rows = csvRows(40);
    const faulty = [...rows.slice(0, 10), rows[9], ...rows.slice(10, 20), rows[15], ...rows.slice(24, 40)];
    const r = stream('fm', ['--input', file('faulty.csv', [HEADER, ...faulty])]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out.map((o) => o.i)).toEqual(Array.from({ length: 36 }, (_, k) => k)); // tick indices stay contiguous
    expect(out.filter((o) => o.gap !== undefined).map((o) => [o.t, o.gap])).toEqual([[24, 4]]);
    expect(r.stderr).toMatch(/skipped 1 duplicate, 1 out-of-order, 0 malformed; 1 gaps/);
  });

  it('reports malformed lines with their number and skips them, or stops with exit 2', () => {
    const rows = csvRows(12);
    const input = file('bad.csv', [HEADER, ...rows.slice(0, 5), '5,oops,1,0', ...rows.slice(6)]);
    const skip = stream('fm', ['--input', input]);
    expect(skip.code).toBe(0);
    expect(skip.stderr).toMatch(/bad\.csv line 7: column x: 'oops' is not a number \(skipped\)/);
    expect(skip.stdout.trim().split('\n')).toHaveLength(11);
    const fatal = stream('fm', ['--input', input, '--on-bad-line', 'fatal']);
    expect(fatal.code).toBe(2);
    expect(fatal.stderr).toMatch(/line 7: column x: 'oops' is not a number; fix the line or pass --on-bad-line skip/);
    expect(fatal.stdout.trim().split('\n')).toHaveLength(5);
  });

  it('refuses a state saved by another model, and a header without a time column', () => {
    const state = join(root, 'other.state');
    rmSync(state, { force: true });
    expect(stream('fm', ['--input', file('s.csv', [HEADER, ...csvRows(5)]), '--state', state]).code).toBe(0);
    expectOneLineError(
      stream('ft', ['--input', file('s.csv', [HEADER, ...csvRows(5)]), '--state', state]),
      2,
      /saved by another streaming model/,
    );
    expectOneLineError(stream('fm', ['--input', file('nt.csv', ['x,y', '1,2'])]), 2, /no time column: name one t, time or date/);
  });

  it('SIGTERM writes the state, and the stream continues from it', async () => {
    const state = join(root, 'term.state');
    rmSync(state, { force: true });
    const child = spawn(process.execPath, ['bin/frugal.js', 'stream', '--model', join(root, 'fm'), '--state', state, '--save-every', '0'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stdin.write([HEADER, ...csvRows(30)].join('\n') + '\n');
    while (out.split('\n').length < 31) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(143);
    expect(existsSync(state)).toBe(true);
    const rest = stream('fm', ['--input', file('rest.csv', [HEADER, ...csvRows(10, 30)]), '--state', state]);
    const whole = stream('fm', ['--input', file('w.csv', [HEADER, ...csvRows(40)])]);
    expect(out + rest.stdout).toBe(whole.stdout);
  });
});

function toJsonl(row: string): string {
  const [t, x, y, cls] = row.split(',').map(Number);
  return JSON.stringify({ t, x, y, cls });
}

describe('overflow policies under a producer faster than the model', () => {
  const N = 300,
    CAP = 8;
  async function run(policy: OverflowPolicy): Promise<{ res: RunResult; lines: string[] }> {
    const runner = new StreamRunner(loadStreamModel(new Engine(), join(root, 'fm')), { learn: false, lr: 0, labelDelay: 0 });
    const input = new PassThrough();
    const lines: string[] = [];
    const p = runStream(runner, input, {
      format: 'csv',
      queue: CAP,
      overflow: policy,
      fatalBadLines: false,
      queueDepth: true,
      resumed: false,
      save: null,
      saveEvery: 0,
      where: 'test',
      emit: (l) => lines.push(l),
      log: () => {},
      afterTick: () => new Promise((r) => setTimeout(r, 1)), // a slow model
    });
    // the producer writes a line every tick of the event loop, far faster than 1 ms per tick
    input.write(HEADER + '\n');
    for (const row of csvRows(N)) {
      input.write(row + '\n');
      await new Promise((r) => setImmediate(r));
    }
    input.end();
    return { res: await p, lines };
  }

  it('block: every tick arrives, the queue never holds more than its capacity', async () => {
    const { res, lines } = await run('block');
    expect(lines).toHaveLength(N);
    expect(res.queue.maxDepth).toBeLessThanOrEqual(CAP);
    expect(res.queue.maxDepth).toBeGreaterThan(1);
    expect(res.queue.dropped + res.queue.coalesced).toBe(0);
    expect(Math.max(...lines.map((l) => JSON.parse(l).queue))).toBeLessThan(CAP);
  });

  it('drop-oldest: the oldest ticks are dropped and counted', async () => {
    const { res, lines } = await run('drop-oldest');
    expect(res.queue.dropped).toBeGreaterThan(0);
    expect(lines.length + res.queue.dropped).toBe(N);
    expect(res.queue.maxDepth).toBe(CAP);
    expect(JSON.parse(lines[lines.length - 1]).t).toBe(N - 1); // the newest tick is never dropped
  });

  it('coalesce: overflow merges into the newest queued tick', async () => {
    const { res, lines } = await run('coalesce');
    expect(res.queue.coalesced).toBeGreaterThan(0);
    expect(lines.length + res.queue.coalesced).toBe(N);
    expect(JSON.parse(lines[lines.length - 1]).t).toBe(N - 1);
  });
});
