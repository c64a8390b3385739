import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  COMPLETE_MARKER,
  OWNER_MARKER,
  isCompleteDir,
  readableDir,
  recoverDir,
  writeDirAtomic,
  writeFileAtomic,
} from '../../src/io/atomic.js';
import { FrugalError } from '../../src/io/errors.js';
import { Rng } from '../../src/io/rng.js';

const DEAD_PID = 99_999_999; // above any pid_max, so certainly not running

let root = '';
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'frugal-atomic-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A fresh checkpoint path per test, in its own parent folder so sibling listings are exact. */
function freshDir(): string {
  const parent = join(root, `case${n++}`);
  mkdirSync(parent);
  return join(parent, 'ckpt');
}

/** A folder as frugal leaves it: sealed with `.complete`, or (partial) still carrying `.frugal`. */
function makeCheckpoint(path: string, gen: number, complete = true): void {
  mkdirSync(path);
  writeFileSync(join(path, 'a.txt'), `gen=${gen}`);
  writeFileSync(join(path, 'b.txt'), `gen=${gen}`);
  writeFileSync(join(path, complete ? COMPLETE_MARKER : OWNER_MARKER), 'x');
}

/** A user's folder that merely looks like frugal's (no marker inside). */
function makeForeign(path: string): void {
  mkdirSync(path);
  writeFileSync(join(path, 'thesis.txt'), 'mine');
}

function genOf(path: string): number {
  const a = readFileSync(join(path, 'a.txt'), 'utf8');
  expect(readFileSync(join(path, 'b.txt'), 'utf8')).toBe(a);
  return Number(a.slice(4));
}

function siblings(dir: string): string[] {
  return readdirSync(join(dir, '..')).sort();
}

describe('writeFileAtomic', () => {
  it('writes and replaces a file, leaving no temp files', () => {
    const p = join(root, 'file.bin');
    writeFileAtomic(p, 'first version');
    expect(readFileSync(p, 'utf8')).toBe('first version');
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    expect(Array.from(readFileSync(p))).toEqual([1, 2, 3]);
    expect(readdirSync(root).filter((f) => f.startsWith('file.bin'))).toEqual(['file.bin']);
  });

  it('reports a write failure as a runtime error (exit 1) naming the path (paths are checked before any work)', () => {
    const p = join(root, 'no-such-folder', 'x.bin');
    let err: unknown;
    try {
      writeFileAtomic(p, 'x');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrugalError);
    expect((err as FrugalError).exitCode).toBe(1);
    expect((err as FrugalError).message).toContain(p);
  });
});

describe('writeDirAtomic', () => {
  it('creates, then replaces the whole directory (stale files go away)', () => {
    const dir = freshDir();
    writeDirAtomic(dir, { 'a.txt': 'one', 'extra.bin': new Uint8Array([9]) });
    expect(isCompleteDir(dir)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([COMPLETE_MARKER, 'a.txt', 'extra.bin']);
    writeDirAtomic(dir, { 'a.txt': 'two' });
    expect(readdirSync(dir).sort()).toEqual([COMPLETE_MARKER, 'a.txt']);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('two');
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('creates missing parent folders', () => {
    const dir = join(freshDir(), 'deep', 'er');
    writeDirAtomic(dir, { 'a.txt': 'x' });
    expect(isCompleteDir(dir)).toBe(true);
  });

  it('replaces a stale .old and removes temp folders of dead writers', () => {
    const dir = freshDir();
    makeCheckpoint(dir, 1);
    makeCheckpoint(`${dir}.old`, 0);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-abcd`, 5, false);
    writeDirAtomic(dir, { 'a.txt': 'gen=2', 'b.txt': 'gen=2' });
    expect(genOf(dir)).toBe(2);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('carries files the user put inside the checkpoint into each new version', () => {
    const dir = freshDir();
    writeDirAtomic(dir, { 'a.txt': 'one', 'extra.bin': 'x' });
    writeFileSync(join(dir, 'notes.txt'), 'my notes');
    mkdirSync(join(dir, 'plots'));
    writeFileSync(join(dir, 'plots', 'loss.csv'), '1,2');
    writeDirAtomic(dir, { 'a.txt': 'two' });
    expect(readdirSync(dir).sort()).toEqual([COMPLETE_MARKER, 'a.txt', 'notes.txt', 'plots']);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('my notes');
    expect(readFileSync(join(dir, 'plots', 'loss.csv'), 'utf8')).toBe('1,2');
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('never replaces or moves a folder it did not write, nor look-alikes beside it', () => {
    const dir = freshDir();
    makeForeign(dir);
    makeForeign(`${dir}.old`);
    makeForeign(`${dir}.tmp-${DEAD_PID}-abcd`);
    let err: unknown;
    try {
      writeDirAtomic(dir, { 'a.txt': 'x' });
    } catch (e) {
      err = e;
    }
    expect((err as FrugalError).exitCode).toBe(2);
    const other = join(dir, '..', 'other');
    writeDirAtomic(other, { 'a.txt': 'x' });
    rmSync(dir, { recursive: true });
    writeDirAtomic(dir, { 'a.txt': 'x' });
    for (const p of [`${dir}.old`, `${dir}.tmp-${DEAD_PID}-abcd`]) expect(readFileSync(join(p, 'thesis.txt'), 'utf8')).toBe('mine');
    expect(siblings(dir)).toEqual(['ckpt', 'ckpt.old', `ckpt.tmp-${DEAD_PID}-abcd`, 'other']);
  });

  it('rejects file names that would escape the folder or fake the markers', () => {
    const dir = freshDir();
    for (const bad of ['', '.', '..', '../x', 'a/b', 'a\\b', COMPLETE_MARKER, OWNER_MARKER]) {
      let err: unknown;
      try {
        writeDirAtomic(dir, { [bad]: 'x' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FrugalError);
      expect((err as FrugalError).message).toContain(dir);
    }
    expect(existsSync(dir)).toBe(false);
    expect(siblings(dir)).toEqual([]);
  });
});

describe('isCompleteDir', () => {
  it('needs a directory with the marker', () => {
    const dir = freshDir();
    expect(isCompleteDir(dir)).toBe(false);
    makeCheckpoint(dir, 0, false);
    expect(isCompleteDir(dir)).toBe(false);
    writeFileSync(join(dir, COMPLETE_MARKER), '');
    expect(isCompleteDir(dir)).toBe(true);
    expect(isCompleteDir(join(dir, 'a.txt'))).toBe(false);
  });
});

describe('recoverDir after a kill at each step of the protocol', () => {
  let dir = '';
  beforeEach(() => {
    dir = freshDir();
  });

  it('killed while writing the temp folder: keeps dir, deletes the partial temp', () => {
    makeCheckpoint(dir, 1);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0001`, 2, false);
    recoverDir(dir);
    expect(genOf(dir)).toBe(1);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('killed after sealing the temp, before the swap: keeps the complete dir', () => {
    makeCheckpoint(dir, 1);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0002`, 2);
    recoverDir(dir);
    expect(genOf(dir)).toBe(1);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('killed between the two renames: promotes the complete temp, drops .old', () => {
    makeCheckpoint(`${dir}.old`, 1);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0003`, 2);
    recoverDir(dir);
    expect(genOf(dir)).toBe(2);
    expect(isCompleteDir(dir)).toBe(true);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('picks the newest of several complete temps', async () => {
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-ffff`, 2);
    await new Promise((r) => setTimeout(r, 20));
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0000`, 3);
    recoverDir(dir);
    expect(genOf(dir)).toBe(3);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('killed before the swap with only a partial temp: renames .old back', () => {
    makeCheckpoint(`${dir}.old`, 1);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0004`, 2, false);
    recoverDir(dir);
    expect(genOf(dir)).toBe(1);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('killed while deleting .old: finishes the deletion', () => {
    makeCheckpoint(dir, 2);
    makeCheckpoint(`${dir}.old`, 1, false); // marker already removed by a partial rm
    recoverDir(dir);
    expect(genOf(dir)).toBe(2);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it('killed between the two renames of this version (old copy named by pid): promotes the temp', () => {
    makeCheckpoint(`${dir}.old-${DEAD_PID}-0a0a`, 1);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0b0b`, 2);
    recoverDir(dir);
    expect(genOf(dir)).toBe(2);
    expect(siblings(dir)).toEqual(['ckpt']);
  });

  it("leaves a user's folder and everything beside it alone, even a complete copy", () => {
    makeForeign(dir);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0005`, 4);
    recoverDir(dir);
    expect(readFileSync(join(dir, 'thesis.txt'), 'utf8')).toBe('mine');
    expect(siblings(dir)).toEqual(['ckpt', `ckpt.tmp-${DEAD_PID}-0005`]);
  });

  it("never deletes look-alike folders without frugal's marker", () => {
    makeCheckpoint(dir, 1);
    makeForeign(`${dir}.old`);
    makeForeign(`${dir}.tmp-${DEAD_PID}-0009`);
    recoverDir(dir);
    expect(siblings(dir)).toEqual(['ckpt', 'ckpt.old', `ckpt.tmp-${DEAD_PID}-0009`]);
  });

  it('does not touch a temp folder of a writer that is still running', () => {
    makeCheckpoint(dir, 1);
    const live = `${dir}.tmp-${process.ppid}-0006`;
    makeCheckpoint(live, 2, false);
    recoverDir(dir);
    expect(existsSync(live)).toBe(true);
  });

  it("with nothing complete, removes frugal's partial leftovers and leaves dir missing", () => {
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-0007`, 2, false);
    makeCheckpoint(`${dir}.old`, 1, false);
    recoverDir(dir);
    expect(siblings(dir)).toEqual([]);
    recoverDir(join(root, 'never-written'));
    expect(existsSync(join(root, 'never-written'))).toBe(false);
  });
});

describe('readableDir (readers never write)', () => {
  it('reads the sealed copy an interrupted save left when dir is missing, moving nothing', () => {
    const dir = freshDir();
    makeCheckpoint(`${dir}.old-${DEAD_PID}-00aa`, 1);
    makeCheckpoint(`${dir}.tmp-${DEAD_PID}-00bb`, 2);
    const r = readableDir(dir);
    expect(r.dir).toBe(`${dir}.tmp-${DEAD_PID}-00bb`);
    expect(r.warnings.join('\n')).toMatch(/interrupted save/);
    expect(siblings(dir)).toEqual([`ckpt.old-${DEAD_PID}-00aa`, `ckpt.tmp-${DEAD_PID}-00bb`]);
  });

  it("reads dir itself, warning about frugal's leftovers and ignoring a user's look-alike", () => {
    const dir = freshDir();
    makeForeign(dir);
    makeForeign(`${dir}.old`);
    makeCheckpoint(`${dir}.old-${DEAD_PID}-00cc`, 1);
    const r = readableDir(dir);
    expect(r.dir).toBe(dir);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(`ckpt.old-${DEAD_PID}-00cc`);
    expect(siblings(dir)).toEqual(['ckpt', 'ckpt.old', `ckpt.old-${DEAD_PID}-00cc`]);
  });
});

/**
 * The child process cannot import TypeScript, so compile the two modules it needs into a temp
 * folder. Transpiling just these files (rather than relying on `dist/`, which `npm test` gets
 * from `prepare`) keeps the test independent of stale builds and of the rest of the project.
 */
function compileAtomicForChild(outDir: string): string {
  const srcDir = fileURLToPath(new URL('../../src/io/', import.meta.url));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}');
  for (const name of ['atomic', 'errors']) {
    const out = ts.transpileModule(readFileSync(join(srcDir, `${name}.ts`), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(outDir, `${name}.js`), out.outputText);
  }
  return join(outDir, 'atomic.js');
}

describe('checkpoints survive SIGKILL at random moments', () => {
  const FILES = ['config.json', 'optimizer.bin', 'state.json', 'weights.bin'];
  const child = fileURLToPath(new URL('./atomic-child.mjs', import.meta.url));

  /** All files present and every one carrying the same generation, start and end. */
  function checkGeneration(dir: string): number {
    expect(readdirSync(dir).sort()).toEqual([COMPLETE_MARKER, ...FILES]);
    const gens = FILES.map((f) => {
      const m = /^gen=(\d+)\n[a-z]+\nend=(\d+)\n$/.exec(readFileSync(join(dir, f), 'utf8'));
      expect(m, `${f} is torn`).not.toBeNull();
      expect(m![2]).toBe(m![1]);
      return Number(m![1]);
    });
    expect(new Set(gens).size).toBe(1);
    return gens[0]!;
  }

  it('always recovers one complete generation', async () => {
    const modPath = compileAtomicForChild(join(root, 'compiled'));
    const dir = freshDir();
    const rng = Rng.fromSeed(20240607);
    let lastGen = -1;
    for (let round = 0; round < 10; round++) {
      const proc = spawn(process.execPath, [child, modPath, dir, String(lastGen + 1)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '',
        stderr = '';
      proc.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const ready = new Promise<void>((res) =>
        proc.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes('ready')) res();
        }),
      );
      const exited = new Promise<NodeJS.Signals | null>((res) => proc.on('exit', (_code, signal) => res(signal)));
      // The first round must produce a checkpoint to recover; later rounds may be killed at any
      // point, even before the child's first write.
      if (round === 0) await Promise.race([ready, exited]);
      await new Promise((r) => setTimeout(r, 10 + rng.int(250)));
      proc.kill('SIGKILL');
      const signal = await exited;
      expect(signal, `child died on its own: ${stderr}`).toBe('SIGKILL');
      recoverDir(dir);
      const gen = checkGeneration(dir);
      expect(gen).toBeGreaterThanOrEqual(lastGen);
      expect(siblings(dir)).toEqual(['ckpt']);
      lastGen = gen;
    }
    expect(lastGen).toBeGreaterThan(0);
  }, 20_000);
});
