/**
 * Every path a command writes is checked before any work starts, so that a run never trains for
 * an hour and then fails to save, and never replaces what the user did not ask it to replace:
 *
 * - the path is normalised (trailing slashes, `.`) and symbolic links are followed, so writes go
 *   through a link to its target instead of replacing the link;
 * - the folders above it exist or can be created, and the nearest existing one is writable;
 * - a folder is not given where a file is meant, nor the reverse;
 * - it is not an input, inside an input, nor (for folders) holding one;
 * - an existing output folder must be a frugal checkpoint, replaced only with --resume (training)
 *   or --force; an existing output file only with --force (an --energy-log is appended to).
 *
 * `openOutputDir` then takes the folder's lock and finishes any interrupted save (io/atomic.ts).
 */
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { inputError } from './errors.js';
import { isFrugalDir, recoverDir } from './atomic.js';
import { acquireLock } from './lock.js';

export interface OutputCheck {
  /** The flag the path came from, for messages: '--out', '--energy-log', '--svg'. */
  flag: string;
  /** Paths the command reads (files or folders; missing or null ones are skipped). */
  inputs?: readonly (string | null | undefined)[];
  force?: boolean;
  /** Training's --resume: an existing checkpoint is the run to continue (undefined: the command has no --resume). */
  resume?: boolean;
}

/**
 * The path a write really lands on: absolute, normalised, every symbolic link followed (a
 * dangling link gives its target), missing folders at the end kept as they are.
 */
export function realOutputPath(p: string, flag: string): string {
  let abs = resolve(p);
  for (let hops = 0; ; hops++) {
    let link = false;
    try {
      link = lstatSync(abs).isSymbolicLink();
    } catch {
      break;
    }
    if (!link) return realpathSync(abs);
    if (hops === 40) throw inputError(`${flag} ${p}: too many levels of symbolic links`);
    abs = resolve(dirname(abs), readlinkSync(abs));
  }
  const rest: string[] = [];
  let base = abs;
  while (!existsSync(base) && dirname(base) !== base) {
    rest.unshift(basename(base));
    base = dirname(base);
  }
  return join(realpathSync(base), ...rest);
}

/** Whether `a` lies strictly inside folder `b`. */
function isInside(a: string, b: string): boolean {
  const r = relative(b, a);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
}

function checkNotInput(path: string, p: string, c: OutputCheck, folder: boolean): void {
  for (const input of c.inputs ?? []) {
    if (!input || !existsSync(input)) continue;
    const real = realpathSync(input);
    const what = `${c.flag} ${p}`;
    if (real === path)
      throw inputError(`${what} is the input ${input}: writing it would destroy what is being read; choose another ${c.flag}`);
    if (isInside(path, real)) throw inputError(`${what} is inside the input ${input}; choose a ${c.flag} outside it`);
    if (folder && isInside(real, path)) throw inputError(`${what} holds the input ${input}; choose a ${c.flag} that does not`);
  }
}

/** The folders above `path` exist (or can be created below the nearest one that does) and are writable. */
function checkFolders(path: string, p: string, flag: string): void {
  let base = dirname(path);
  while (!existsSync(base)) base = dirname(base);
  if (!statSync(base).isDirectory()) throw inputError(`${flag} ${p}: ${base} is a file, not a folder`);
  try {
    accessSync(base, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? 'the file system is read-only' : 'permission denied';
    throw inputError(`${flag} ${p}: cannot write in ${base} (${why}); choose a folder you can write to`);
  }
}

export type DirState = 'new' | 'checkpoint';

/**
 * Check an output folder (pure: writes nothing). Returns its real path and whether it holds a
 * checkpoint (an existing empty folder counts as new).
 */
export function checkOutputDir(p: string, c: OutputCheck): { path: string; state: DirState } {
  const path = realOutputPath(p, c.flag);
  checkNotInput(path, p, c, true);
  checkFolders(path, p, c.flag);
  if (!existsSync(path)) return { path, state: 'new' };
  const st = statSync(path);
  if (!st.isDirectory())
    throw inputError(`${c.flag} ${p} is a file, not a folder; ${c.flag} names the folder to write the checkpoint into`);
  if (st.dev !== statSync(dirname(path)).dev) {
    throw inputError(
      `${c.flag} ${p} is a mount point, which frugal cannot replace atomically; use a folder inside it, e.g. ${join(p, 'run')}`,
    );
  }
  const entries = readdirSync(path);
  if (entries.length === 0) return { path, state: 'new' };
  if (!isFrugalDir(path)) {
    const some = entries.slice(0, 3).join(', ') + (entries.length > 3 ? ', …' : '');
    throw inputError(
      `${c.flag} ${p} already exists and is not a frugal checkpoint (it holds ${some}); frugal will not replace it: ` +
        `choose a new folder, e.g. ${join(p, 'run')}`,
    );
  }
  if (!c.force && !c.resume) {
    throw inputError(
      `${c.flag} ${p} already holds a frugal checkpoint; ${c.resume === false ? 'pass --resume to continue its run, or ' : ''}` +
        'pass --force to replace it',
    );
  }
  return { path, state: 'checkpoint' };
}

/**
 * Check an output file (pure). `append`: the file is added to (an existing one is fine);
 * otherwise an existing file is replaced only with --force.
 */
export function checkOutputFile(p: string, c: OutputCheck & { append?: boolean }): string {
  const path = realOutputPath(p, c.flag);
  checkNotInput(path, p, c, false);
  checkFolders(path, p, c.flag);
  if (!existsSync(path)) return path;
  const st = statSync(path);
  if (st.isDirectory()) throw inputError(`${c.flag} ${p} is a folder; ${c.flag} names a file to write`);
  if (!st.isFile()) throw inputError(`${c.flag} ${p} is not a regular file; name a file to write`);
  if (c.append) {
    try {
      accessSync(path, constants.W_OK);
    } catch {
      throw inputError(`${c.flag} ${p} is not writable; choose a file you can write to`);
    }
    return path;
  }
  if (!c.force) throw inputError(`${c.flag} ${p} already exists; pass --force to replace it, or choose another name`);
  return path;
}

export interface OutputDir {
  path: string;
  state: DirState;
  release(): void;
}

/**
 * Check an output folder, create the folders above it, take its lock and finish an interrupted
 * save (then check again: a recovered save is a checkpoint). `release` frees the lock.
 */
export function openOutputDir(p: string, c: OutputCheck, warn: (m: string) => void): OutputDir {
  const first = checkOutputDir(p, c);
  try {
    mkdirSync(dirname(first.path), { recursive: true });
  } catch (e) {
    throw inputError(`${c.flag} ${p}: cannot create the folder ${dirname(first.path)} (${(e as NodeJS.ErrnoException).code})`);
  }
  const lock = acquireLock(first.path, warn);
  try {
    recoverDir(first.path);
    return { ...checkOutputDir(p, c), release: lock.release };
  } catch (e) {
    lock.release();
    throw e;
  }
}
