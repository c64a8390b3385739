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
 * Nothing here moves or deletes a folder frugal did not build: frugal's folders carry a marker
 * (`.frugal` while being built, `.complete` once sealed), and only folders with one (or empty
 * ones) are ever removed. Files a user put inside a checkpoint folder are carried into each new
 * version. Only writers, holding the folder's lock (io/lock.ts), call `recoverDir`; readers call
 * `readableDir`, which never writes.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { inputError, runtimeError } from './errors.js';

/**
 * Name of the marker written last into a checkpoint directory: present means complete. It holds
 * the list of files frugal wrote (JSON), so that any other file in the folder is known to be the
 * user's.
 */
export const COMPLETE_MARKER = '.complete';

/** Written first into a folder frugal is building, removed once `.complete` seals it. */
export const OWNER_MARKER = '.frugal';

/** Deleted last, in this order, so a half-deleted folder of frugal's is still recognisable. */
const MARKERS = [COMPLETE_MARKER, OWNER_MARKER] as const;

function uniqueSuffix(kind: 'tmp' | 'old'): string {
  return `.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Writes a file's content piece by piece through `write`, for files too large to build in memory
 * (checkpoints of hundreds of megabytes streamed from the model's weights or from another file).
 */
export type FileProducer = (write: (chunk: Uint8Array) => void) => void;

/** The chunks joined into one array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Run a producer into memory (its chunks are copied: a producer may reuse its buffer). */
export function collectBytes(p: FileProducer): Uint8Array {
  const parts: Uint8Array[] = [];
  p((c) => parts.push(c.slice()));
  return concatBytes(parts);
}

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
  const tmp = path + uniqueSuffix('tmp');
  try {
    writeAndSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone or never made */
    }
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

/** True if `dir` is a folder frugal built (it holds one of frugal's markers). */
export function isFrugalDir(dir: string): boolean {
  return MARKERS.some((m) => existsSync(join(dir, m))) && statSync(dir).isDirectory();
}

/** Reject names that would escape the checkpoint folder or clash with the markers. */
function checkFileName(dir: string, name: string): void {
  if (name === '' || name === '.' || name === '..' || (MARKERS as readonly string[]).includes(name) || /[/\\\0]/.test(name)) {
    throw inputError(
      `Cannot write checkpoint ${dir}: file name ${JSON.stringify(name)} is not allowed. ` +
        `Use a plain file name (no slashes, not "." or "..", not "${COMPLETE_MARKER}" or "${OWNER_MARKER}").`,
    );
  }
}

/**
 * Write a whole directory of files so that `dir` always holds one complete set.
 *
 * Protocol: build everything in a fresh sibling `${dir}.tmp-${pid}-${random}` (marker `.frugal`
 * first), fsync each file, hard-link in the files of the current `dir` that frugal did not write,
 * write `.complete` last; then move the current `dir` (if any) to `${dir}.old-${pid}-${random}`,
 * rename the temp folder to `dir`, fsync the parent, delete the old copy. Whatever instant a kill
 * lands on, one complete copy exists under `dir` or one of those names, and `recoverDir` finds it.
 *
 * `dir` must be missing, empty, or a folder frugal built; anything else is refused (exit 2).
 */
export function writeDirAtomic(dir: string, files: Record<string, FileData>): void {
  const names = Object.keys(files);
  for (const name of names) checkFileName(dir, name);
  const exists = existsSync(dir);
  if (exists && (!statSync(dir).isDirectory() || (readdirSync(dir).length > 0 && !isFrugalDir(dir)))) {
    throw inputError(`Cannot write checkpoint ${dir}: it exists and is not a folder frugal wrote; choose another path.`);
  }
  const parent = dirname(dir);
  const tmp = dir + uniqueSuffix('tmp');
  try {
    mkdirSync(parent, { recursive: true });
    mkdirSync(tmp);
    writeFileSync(join(tmp, OWNER_MARKER), 'a folder frugal is writing\n'); // no fsync: it only names the folder's owner
    for (const name of names) writeAndSync(join(tmp, name), files[name] as FileData);
    if (exists) carryUserFiles(dir, tmp, names);
    writeAndSync(join(tmp, COMPLETE_MARKER), JSON.stringify({ written: new Date().toISOString(), files: names }) + '\n');
    unlinkSync(join(tmp, OWNER_MARKER));
    fsyncDir(tmp);
  } catch (e) {
    removeOwnDir(tmp);
    throw wrapFsError(e, dir);
  }
  let old: string | null = null;
  try {
    if (exists) {
      old = dir + uniqueSuffix('old');
      renameSync(dir, old);
    }
    renameSync(tmp, dir);
    fsyncDir(parent);
  } catch (e) {
    if (old !== null && !existsSync(dir)) {
      try {
        renameSync(old, dir);
      } catch {
        /* recoverDir puts it back */
      }
    }
    throw wrapFsError(e, dir);
  }
  if (old !== null) removeOwnDir(old);
  for (const l of leftovers(dir)) if (l.ours && !l.live) removeOwnDir(l.path);
}

/** The files frugal wrote into a sealed folder (null for folders sealed before lists were kept). */
function writtenFiles(dir: string): string[] | null {
  try {
    const m = JSON.parse(readFileSync(join(dir, COMPLETE_MARKER), 'utf8')) as { files?: unknown };
    return Array.isArray(m.files) ? m.files.filter((f): f is string => typeof f === 'string') : null;
  } catch {
    return null;
  }
}

/**
 * Hard-link (or copy) into `tmp` every entry of `dir` that frugal did not write: the user's notes
 * survive each new save. Folders sealed before file lists were kept count everything not being
 * rewritten as the user's.
 */
function carryUserFiles(dir: string, tmp: string, names: readonly string[]): void {
  const ours = new Set<string>([...(writtenFiles(dir) ?? []), ...names, ...MARKERS]);
  for (const e of readdirSync(dir)) if (!ours.has(e)) linkTree(join(dir, e), join(tmp, e));
}

function linkTree(from: string, to: string): void {
  const st = lstatSync(from);
  if (st.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
  else if (st.isDirectory()) {
    mkdirSync(to);
    for (const e of readdirSync(from)) linkTree(join(from, e), join(to, e));
  } else {
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
  }
}

/**
 * Delete a folder only if frugal built it (a marker inside) or it is empty: markers go last, so a
 * deletion cut short leaves a folder that is still recognisably frugal's. Returns false when
 * the folder is someone else's and was left alone.
 */
function removeOwnDir(path: string): boolean {
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch {
    return false;
  }
  if (entries.length > 0 && !MARKERS.some((m) => entries.includes(m))) return false;
  for (const e of entries) if (!(MARKERS as readonly string[]).includes(e)) rmSync(join(path, e), { recursive: true, force: true });
  for (const m of MARKERS) rmSync(join(path, m), { force: true });
  try {
    rmdirSync(path);
  } catch {
    /* something new appeared inside: leave it */
  }
  return true;
}

/** A sibling `${dir}.tmp-…`, `${dir}.old-…` (or `${dir}.old` of older versions) left by a save. */
interface Leftover {
  path: string;
  kind: 'tmp' | 'old';
  pid: number | null;
  ours: boolean;
  complete: boolean;
  live: boolean;
  time: number;
}

/** Folders beside `dir` named like the temporary and old copies of a save. */
function leftovers(dir: string): Leftover[] {
  const parent = dirname(dir);
  const base = basename(dir);
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return [];
  }
  const out: Leftover[] = [];
  for (const e of entries) {
    if (!e.startsWith(`${base}.`)) continue;
    const m = /^(tmp|old)-(\d+)-[0-9a-f]+$/.exec(e.slice(base.length + 1));
    if (!m && e !== `${base}.old`) continue;
    const path = join(parent, e);
    let names: string[];
    try {
      if (!lstatSync(path).isDirectory()) continue;
      names = readdirSync(path);
    } catch {
      continue;
    }
    const pid = m ? Number(m[2]) : null;
    out.push({
      path,
      kind: m ? (m[1] as 'tmp' | 'old') : 'old',
      pid,
      ours: names.length === 0 || MARKERS.some((k) => names.includes(k)),
      complete: names.includes(COMPLETE_MARKER),
      live: pid !== null && isLiveOther(pid),
      time: markerTime(path),
    });
  }
  return out;
}

/** Whether `pid` is another process that is still running (its save may be in progress). */
function isLiveOther(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function markerTime(dir: string): number {
  try {
    return statSync(join(dir, COMPLETE_MARKER)).mtimeMs;
  } catch {
    return -Infinity;
  }
}

/** The copy to bring back when `dir` is missing: the newest sealed temp, else the newest sealed old copy. */
function bestCopy(found: readonly Leftover[]): Leftover | null {
  const rank = (l: Leftover) => (l.kind === 'tmp' ? 1 : 0);
  const sealed = found
    .filter((l) => l.ours && l.complete && !l.live)
    .sort((a, b) => rank(b) - rank(a) || b.time - a.time || (a.path < b.path ? 1 : a.path > b.path ? -1 : 0));
  return sealed[0] ?? null;
}

/**
 * For writers (holding the folder's lock): bring `dir` back to a clean state after a possible kill
 * mid-save. When `dir` is missing, the newest sealed copy frugal left beside it is renamed back;
 * then frugal's other leftovers of dead writers are deleted. Folders without frugal's marker are
 * never touched, and neither is `dir` itself; when `dir` is someone else's folder, nothing is
 * (the leftovers may be all there is of a save). A missing `dir` with nothing to recover is fine.
 */
export function recoverDir(dir: string): void {
  const exists = existsSync(dir);
  if (exists && statSync(dir).isDirectory() && readdirSync(dir).length > 0 && !isFrugalDir(dir)) return;
  const found = leftovers(dir);
  const pick = exists ? null : bestCopy(found);
  if (pick) {
    try {
      renameSync(pick.path, dir);
      rmSync(join(dir, OWNER_MARKER), { force: true }); // sealed: a kill may have left it beside .complete
      fsyncDir(dirname(dir));
    } catch (e) {
      throw wrapFsError(e, dir);
    }
  }
  for (const l of found) if (l !== pick && l.ours && !l.live) removeOwnDir(l.path);
}

/**
 * For readers, which never write: the folder to read for `dir` (itself, or when a kill between the
 * two renames of a save left it missing, the sealed copy beside it), and warnings about leftovers
 * the next writer will clean up.
 */
export function readableDir(dir: string): { dir: string; warnings: string[] } {
  const found = leftovers(dir).filter((l) => l.ours && !l.live);
  if (!existsSync(dir)) {
    const pick = bestCopy(found);
    if (pick) {
      return {
        dir: pick.path,
        warnings: [
          `${dir} is missing but an interrupted save left a complete copy in ${pick.path}; ` +
            `reading that (the next frugal command that writes ${dir} puts it back in place)`,
        ],
      };
    }
  }
  return {
    dir,
    warnings: found.map(
      (l) => `${l.path} is left over from an interrupted save of ${dir}; ` + 'the next frugal command that writes there removes it',
    ),
  };
}

/** After a writer in this process was stopped: delete its temporary files `${path}.tmp-${pid}-*`. */
export function removeOwnTempFiles(path: string): void {
  const prefix = `${basename(path)}.tmp-${process.pid}-`;
  let entries: string[] = [];
  try {
    entries = readdirSync(dirname(path));
  } catch {
    /* nothing to remove */
  }
  for (const e of entries) if (e.startsWith(prefix)) rmSync(join(dirname(path), e), { force: true });
}

/**
 * Turn a file-system failure while writing into a one-line runtime error (exit 1) that names the
 * path and the likely fix. Paths are checked before any work (io/outputs.ts), so a failure here
 * is the disk's, not the user's choice of path.
 */
function wrapFsError(e: unknown, path: string): unknown {
  const err = e as NodeJS.ErrnoException | null;
  if (!err || typeof err.code !== 'string') return e;
  const hints: Record<string, string> = {
    EACCES: 'permission denied; choose a folder you can write to',
    EPERM: 'operation not permitted; choose a folder you can write to',
    ENOSPC: 'the disk is full; free some space',
    EDQUOT: 'the disk quota is exhausted; free some space',
    EROFS: 'the file system is read-only; choose another folder',
    ENOENT: 'a folder on the path does not exist; create it first',
    ENOTDIR: 'a part of the path is a file, not a folder',
    EISDIR: 'the target is a folder, not a file',
  };
  const hint = hints[err.code] ?? err.message;
  return runtimeError(`Cannot write ${path}: ${hint} (${err.code}); the previous copy, if any, is unchanged.`);
}
