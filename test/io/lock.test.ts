import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../src/io/lock.js';
import { FrugalError } from '../../src/io/errors.js';

const root = mkdtempSync(join(tmpdir(), 'frugal-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const DEAD_PID = 99_999_999; // above any pid_max, so certainly not running

function refusal(f: () => unknown): FrugalError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FrugalError);
    return e as FrugalError;
  }
  throw new Error('expected a refusal');
}

describe('the lock of a checkpoint folder', () => {
  it("is exclusive: a second writer is refused (exit 2) with the holder's pid and host", () => {
    const dir = join(root, 'a');
    const warnings: string[] = [];
    const lock = acquireLock(dir, (m) => warnings.push(m));
    const held = JSON.parse(readFileSync(`${dir}.lock`, 'utf8')) as { pid: number; host: string };
    expect(held).toMatchObject({ pid: process.pid, host: hostname() });
    const e = refusal(() => acquireLock(dir, () => {}));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(`pid ${process.pid} on ${hostname()}`);
    lock.release();
    expect(existsSync(`${dir}.lock`)).toBe(false);
    acquireLock(dir, () => {}).release();
    expect(warnings).toEqual([]);
  });

  it('takes over a stale lock (its process is gone) with a warning', () => {
    const dir = join(root, 'b');
    writeFileSync(
      `${dir}.lock`,
      JSON.stringify({ pid: DEAD_PID, host: hostname(), started: '2020-01-01T00:00:00Z', command: 'train', procStart: null }),
    );
    const warnings: string[] = [];
    const lock = acquireLock(dir, (m) => warnings.push(m));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`stale lock .*pid ${DEAD_PID}`));
    expect(JSON.parse(readFileSync(`${dir}.lock`, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it("treats a lock of another host as held, and a file that is not a lock as someone else's", () => {
    const dir = join(root, 'c');
    writeFileSync(`${dir}.lock`, JSON.stringify({ pid: DEAD_PID, host: 'elsewhere', started: '', command: '', procStart: null }));
    expect(refusal(() => acquireLock(dir, () => {})).message).toMatch(/pid 99999999 on elsewhere.*delete .*c\.lock/);
    writeFileSync(`${dir}.lock`, 'my shopping list');
    expect(refusal(() => acquireLock(dir, () => {})).message).toMatch(/not a frugal lock file/);
    expect(readFileSync(`${dir}.lock`, 'utf8')).toBe('my shopping list');
  });
});
