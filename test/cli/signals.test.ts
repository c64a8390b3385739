import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, mkdirSync, openSync, readdirSync, readFileSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { mambaConfigFromJson } from '../../src/models/mamba/config.js';
import { mambaParamSpecs } from '../../src/models/mamba/params.js';
import { DEAD_PID, TINY, expectOneLineError, frugal, snapshot, workspace } from '../helpers/cli.js';

/**
 * One writer per folder, exact resume, and how commands end: signals, a reader that stops
 * reading, a full disk. The real CLI, in temporary folders.
 */
const { corpus, base, caseDir } = workspace('frugal-signals-');

/** A command running in the background, its stderr collected. */
function start(command: string, args: readonly string[]) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }) as ChildProcessByStdio<Writable, Readable, Readable>;
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const poll = () => {
        if (re.test(out)) resolve();
        else if (child.exitCode !== null) reject(new Error(`exited first: ${out}`));
        else setTimeout(poll, 5);
      };
      poll();
    });
  return { child, exited, waitFor, output: () => out };
}

const trainerState = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')) as { step: number; losses: number[] };
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('resume and locks', () => {
  it('SIGTERM mid-run, then --resume alone, equals the uninterrupted run bit for bit with non-default options', async () => {
    const d = caseDir();
    const RUN = [
      'train',
      '--d-model',
      '16',
      '--layers',
      '1',
      '--d-state',
      '4',
      '--seq-len',
      '12',
      '--batch',
      '3',
      '--lr',
      '0.004',
      '--min-lr',
      '0.0002',
      '--warmup',
      '7',
      '--weight-decay',
      '0.02',
      '--clip',
      '0.7',
      '--seed',
      '11',
      '--steps',
      '300',
      '--save-every',
      '50',
      '--val-fraction',
      '0.1',
      '--eval-windows',
      '2',
      '--threads',
      '1',
      '--data',
      corpus,
    ];
    const ref = frugal([...RUN, '--out', join(d, 'ref')]);
    expect(ref.code, ref.stderr).toBe(0);
    const run = join(d, 'run');
    const a = start(process.execPath, ['bin/frugal.js', ...RUN, '--out', run]);
    await a.waitFor(/train 30\/300/);
    // hold it still while a second writer tries the same folder
    const pid = a.child.pid as number;
    process.kill(pid, 'SIGSTOP');
    try {
      expectOneLineError(
        frugal(['train', '--out', run, '--resume']),
        2,
        new RegExp(`${run} is being written by another frugal process \\(pid ${pid} on ${hostname()}`),
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    process.kill(pid, 'SIGTERM');
    expect(await a.exited, a.output()).toBe(143);
    const m = /\nfrugal: stopped at step (\d+); continue with --resume\n$/.exec(a.output());
    expect(m, a.output()).not.toBeNull();
    const stoppedAt = Number(m![1]);
    expect(stoppedAt).toBeGreaterThanOrEqual(30);
    expect(stoppedAt).toBeLessThan(300);
    expect(trainerState(run).step).toBe(stoppedAt);
    expect(readdirSync(d).sort()).toEqual(['ref', 'run']);

    const before = snapshot(d);
    expectOneLineError(
      frugal(['train', '--out', run, '--resume', '--lr', '0.01']),
      2,
      /trained with --lr 0\.004, and --lr 0\.01 contradicts it; drop --lr .*add --force/,
    );
    expect(snapshot(d)).toEqual(before);

    // a writer killed with -9 leaves its lock: taken over with a warning
    writeFileSync(`${run}.lock`, JSON.stringify({ pid: DEAD_PID, host: hostname(), started: '', command: 'train', procStart: null }));
    const resumed = frugal(['train', '--out', run, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`took over the stale lock .*pid ${DEAD_PID}`));
    expect(trainerState(run).losses).toEqual(trainerState(join(d, 'ref')).losses);
    for (const f of ['model.safetensors', 'optimizer.safetensors']) expect(sha(join(run, f)), f).toBe(sha(join(d, 'ref', f)));
    expect(readdirSync(d).sort()).toEqual(['ref', 'run']);

    expectOneLineError(frugal(['train', '--out', run, '--resume', '--steps', '305']), 2, /--steps 300, and --steps 305 contradicts/);
    const longer = frugal(['train', '--out', run, '--resume', '--steps', '305', '--force']);
    expect(longer.code, longer.stderr).toBe(0);
    expect(trainerState(run).step).toBe(305);
  });
});

describe('Ctrl-C in a terminal', () => {
  it('restores the cursor and line wrap, says how to continue, and leaves no partial files', async () => {
    if (spawnSync('script', ['--version']).status !== 0) {
      console.warn('terminal test not run: util-linux `script` (a pseudo-terminal) is not installed');
      return;
    }
    const d = caseDir();
    const out = join(d, 'tty');
    const cmd = [process.execPath, 'bin/frugal.js', 'train', ...TINY, '--steps', '1000000', '--data', corpus, '--out', out]
      .map((s) => `'${s}'`)
      .join(' ');
    const t = start('script', ['-qefc', cmd, '/dev/null']);
    await t.waitFor(/train \[[^\]]*\] [1-9]\d*\/1000000/); // the bar is up and moving
    t.child.stdin.write('\x03');
    expect(await t.exited, t.output()).toBe(130);
    const shown = t.output();
    const after = shown.slice(shown.lastIndexOf('\x1b[?25l'));
    expect(after).toContain('\x1b[?25h'); // cursor shown again
    expect(after).toContain('\x1b[?7h'); // line wrapping back on
    const m = /frugal: stopped at step (\d+); continue with --resume/.exec(shown);
    expect(m, shown).not.toBeNull();
    expect(trainerState(out).step).toBe(Number(m![1]));
    expect(readdirSync(d)).toEqual(['tty']);
  });

  it('during a GGUF conversion removes the partial file', async () => {
    const d = caseDir();
    const big = join(d, 'big'); // a large embedding, so that the conversion takes a moment
    const json = { model_type: 'mamba', hidden_size: 64, num_hidden_layers: 1, vocab_size: 262144, state_size: 4, use_bias: false };
    const { config } = mambaConfigFromJson(json, 'config.json');
    mkdirSync(big);
    writeFileSync(join(big, 'config.json'), JSON.stringify(json));
    writeFileSync(
      join(big, 'model.safetensors'),
      encodeSafetensors(
        mambaParamSpecs(config).map((s) => ({
          name: s.name,
          dtype: 'F32' as const,
          shape: [...s.shape],
          data: new Float32Array(s.shape.reduce((x, y) => x * y, 1)),
        })),
      ),
    );
    let stopped = 0;
    for (let attempt = 0; attempt < 3 && stopped === 0; attempt++) {
      const c = start(process.execPath, [
        'bin/frugal.js',
        'convert',
        '--model',
        big,
        '--to',
        'gguf',
        '--dtype',
        'q8_0',
        '--out',
        join(d, 'm.gguf'),
        '--force',
      ]);
      const seen = () => readdirSync(d).some((f) => f.startsWith('m.gguf.tmp-'));
      await new Promise<void>((resolve) => {
        const poll = () => (seen() || c.child.exitCode !== null ? resolve() : setTimeout(poll, 2));
        poll();
      });
      c.child.kill('SIGINT');
      const code = await c.exited;
      if (code === 0) continue; // finished before the signal: try again
      expect(code, c.output()).toBe(130);
      expect(c.output()).toMatch(/frugal: stopped; partial files removed\n$/);
      expect(readdirSync(d)).toEqual(['big']);
      stopped++;
    }
    expect(stopped, 'a conversion was interrupted').toBe(1);
  });
});

describe('pipes and full disks', () => {
  it('generate | head -c 10 stops at once with exit 0 and no stack trace', () => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `'${process.execPath}' bin/frugal.js generate --model '${base}' --max-tokens 100000000 | head -c 10; ` +
          // biome-ignore lint/suspicious/noTemplateCurlyInString: bash expands it, not JavaScript
          'echo "status=${PIPESTATUS[0]}" >&2',
      ],
      { timeout: 60_000 },
    );
    expect(r.error, 'it kept generating after the reader left').toBeUndefined();
    expect(r.stdout.length).toBe(10);
    const stderr = r.stderr.toString();
    expect(stderr).toBe('status=0\n');
  });

  it('a full disk: exit 1 with one line, the previous checkpoint intact', () => {
    const d = caseDir();
    const disk = join(d, 'disk');
    mkdirSync(disk);
    const pages = readdirSync(base).reduce((s, f) => s + Math.ceil(statSync(join(base, f)).size / 4096), 0);
    if (process.getuid?.() !== 0) {
      console.warn('full-disk test not run: mounting a small tmpfs needs root');
      return;
    }
    // room for one checkpoint and a lock file, not for the second copy a save builds
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${(pages + 4) * 4096}`, 'tmpfs', disk], { encoding: 'utf8' });
    if (m.status !== 0) {
      console.warn(`full-disk test not run: mounting a tmpfs failed (${m.stderr.trim()})`);
      return;
    }
    try {
      const ckpt = join(disk, 'ckpt');
      cpSync(base, ckpt, { recursive: true });
      const before = snapshot(disk);
      const r = frugal(['train', '--out', ckpt, '--resume']); // a finished run: saves again
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.match(/^frugal: /gm), r.stderr).toHaveLength(1);
      expect(r.lines.at(-1)).toMatch(/^frugal: Cannot write .*ckpt: the disk is full; free some space \(ENOSPC\)/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(snapshot(disk)).toEqual(before);
      const free = statfsSync(disk);
      writeFileSync(join(disk, 'filler'), Buffer.alloc(Number(free.bavail) * Number(free.bsize)));
      const fd = openSync(join(disk, 'out.txt'), 'w');
      try {
        const g = spawnSync(process.execPath, ['bin/frugal.js', 'generate', '--model', base, '--max-tokens', '500'], {
          stdio: ['ignore', fd, 'pipe'],
          encoding: 'utf8',
        });
        expect(g.status, g.stderr).toBe(1);
        expect(g.stderr).toBe('frugal: cannot write the output to stdout: the disk is full (ENOSPC)\n');
      } finally {
        closeSync(fd);
      }
    } finally {
      spawnSync('umount', [disk]);
    }
  });
});
