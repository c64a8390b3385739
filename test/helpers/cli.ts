import { afterAll, beforeAll, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** The CLI as a user runs it (the built package, bin/frugal.js). */
export function frugal(args: readonly string[], options: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', timeout: 120_000, ...options });
  const stderr = String(r.stderr ?? '');
  return { code: r.status, stdout: String(r.stdout ?? ''), stderr, lines: stderr.trim().split('\n') };
}

/** A clear one-line error: the exit code, one line on stderr matching `mention`, no stack trace, nothing on stdout. */
export function expectOneLineError(r: CliResult, code: number, mention: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.lines.length, `one line: ${r.stderr}`).toBe(1);
  expect(r.stderr).toMatch(mention);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

/** A tiny model that trains in well under a second. */
export const TINY = [
  '--d-model',
  '16',
  '--layers',
  '1',
  '--d-state',
  '4',
  '--seq-len',
  '16',
  '--batch',
  '2',
  '--eval-windows',
  '2',
  '--threads',
  '1',
];

/** Above any pid_max, so certainly not a running process. */
export const DEAD_PID = 99_999_999;

/**
 * A test file's temporary folder (removed after its tests) with a small corpus and one tiny trained
 * checkpoint, `base`, made once and copied by the cases that need one; `caseDir` gives each case
 * a fresh subfolder.
 */
export function workspace(prefix: string): { root: string; corpus: string; base: string; caseDir: () => string } {
  const root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const corpus = join(root, 'corpus.txt');
  const base = join(root, 'base');
  beforeAll(() => {
    writeFileSync(corpus, 'The quick brown fox jumps over the lazy dog; the Congress shall make no law. '.repeat(60));
    const r = frugal(['train', ...TINY, '--steps', '3', '--data', corpus, '--out', base]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  const caseDir = () => {
    const d = join(root, `case${n++}`);
    mkdirSync(d);
    return d;
  };
  return { root, corpus, base, caseDir };
}

/**
 * Everything under `root`: each file's SHA-256, each link's target, each folder, by relative path
 * (hidden files included), to compare the disk before and after a command.
 */
export function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) out[r] = `link -> ${readlinkSync(join(root, r))}`;
      else if (st.isDirectory()) {
        out[r] = 'folder';
        walk(r);
      } else
        out[r] = createHash('sha256')
          .update(readFileSync(join(root, r)))
          .digest('hex');
    }
  };
  walk('');
  return out;
}
