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
 * `frugal train --resume` killed with SIGKILL 20 times at random moments (most of each step's time
 * goes to saving, since it saves every step) must always find an intact checkpoint, and the
 * finished run must reproduce an uninterrupted run's losses bit for bit.
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
const STEPS = 2500;

function runCli(
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
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = killAfterMs === null ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe('kill -9 during checkpoint saves', () => {
  it('always resumes from an intact checkpoint and reproduces the uninterrupted losses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-kill-'));
    try {
      const out = join(dir, 'run');
      const rng = Rng.fromSeed(2024);
      let kills = 0,
        lastStep = 0;
      for (let i = 0; i < 20; i++) {
        const r = await runCli(out, 350 + rng.int(900));
        if (r.signal === 'SIGKILL') kills++;
        else expect(r.code, r.stderr).toBe(0);
        recoverDir(out);
        // on a loaded machine a run can be killed before its first save: nothing to check yet
        if (!existsSync(out)) {
          expect(lastStep, 'a saved checkpoint never disappears').toBe(0);
          continue;
        }
        expect(isCompleteDir(out)).toBe(true);
        const st = readTrainerState(out);
        expect(st.losses.length).toBe(st.step);
        expect(st.step).toBeGreaterThanOrEqual(lastStep);
        lastStep = st.step;
      }
      expect(kills).toBeGreaterThanOrEqual(15);
      // the rest without a save per step (saving changes no number of the run, so resume accepts it)
      const done = await runCli(out, null, ['--save-every', '0']);
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
