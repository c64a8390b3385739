import { InvalidArgumentError } from 'commander';
import { availableParallelism } from 'node:os';

/** Option parsers that reject bad numbers with a message naming the flag and the fix. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a whole number, got '${v}'`);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

export function floatArg(min: number, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${v}'`);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

export function kernelsArg(v: string): 'wasm' | 'ref' {
  if (v !== 'wasm' && v !== 'ref') throw new InvalidArgumentError(`expected 'wasm' or 'ref', got '${v}'`);
  return v;
}

export function idsArg(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) throw new InvalidArgumentError(`expected comma-separated token ids like 3,1,4, got '${v}'`);
  const ids = parts.map(Number);
  const big = ids.find((v) => v > 0x7fffffff);
  if (big !== undefined) throw new InvalidArgumentError(`token id ${big} is too large (ids are below 2^31)`);
  return ids;
}

/** --seed: JavaScript's exact integers, 0 … 2^53 − 1. */
export const SEED_HELP = '0 … 2^53 − 1';

export function seedArg(v: string): number {
  if (!/^\s*\d+\s*$/.test(v)) throw new InvalidArgumentError(`expected a whole number from ${SEED_HELP}, got '${v}'`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`must be at most 2^53 − 1 (${Number.MAX_SAFE_INTEGER}), got ${v.trim()}`);
  return n;
}

export const DEFAULT_THREADS = availableParallelism();
