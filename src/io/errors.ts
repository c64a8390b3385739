/** POSIX numbers of the signals the CLI handles (no node:os, so that this module also runs in a browser). */
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 };

/**
 * Errors meant for people. A FrugalError carries an exit code: 2 for bad input or usage
 * (the message names what, where and how to fix it), 1 for a runtime failure.
 * The CLI prints only the message (no stack trace unless --debug).
 */
export class FrugalError extends Error {
  /** 2: bad input or usage; 1: a runtime failure. */
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2 = 2) {
    super(message);
    this.name = 'FrugalError';
    this.exitCode = exitCode;
  }
}

/** Bad input or usage: exit code 2. */
export function inputError(message: string): FrugalError {
  return new FrugalError(message, 2);
}

/** A failure while doing valid work: exit code 1. */
export function runtimeError(message: string): FrugalError {
  return new FrugalError(message, 1);
}

/**
 * The user stopped the command (Ctrl-C, SIGTERM) and it wound down cleanly: the CLI prints the
 * message and exits with 128 + the signal's number, as a shell expects.
 */
export class StoppedError extends Error {
  /** 128 + the signal's number (130 for Ctrl-C). */
  readonly exitCode: number;
  constructor(message: string, signal: NodeJS.Signals) {
    super(message);
    this.name = 'StoppedError';
    this.exitCode = 128 + (SIGNAL_NUMBERS[signal] ?? 2);
  }
}
