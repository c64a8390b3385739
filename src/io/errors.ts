/**
 * Errors meant for people. A FrugalError carries an exit code: 2 for bad input or usage
 * (the message names what, where and how to fix it), 1 for a runtime failure.
 * The CLI prints only the message (no stack trace unless --debug).
 */
export class FrugalError extends Error {
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
