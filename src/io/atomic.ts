/**
 * Crash-safe writes of single files and whole checkpoint directories.
 *
 * Training runs for hours and can be killed at any instant (Ctrl-C twice, OOM killer, laptop
 * lid). A checkpoint that is half old and half new is worse than none: it loads without error
 * and silently trains garbage. So nothing is ever written in place. Files go to a temporary name
 * and are renamed over the target (rename is atomic within one file system); directories are
 * built completely beside the target, sealed with a `.complete` marker, and swapped in with two
 * renames. `recoverDir` finishes or undoes a swap that a kill interrupted.
 *
 * Every write is fsynced before the rename that publishes it, and the folder is fsynced after,
 * so that a power cut cannot reorder "rename done" before "data on disk".
 *
 * Checkpoint directories are single-writer: run `recoverDir` before reading, not while another
 * process is writing the same checkpoint.
 */
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync,
  statSync, unlinkSync, writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { inputError } from './errors.js';

/** Name of the marker written last into a checkpoint directory: present means complete. */
export const COMPLETE_MARKER = '.complete';

function tempSuffix(): string {
  return `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Writes a file's content piece by piece through `write`, for files too large to build in memory
 * (checkpoints of hundreds of megabytes streamed from the model's weights or from another file).
 */
export type FileProducer = (write: (chunk: Uint8Array) => void) => void;

/** What a file may be given as: bytes, text (UTF-8), or a producer. */
export type FileData = Uint8Array | string | FileProducer;

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Write all of `data` to `path` and fsync it, so a later rename publishes durable bytes. */
function writeAndSync(path: string, data: FileData): void {
  const fd = openSync(path, 'w');
  try {
    if (typeof data === 'function') data((chunk) => writeAll(fd, chunk));
    else writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * fsync a directory so that renames and creations inside it survive a power cut.
 * Some platforms (Windows) cannot open or fsync a directory; there the rename itself is all
 * the durability available, so those specific refusals are ignored.
 */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (e) {
    if (isIgnorableDirSyncError(e)) return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    if (!isIgnorableDirSyncError(e)) throw e;
  } finally {
    closeSync(fd);
  }
}

function isIgnorableDirSyncError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'EBADF' || code === 'EACCES';
}

/**
 * Replace `path` with `data` atomically: readers see either the old file or the new one, never
 * a truncated mix. The parent folder must exist.
 */
export function writeFileAtomic(path: string, data: FileData): void {
  const tmp = path + tempSuffix();
  try {
    writeAndSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* already gone or never made */ }
    throw wrapFsError(e, path);
  }
  fsyncDir(dirname(path));
}

/** True if `dir` is a directory holding the `.complete` marker written last by `writeDirAtomic`. */
export function isCompleteDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && statSync(join(dir, COMPLETE_MARKER)).isFile();
  } catch {
    return false;
  }
}

/** Reject names that would escape the checkpoint folder or clash with the marker. */
function checkFileName(dir: string, name: string): void {
  if (name === '' || name === '.' || name === '..' || name === COMPLETE_MARKER
    || /[/\\\0]/.test(name)) {
    throw inputError(
      `Cannot write checkpoint ${dir}: file name ${JSON.stringify(name)} is not allowed. ` +
      `Use a plain file name (no slashes, not "." or "..", not "${COMPLETE_MARKER}").`);
  }
}

/**
 * Write a whole directory of files so that `dir` always holds one complete set.
 *
 * Protocol: build everything in a fresh sibling `${dir}.tmp-${pid}-${random}`, fsync each file,
 * write `.complete` last, fsync the temp folder; then move the current `dir` (if any) to
 * `${dir}.old`, rename the temp folder to `dir`, fsync the parent, delete `${dir}.old`.
 * Whatever instant a kill lands on, one complete copy exists under `dir`, a `.tmp-*` or `.old`
 * name, and `recoverDir` finds it.
 */
export function writeDirAtomic(dir: string, files: Record<string, FileData>): void {
  const names = Object.keys(files);
  for (const name of names) checkFileName(dir, name);
  const parent = dirname(dir);
  const old = `${dir}.old`;
  const tmp = dir + tempSuffix();
  try {
    mkdirSync(parent, { recursive: true });
    mkdirSync(tmp);
    for (const name of names) writeAndSync(join(tmp, name), files[name] as FileData);
    writeAndSync(join(tmp, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
    fsyncDir(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw wrapFsError(e, dir);
  }
  try {
    if (existsSync(dir)) {
      // A leftover .old while `dir` exists means an earlier run died after its swap: `dir` is
      // the newer copy, and the stale one would block the rename below.
      rmSync(old, { recursive: true, force: true });
      renameSync(dir, old);
    }
    renameSync(tmp, dir);
    fsyncDir(parent);
  } catch (e) {
    throw wrapFsError(e, dir);
  }
  rmSync(old, { recursive: true, force: true });
  removeDeadTemps(dir);
}

interface TempDir { path: string; pid: number }

/** The `${dir}.tmp-${pid}-${hex}` siblings of `dir`. */
function listTemps(dir: string): TempDir[] {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.tmp-`;
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return [];
  }
  const out: TempDir[] = [];
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]+$/.exec(e.slice(prefix.length));
    if (m) out.push({ path: join(parent, e), pid: Number(m[1]) });
  }
  return out;
}

/** Whether a temp folder may belong to a writer that is still running (not us, still alive). */
function ownedByLiveWriter(t: TempDir): boolean {
  if (t.pid === process.pid) return false;
  try {
    process.kill(t.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Delete temp folders whose writer is gone; they can never be finished by anyone. */
function removeDeadTemps(dir: string): void {
  for (const t of listTemps(dir)) {
    if (!ownedByLiveWriter(t)) rmSync(t.path, { recursive: true, force: true });
  }
}

function markerTime(dir: string): number {
  try {
    return statSync(join(dir, COMPLETE_MARKER)).mtimeMs;
  } catch {
    return -Infinity;
  }
}

/**
 * Bring a checkpoint directory back to a clean state after a possible kill mid-write.
 * Call it before reading `dir`.
 *
 * - `dir` complete: delete stale `.tmp-*` (of dead writers) and `.old`.
 * - `dir` missing or incomplete: promote the newest complete `.tmp-*`, else a complete `.old`.
 *   An incomplete `dir` is not deleted but moved to `${dir}.incomplete-${time}` (it cannot come
 *   from `writeDirAtomic`, so it may hold someone's files).
 * - nothing usable and `dir` missing: throws an input error naming `dir`.
 */
export function recoverDir(dir: string): void {
  const old = `${dir}.old`;
  if (isCompleteDir(dir)) {
    removeDeadTemps(dir);
    rmSync(old, { recursive: true, force: true });
    return;
  }
  const candidates = listTemps(dir)
    .filter((t) => !ownedByLiveWriter(t) && isCompleteDir(t.path))
    .map((t) => ({ path: t.path, time: markerTime(t.path) }))
    .sort((a, b) => (b.time - a.time) || (a.path < b.path ? 1 : a.path > b.path ? -1 : 0));
  let source: string | null = candidates.length > 0 ? candidates[0]!.path : null;
  if (source === null && isCompleteDir(old)) source = old;
  const dirExists = existsSync(dir);
  if (source === null) {
    if (!dirExists) {
      throw inputError(
        `Checkpoint directory ${dir} does not exist and no complete copy of it was found ` +
        `(looked for ${basename(dir)}.tmp-* and ${basename(dir)}.old beside it). ` +
        `Check the path, or start a fresh run without resuming.`);
    }
    removeDeadTemps(dir);
    return;
  }
  const parent = dirname(dir);
  try {
    if (dirExists) renameSync(dir, `${dir}.incomplete-${Date.now()}`);
    renameSync(source, dir);
    fsyncDir(parent);
  } catch (e) {
    throw wrapFsError(e, dir);
  }
  removeDeadTemps(dir);
  rmSync(old, { recursive: true, force: true });
}

/** Turn a file-system failure into a message that names the path and the likely fix. */
function wrapFsError(e: unknown, path: string): unknown {
  const err = e as NodeJS.ErrnoException | null;
  if (!err || typeof err.code !== 'string') return e;
  const hints: Record<string, string> = {
    EACCES: 'permission denied; choose a folder you can write to',
    EPERM: 'operation not permitted; choose a folder you can write to',
    ENOSPC: 'the disk is full; free some space',
    EROFS: 'the file system is read-only; choose another folder',
    ENOENT: 'a folder on the path does not exist; create it first',
    ENOTDIR: 'a part of the path is a file, not a folder',
    EISDIR: 'the target is a folder, not a file',
  };
  const hint = hints[err.code];
  if (!hint) return e;
  return inputError(`Cannot write ${path}: ${hint} (${err.code}).`);
}
