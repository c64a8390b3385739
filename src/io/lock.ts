/**
 * One writer per checkpoint folder: `${dir}.lock`, created exclusively beside the folder (a lock
 * inside would be swapped away with the folder) and holding the owner's pid, host and command.
 * A second writer is refused (exit 2) with the holder's name; a lock whose process is gone (same
 * host, pid not running or reused by another program) is taken over with a warning.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { inputError } from './errors.js';

interface Holder {
  pid: number;
  host: string;
  started: string;
  command: string;
  procStart: string | null;
}

export interface Lock {
  readonly path: string;
  release(): void;
}

/** The start time of a process in clock ticks since boot (Linux), to tell a reused pid from the owner. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isRunning(h: Holder): boolean {
  if (h.host !== hostname()) return true; // cannot tell: assume it is
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStart(h.pid);
  return h.procStart === null || now === null || now === h.procStart;
}

/** The lock file's holder; null when the file is gone; throws when it is not a frugal lock. */
function readHolder(path: string): { holder: Holder; text: string } | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw inputError(
      `cannot read the lock file ${path} (${(e as NodeJS.ErrnoException).code}); remove it if no frugal command is writing there`,
    );
  }
  try {
    const h = JSON.parse(text) as Holder;
    if (typeof h.pid === 'number' && typeof h.host === 'string') return { holder: h, text };
  } catch {
    /* not ours */
  }
  if (text === '') return { holder: { pid: -1, host: hostname(), started: '', command: '', procStart: null }, text }; // being written
  throw inputError(`${path} exists and is not a frugal lock file; move it away or choose another output`);
}

function describe(h: Holder): string {
  return `pid ${h.pid} on ${h.host}${h.started ? `, since ${h.started}` : ''}${h.command ? `: frugal ${h.command}` : ''}`;
}

/**
 * Take the lock of checkpoint folder `dir` (its parent must exist), or throw an input error naming
 * the process that holds it. `warn` hears about stale locks taken over.
 */
export function acquireLock(dir: string, warn: (m: string) => void): Lock {
  const path = `${dir}.lock`;
  const me: Holder = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    command: process.argv.slice(2).join(' '),
    procStart: processStart(process.pid),
  };
  const text = JSON.stringify(me) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw inputError(`cannot create the lock file ${path} (${code}); choose a folder you can write to`);
      const seen = readHolder(path);
      if (seen === null) continue; // released meanwhile
      if (seen.holder.pid === -1 || isRunning(seen.holder)) {
        throw inputError(
          `${dir} is being written by another frugal process (${describe(seen.holder)}); wait for it to finish, ` +
            `or choose another output${seen.holder.host !== hostname() ? ` (if that process is gone, delete ${path})` : ''}`,
        );
      }
      takeOver(path, seen.text);
      warn(`took over the stale lock ${path} of ${describe(seen.holder)}, which is no longer running`);
      continue;
    }
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    const release = (): void => {
      process.off('exit', release);
      try {
        if (readFileSync(path, 'utf8') === text) unlinkSync(path);
      } catch {
        /* already gone */
      }
    };
    process.on('exit', release);
    return { path, release };
  }
  throw inputError(`could not take the lock ${path}: other frugal processes keep taking it; try again`);
}

/**
 * Move a stale lock out of the way. Another process may have replaced it in between: then its
 * fresh lock is put back (link fails if yet another one exists, which is then the holder).
 */
function takeOver(path: string, staleText: string): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // gone already
  }
  try {
    if (readFileSync(aside, 'utf8') !== staleText) linkSync(aside, path);
  } catch {
    /* someone else holds it now: the next attempt sees them */
  }
  unlinkSync(aside);
}
