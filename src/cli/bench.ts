import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { cpus } from 'node:os';
import { writeFileAtomic } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { ARCHS, runScaling, scalingSvg, scalingTable, summarize, summaryLines } from '../bench/index.js';
import type { StudyArch } from '../bench/index.js';
import { formatJPerToken } from '../energy/index.js';
import { SEED_HELP, floatArg, intArg, seedArg } from './args.js';
import { checkEnergyLog, logEnergy, meterFor } from './commands.js';
import { checkOutputFile } from '../io/outputs.js';
import { writeOut } from './stdout.js';
import { registerSpeed } from './bench-speed.js';

const err = (s: string) => process.stderr.write(s + '\n');

function powerOfTwo(v: string): number {
  const n = intArg(1, 1 << 24)(v);
  if ((n & (n - 1)) !== 0) throw new InvalidArgumentError(`expected a power of two (e.g. 256, 1048576), got ${n}`);
  return n;
}

function archList(v: string): StudyArch[] {
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) if (!(ARCHS as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown architecture '${n}' (choose from ${ARCHS.join(', ')})`);
  if (names.length === 0 || new Set(names).size !== names.length) throw new InvalidArgumentError(`expected distinct names like mamba,transformer, got '${v}'`);
  return names as StudyArch[];
}

/** Flags --quick changes unless they were given explicitly. */
const QUICK: Record<string, number> = { minContext: 16, maxContext: 256, decodeTokens: 2, prefillChunk: 64 };

/** `frugal bench scaling` (registered by main.ts with its common --kernels/--threads options). */
export function registerBench(program: Command, common: (c: Command) => Command): void {
  // `bench` has options of its own (the speed benchmark, bench-speed.ts); for `frugal bench scaling
  // --quick` to reach `scaling`, the program must stop reading options at the subcommand name too
  program.enablePositionalOptions();
  const bench = program.command('bench').description('measurements; `bench scaling`: Mamba vs transformer across context lengths');
  common(bench.command('scaling').description('decode latency, state memory, J/token and prefill time from 2^8 to 2^20 tokens of context (at most 15 minutes by default)'))
    .addOption(new Option('--arch <list>', 'architectures, comma-separated').default(['mamba', 'transformer'], 'mamba,transformer').argParser(archList))
    .option('--min-context <n>', 'first context length (a power of two)', powerOfTwo, 256)
    .option('--max-context <n>', 'last context length (a power of two)', powerOfTwo, 1 << 20)
    .option('--decode-tokens <n>', 'timed decode steps per burst (3 bursts per context; the median step is reported, with min and max)', intArg(1, 4096), 16)
    .option('--prefill-chunk <n>', 'tokens per prefill call', intArg(1, 1 << 20), 4096)
    .option('--budget-seconds <n>', 'time budget of the whole study; each architecture gets an equal share of what is left', floatArg(1, 86400), 900)
    .option('--max-state-mb <n>', 'memory budget of one stream\'s state / KV cache, in MiB', floatArg(0.001, 3072), 1024)
    .option('--quick', 'tiny models (~25k parameters each) and contexts 2^4..2^8: a smoke test in seconds')
    .option('--seed <n>', `weights and token seed, ${SEED_HELP}`, seedArg, 1)
    .option('--json', 'write the numbers as JSON to stdout (otherwise a Markdown table)')
    .option('--svg <file>', 'write the log-log chart to this SVG file')
    .option('--force', 'replace an existing --svg file')
    .option('--energy-log <file>', 'append a CodeCarbon-style CSV row (kWh, W, kg CO2) with joules, J/token, kind and method')
    .option('--tdp <watts>', 'CPU package power for the CPU-time energy estimate (default: from a table of CPUs, else 10 W per core)', floatArg(0.001, 1e5))
    .action((o: Record<string, unknown>, cmd: Command) => {
      if (o.quick === true) for (const [k, v] of Object.entries(QUICK)) if (cmd.getOptionValueSource(k) === 'default') o[k] = v;
      if ((o.minContext as number) > (o.maxContext as number)) throw inputError(`--min-context ${o.minContext} is larger than --max-context ${o.maxContext}`);
      benchScalingCommand(o, process.argv.slice(2).join(' '));
    });
  registerSpeed(bench); // `frugal bench` with no subcommand: the speed benchmark
}

function benchScalingCommand(o: Record<string, unknown>, args: string): void {
  const flags = checkEnergyLog({ energyLog: o.energyLog as string | undefined, tdp: o.tdp as number | undefined }, []);
  const svg = o.svg === undefined ? null : checkOutputFile(o.svg as string, { flag: '--svg', force: o.force === true });
  const energy = meterFor(flags);
  const result = runScaling({
    archs: o.arch as StudyArch[], minContext: o.minContext as number, maxContext: o.maxContext as number,
    decodeTokens: o.decodeTokens as number, prefillChunk: o.prefillChunk as number, budgetSeconds: o.budgetSeconds as number,
    maxStateBytes: (o.maxStateMb as number) * 2 ** 20, tiny: o.quick === true, kernels: o.kernels as 'wasm' | 'ref',
    threads: o.threads as number, seed: o.seed as number, tdp: flags.tdp,
  }, err);
  const summary = summarize(result);
  const table = scalingTable(result);
  const title = `frugal: Mamba vs transformer, ${result.results.map((r) => `${r.arch} ${(r.parameters / 1e6).toFixed(2)}M`).join(' vs ')} parameters`;
  if (svg !== null) {
    writeFileAtomic(svg, scalingSvg(result, title));
    err(`bench scaling: chart written to ${o.svg as string}`);
  }
  const report = energy.stop(result.tokens);
  if (o.json) {
    const doc = { command: `frugal ${args}`, machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, node: process.version },
      ...result, summary, energyOfRun: report };
    writeOut(JSON.stringify(doc, null, 2) + '\n');
    err(table);
  } else {
    writeOut(table + '\n');
  }
  for (const line of summaryLines(result, summary)) err(`bench scaling: ${line}`);
  err(`bench scaling: ${result.tokens} tokens in ${result.seconds.toFixed(1)} s, ${(result.tokens / Math.max(result.seconds, 1e-9)).toFixed(0)} tok/s, ` +
    `${formatJPerToken(report)} (whole run)`);
  logEnergy(flags, report, 'bench scaling', result.tokens, report.seconds);
}
