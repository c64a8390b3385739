import { expect } from 'vitest';
import { FrugalError } from '../../src/io/errors.js';
import type { FileProducer } from '../../src/io/atomic.js';

/** Run a file producer into memory. */
export function collect(p: FileProducer): Uint8Array {
  const parts: Uint8Array[] = [];
  let n = 0;
  p((c) => {
    parts.push(new Uint8Array(c));
    n += c.length;
  });
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of parts) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

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
