import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/io/rng.js';
import { train } from '../../src/train/trainer.js';
import { readTrainerState } from '../../src/train/checkpoint.js';
import { isCompleteDir, recoverDir } from '../../src/io/atomic.js';
import { trainOptions } from '../helpers/train.js';

/**
 * `frugal train --resume` is killed with SIGKILL until at least MIN_LANDED kills have landed while
 * a save was in flight (at most MAX_ATTEMPTS tries). A kill counts as landed when, once the process
 * is dead, a `run.tmp-*` or `run.old*` directory is left beside the checkpoint: only a save cut off
 * mid-way leaves one. After every kill the checkpoint must recover intact, and the finished run
 * must reproduce an uninterrupted run's losses bit for bit.
 */
const ARGS = [
  '--d-model',
  '32',
  '--layers',
  '2',
  '--d-state',
  '8',
  '--seq-len',
  '32',
  '--batch',
  '4',
  '--lr',
  '0.003',
  '--warmup',
  '5',
  '--min-lr',
  '0.0003',
  '--seed',
  '1',
  '--eval-windows',
  '8',
  '--save-every',
  '1',
  '--threads',
  '1',
];
const STEPS = 600;
const MIN_LANDED = 15,
  MAX_ATTEMPTS = 100;

/** Temporary or old copies beside `run`: the traces of a save in flight. */
function saveTraces(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('run.tmp-') || f === 'run.old' || f.startsWith('run.old-'));
}

/**
 * Run the CLI; with `killAfterMs`, wait for its first save, then that long, then send SIGKILL as
 * soon as a save's temporary or old directory is there (or after 3 s of watching, whatever it is
 * doing). Waiting from the first save, not from the start, keeps each run's progress short, so
 * the run does not finish before enough kills have landed, whatever the machine's speed.
 */
function runCli(
  dir: string,
  out: string,
  killAfterMs: number | null,
  extra: string[] = [],
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['bin/frugal.js', 'train', ...ARGS, '--steps', String(STEPS), '--out', out, '--resume', ...extra],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '',
      done = false;
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const killAtSave = (until: number) => {
      if (done) return;
      if (saveTraces(dir).length > 0 || performance.now() > until) child.kill('SIGKILL');
      else setImmediate(() => killAtSave(until));
    };
    const firstSave = (until: number) => {
      if (done || killAfterMs === null) return;
      if (saveTraces(dir).length > 0 || performance.now() > until) setTimeout(() => killAtSave(performance.now() + 3000), killAfterMs);
      else setImmediate(() => firstSave(until));
    };
    firstSave(performance.now() + 30_000);
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal, stderr });
    });
  });
}

describe('kill -9 during checkpoint saves', () => {
  it(`recovers after ${MIN_LANDED} kills inside saves and reproduces the uninterrupted losses`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-kill-'));
    try {
      const out = join(dir, 'run');
      const rng = Rng.fromSeed(2024);
      let landed = 0,
        attempts = 0,
        lastStep = 0;
      while (landed < MIN_LANDED && attempts < MAX_ATTEMPTS) {
        attempts++;
        const r = await runCli(dir, out, rng.int(100));
        expect(r.signal, `attempt ${attempts}: the run finished before ${MIN_LANDED} kills landed (${landed} did)`).toBe('SIGKILL');
        if (saveTraces(dir).length > 0) landed++; // the process is dead: these are its unfinished save
        recoverDir(out);
        // on a loaded machine a run can be killed before its first save: nothing to check yet
        if (!existsSync(out)) {
          expect(lastStep, 'a saved checkpoint never disappears').toBe(0);
          continue;
        }
        expect(isCompleteDir(out)).toBe(true);
        expect(saveTraces(dir), 'recovery leaves no temporary or old copy').toEqual([]);
        const st = readTrainerState(out);
        expect(st.losses.length).toBe(st.step);
        expect(st.step).toBeGreaterThanOrEqual(lastStep);
        lastStep = st.step;
      }
      expect(landed, `${landed} of ${attempts} kills landed during a save`).toBeGreaterThanOrEqual(MIN_LANDED);
      // the rest without a save per step (saving changes no number of the run, so resume accepts it)
      const done = await runCli(dir, out, null, ['--save-every', '0']);
      expect(done.code, done.stderr).toBe(0);
      const resumed = readTrainerState(out).losses;
      const full = train(trainOptions({ out: join(dir, 'full'), steps: STEPS, saveEvery: 0 })).state.losses;
      expect(resumed.length).toBe(STEPS);
      expect(resumed).toEqual(full);
      expect(
        readdirSync(dir).filter((f) => f.startsWith('run.')),
        'no temporary directories or lock left',
      ).toEqual([]);
      expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
