import { expect } from 'vitest';
import { FrugalError } from '../../src/io/errors.js';
import { collectBytes } from '../../src/io/atomic.js';

/** Run a file producer into memory. */
export const collect = collectBytes;

/** Assert fn throws a bad-input error (exit code 2) whose message matches. */
export function expectInputError(fn: () => unknown, pattern: RegExp): FrugalError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'an error was thrown').toBeInstanceOf(FrugalError);
  expect((err as FrugalError).exitCode).toBe(2);
  expect((err as FrugalError).message).toMatch(pattern);
  return err as FrugalError;
}
