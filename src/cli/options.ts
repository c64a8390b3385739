import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import type { Command, OptionValues } from '@commander-js/extra-typings';
import { availableParallelism } from 'node:os';
import { WASM_KINDS } from '../kernels/backend.js';
import type { KernelKind, WasmKind } from '../kernels/backend.js';
import { RelaxedSimdUnavailable, relaxedWasmBytes } from '../kernels/wasm/index.js';

/**
 * Option parsers and the option groups several commands share. Each command registers itself in
 * its own module (train.ts, generate.ts, …) from these pieces; commander infers each command's
 * option types from them, so actions read typed values.
 */

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

export function kernelsArg(v: string): KernelKind {
  if (v !== 'wasm' && v !== 'wasm-relaxed' && v !== 'ref')
    throw new InvalidArgumentError(`expected 'wasm', 'wasm-relaxed' or 'ref', got '${v}'`);
  if (v === 'wasm-relaxed') {
    // checked (and Node 20's V8 flag set) while parsing, before a command reads any data
    try {
      relaxedWasmBytes();
    } catch (e) {
      throw new InvalidArgumentError(e instanceof RelaxedSimdUnavailable ? e.reason : (e as Error).message);
    }
  }
  return v;
}

/**
 * `frugal bench --kernels`: one WebAssembly build or several, comma-separated (wasm, wasm-relaxed),
 * each checked as kernelsArg checks it; the first runs the whole benchmark.
 */
export function kernelBuildsArg(v: string): WasmKind[] {
  const builds = v.split(',').map((s) => s.trim());
  for (const b of builds)
    if (!(WASM_KINDS as readonly string[]).includes(b))
      throw new InvalidArgumentError(`expected wasm, wasm-relaxed or both comma-separated, got '${v}'`);
  if (new Set(builds).size !== builds.length) throw new InvalidArgumentError(`a build is listed twice in '${v}'`);
  return builds.map((b) => kernelsArg(b) as WasmKind);
}

/** --kernels's help: every command that runs a model. */
export const KERNELS_HELP = 'wasm (WebAssembly SIMD), wasm-relaxed (the opt-in relaxed-SIMD build) or ref (plain TypeScript twins)';

export function idsArg(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p)))
    throw new InvalidArgumentError(`expected comma-separated token ids like 3,1,4, got '${v}'`);
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

/** The program and every subcommand: commander with option types inferred from the definitions. */
export type AnyCommand = Command<unknown[], OptionValues, OptionValues>;

/** --debug: every command. */
export function debugOption<A extends unknown[], O extends OptionValues, G extends OptionValues>(c: Command<A, O, G>) {
  return c.option('--debug', 'print stack traces on errors');
}

/** --kernels, --threads and --debug: every command that runs a model. */
export function engineOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(c: Command<A, O, G>) {
  return debugOption(
    c
      .addOption(new Option('--kernels <kind>', KERNELS_HELP).default<KernelKind>('wasm').argParser(kernelsArg))
      .addOption(new Option('--threads <n>', 'worker threads').default(DEFAULT_THREADS).argParser(intArg(1, 256))),
  );
}

/** --energy-log and --tdp: the commands that end with a J/token figure (train, generate, bench). */
export function energyOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(c: Command<A, O, G>) {
  return c
    .option('--energy-log <file>', 'append a CodeCarbon-style CSV row (kWh, W, kg CO2) with joules, J/token, kind and method')
    .option(
      '--tdp <watts>',
      'CPU package power for the CPU-time energy estimate (default: from a table of CPUs, else 10 W per core)',
      floatArg(0.001, 1e5),
    );
}

/** --force with what it replaces: the commands that write an output (see io/outputs.ts). */
export function forceOption<A extends unknown[], O extends OptionValues, G extends OptionValues>(c: Command<A, O, G>, replaces: string) {
  return c.option('--force', replaces);
}

/** --model DIR: the commands that read a checkpoint. */
export function modelOption<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  c: Command<A, O, G>,
  help = 'model directory',
) {
  return c.requiredOption('--model <dir>', help);
}

/** --seed with what it seeds. */
export function seedOption<A extends unknown[], O extends OptionValues, G extends OptionValues>(c: Command<A, O, G>, seeds: string) {
  return c.option('--seed <n>', `${seeds}, ${SEED_HELP}`, seedArg, 1);
}

/** The options given on the command line (not defaults): `o` narrowed to the keys `cmd` got from the user. */
export function givenOptions<O extends OptionValues>(o: O, cmd: { getOptionValueSource(key: string): string | undefined }): Partial<O> {
  const out: Partial<O> = { ...o };
  for (const k in out) if (cmd.getOptionValueSource(k) !== 'cli') delete out[k];
  return out;
}
