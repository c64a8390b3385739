/**
 * `frugal bench` with no subcommand: the speed benchmark (src/bench/speed/run.ts). The table and
 * progress go to stderr; `--json` writes the document to stdout. Registered on the `bench` command
 * that src/cli/bench.ts creates; its options are positional (given before any subcommand), so
 * `frugal bench scaling --quick` still reaches the scaling study.
 */
import { Option } from '@commander-js/extra-typings';
import type { Command } from '@commander-js/extra-typings';
import { availableParallelism } from 'node:os';
import { runSpeedBench, speedTable, speedTargets } from '../bench/speed/index.js';
import type { SpeedMode } from '../bench/speed/index.js';
import { InvalidArgumentError } from '@commander-js/extra-typings';
import { BENCH_ARCHS } from '../bench/speed/arch.js';
import type { BenchArch } from '../bench/speed/arch.js';
import { formatJPerToken } from '../energy/index.js';
import { debugOption, energyOptions, floatArg, intArg, kernelBuildsArg, seedOption } from './options.js';
import type { WasmKind } from '../kernels/backend.js';
import { checkEnergyLog, logEnergy, meterFor } from './energy-log.js';
import { writeOut } from './stdout.js';
import { benchModelCommand } from './bench-model.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** Python with torch for the PyTorch peer: Debian's python3-torch lives under /usr/bin/python3. */
const DEFAULT_PYTHON = '/usr/bin/python3';

export interface BenchSpeedFlags {
  quick?: boolean;
  tiny?: boolean;
  json?: boolean;
  threads: number;
  llamaBench?: string;
  python: string;
  torch: boolean;
  seed: number;
  arch: BenchArch;
  budgetSeconds?: number;
  energyLog?: string;
  tdp?: number;
  debug?: boolean;
  /** Kernel builds: the first runs everything; with two, the builds section times both. */
  kernels: WasmKind[];
}

/** Add the speed benchmark's options and default action to `bench`. */
export function registerSpeed(bench: Command): void {
  const cmd = bench
    .enablePositionalOptions()
    .option(
      '--quick',
      'a few minutes with the peers, about one without: shorter timings, one interleaved peer round, fewer prompt lengths and thread counts',
    )
    .addOption(new Option('--tiny', 'tests only: tiny models and buffers, a few seconds').hideHelp())
    .option('--json', 'write the results document as JSON to stdout')
    .option(
      '--arch <arch>',
      `architecture of the decode and training models: ${BENCH_ARCHS.join(', ')} (mamba2, mamba3, hybrid at the mamba2-130m shape; llama.cpp: mamba and mamba2; PyTorch: mamba)`,
      (v: string): BenchArch => {
        if (!(BENCH_ARCHS as readonly string[]).includes(v))
          throw new InvalidArgumentError(`expected one of ${BENCH_ARCHS.join(', ')}, got '${v}'`);
        return v as BenchArch;
      },
      'mamba' as BenchArch,
    )
    .option(
      '--threads <n>',
      '"all threads": the largest thread count measured (1 is always measured too)',
      intArg(1, 256),
      availableParallelism(),
    )
    .option('--llama-bench <path>', "llama.cpp's llama-bench binary: convert the decode model to GGUF and run it side by side")
    .option('--python <path>', 'Python with torch for the PyTorch comparison', DEFAULT_PYTHON)
    .option('--no-torch', 'skip the PyTorch comparison')
    .option(
      '--kernels <builds>',
      'kernel build: wasm (plain SIMD) or wasm-relaxed (the opt-in relaxed-SIMD build); wasm,wasm-relaxed runs on the first and times both side by side',
      kernelBuildsArg,
      ['wasm'] as WasmKind[],
    )
    .option('--model <dir>', 'instead: decoding speed and J/token of this checkpoint (bench-model.ts)')
    .option('--adapter <dir>', 'with --model: also with this LoRA adapter attached');
  const run = seedOption(cmd, 'weights seed').option(
    '--budget-seconds <n>',
    'time the run aims to stay under; optional parts past it are skipped and listed (default 540, --quick 80)',
    floatArg(1, 86400),
  );
  debugOption(energyOptions(run)).action((o) => benchSpeedCommand(o, process.argv.slice(2).join(' ')));
}

/** Run the benchmark, print the table (stderr) and the document (stdout with --json), then the summary line. */
export function benchSpeedCommand(o: BenchSpeedFlags & { model?: string; adapter?: string }, args: string): void {
  if (o.model !== undefined || o.adapter !== undefined) {
    benchModelCommand({
      model: o.model as string,
      adapter: o.adapter,
      threads: o.threads,
      kernels: o.kernels[0],
      tokens: o.tiny ? 8 : 64,
      json: o.json,
    });
    return;
  }
  const mode: SpeedMode = o.tiny === true ? 'tiny' : o.quick === true ? 'quick' : 'full';
  const flags = checkEnergyLog({ energyLog: o.energyLog, tdp: o.tdp }, []);
  const energy = meterFor(flags);
  const { doc, tokens } = runSpeedBench({
    mode,
    threads: o.threads,
    llamaBench: o.llamaBench ?? null,
    python: o.torch ? o.python : null,
    seed: o.seed,
    arch: o.arch,
    budgetSeconds: o.budgetSeconds,
    kernels: o.kernels,
    command: `frugal ${args}`,
    log: err,
  });
  const report = energy.stop(tokens);
  err('');
  err(speedTable(doc));
  if (mode !== 'tiny') for (const line of speedTargets(doc)) err(`bench: target: ${line}`);
  if (o.json === true) writeOut(JSON.stringify(doc, null, 2) + '\n');
  err(
    `bench: ${tokens} tokens in ${doc.seconds.toFixed(1)} s, ${(tokens / Math.max(doc.seconds, 1e-9)).toFixed(0)} tok/s, ${formatJPerToken(report)} (whole run)`,
  );
  logEnergy(flags, report, 'bench', tokens, report.seconds);
}
