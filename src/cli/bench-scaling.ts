import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { cpus } from 'node:os';
import { writeFileAtomic } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { ARCHS, runScaling, scalingSvg, scalingTable, summarize, summaryLines } from '../bench/scaling/index.js';
import type { StudyArch } from '../bench/scaling/index.js';
import { formatJPerToken } from '../energy/index.js';
import { energyOptions, engineOptions, floatArg, forceOption, intArg, seedOption } from './options.js';
import type { AnyCommand } from './options.js';
import type { KernelKind } from '../kernels/backend.js';
import { checkEnergyLog, logEnergy, meterFor } from './energy-log.js';
import type { EnergyFlags } from './energy-log.js';
import { checkOutputFile } from '../io/outputs.js';
import { writeOut } from './stdout.js';

const err = (s: string) => process.stderr.write(s + '\n');

function powerOfTwo(v: string): number {
  const n = intArg(1, 1 << 24)(v);
  if ((n & (n - 1)) !== 0) throw new InvalidArgumentError(`expected a power of two (e.g. 256, 1048576), got ${n}`);
  return n;
}

function archList(v: string): StudyArch[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const n of names) if (!isArch(n)) throw new InvalidArgumentError(`unknown architecture '${n}' (choose from ${ARCHS.join(', ')})`);
  if (names.length === 0 || new Set(names).size !== names.length)
    throw new InvalidArgumentError(`expected distinct names like mamba,transformer, got '${v}'`);
  return names.filter(isArch);
}

function isArch(n: string): n is StudyArch {
  return ARCHS.some((a) => a === n);
}

/** Flags --quick changes unless they were given explicitly. */
const QUICK = { minContext: 16, maxContext: 256, decodeTokens: 2, prefillChunk: 64 } as const;

/** `frugal bench scaling`: the Mamba vs transformer study across context lengths (src/bench/scaling/). */
export function registerScaling(bench: AnyCommand): void {
  const study = engineOptions(
    bench
      .command('scaling')
      .description(
        'decode latency, state memory, J/token and prefill time from 2^8 to 2^20 tokens of context (at most 15 minutes by default)',
      ),
  )
    .addOption(
      new Option('--arch <list>', 'architectures, comma-separated')
        .default<StudyArch[]>(['mamba', 'transformer'], 'mamba,transformer')
        .argParser(archList),
    )
    .option('--min-context <n>', 'first context length (a power of two)', powerOfTwo, 256)
    .option('--max-context <n>', 'last context length (a power of two)', powerOfTwo, 1 << 20)
    .option(
      '--decode-tokens <n>',
      'timed decode steps per burst (5 bursts per context, alternating between the architectures; the median step is reported, with min and max)',
      intArg(1, 4096),
      16,
    )
    .option('--prefill-chunk <n>', 'tokens per prefill call', intArg(1, 1 << 20), 4096)
    .option(
      '--budget-seconds <n>',
      'time budget of the whole study; the architectures run in lockstep, and a context that would overrun it stops the costliest first',
      floatArg(1, 86400),
      900,
    )
    .option('--max-state-mb <n>', "memory budget of one stream's state / KV cache, in MiB", floatArg(0.001, 3072), 1024)
    .option('--quick', 'tiny models (~25k parameters each) and contexts 2^4..2^8: a smoke test in seconds');
  const output = seedOption(study, 'weights and token seed')
    .option('--json', 'write the numbers as JSON to stdout (otherwise a Markdown table)')
    .option('--svg <file>', 'write the log-log chart to this SVG file');
  energyOptions(forceOption(output, 'replace an existing --svg file')).action((o, cmd) => {
    const quick = o.quick === true;
    const pick = (k: keyof typeof QUICK) => (quick && cmd.getOptionValueSource(k) === 'default' ? QUICK[k] : o[k]);
    const flags = {
      ...o,
      minContext: pick('minContext'),
      maxContext: pick('maxContext'),
      decodeTokens: pick('decodeTokens'),
      prefillChunk: pick('prefillChunk'),
    };
    if (flags.minContext > flags.maxContext)
      throw inputError(`--min-context ${flags.minContext} is larger than --max-context ${flags.maxContext}`);
    benchScalingCommand(flags, process.argv.slice(2).join(' '));
  });
}

/** The flags of `frugal bench scaling` (after --quick). */
export interface BenchScalingFlags extends EnergyFlags {
  arch: StudyArch[];
  minContext: number;
  maxContext: number;
  decodeTokens: number;
  prefillChunk: number;
  budgetSeconds: number;
  maxStateMb: number;
  quick?: boolean;
  kernels: KernelKind;
  threads: number;
  seed: number;
  json?: boolean;
  svg?: string;
  force?: boolean;
}

function benchScalingCommand(o: BenchScalingFlags, args: string): void {
  const flags = checkEnergyLog(o, []);
  const svg = o.svg === undefined ? null : checkOutputFile(o.svg, { flag: '--svg', force: o.force === true });
  const energy = meterFor(flags);
  const result = runScaling(
    {
      archs: o.arch,
      minContext: o.minContext,
      maxContext: o.maxContext,
      decodeTokens: o.decodeTokens,
      prefillChunk: o.prefillChunk,
      budgetSeconds: o.budgetSeconds,
      maxStateBytes: o.maxStateMb * 2 ** 20,
      tiny: o.quick === true,
      kernels: o.kernels,
      threads: o.threads,
      seed: o.seed,
      tdp: flags.tdp,
    },
    err,
  );
  const summary = summarize(result);
  const table = scalingTable(result);
  const title = `frugal: Mamba vs transformer, ${result.results.map((r) => `${r.arch} ${(r.parameters / 1e6).toFixed(2)}M`).join(' vs ')} parameters`;
  if (svg !== null) {
    writeFileAtomic(svg, scalingSvg(result, title));
    err(`bench scaling: chart written to ${o.svg}`);
  }
  const report = energy.stop(result.tokens);
  if (o.json) {
    const doc = {
      command: `frugal ${args}`,
      machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, node: process.version },
      ...result,
      summary,
      energyOfRun: report,
    };
    writeOut(JSON.stringify(doc, null, 2) + '\n');
    err(table);
  } else {
    writeOut(table + '\n');
  }
  for (const line of summaryLines(result, summary)) err(`bench scaling: ${line}`);
  err(
    `bench scaling: ${result.tokens} tokens in ${result.seconds.toFixed(1)} s, ${(result.tokens / Math.max(result.seconds, 1e-9)).toFixed(0)} tok/s, ` +
      `${formatJPerToken(report)} (whole run)`,
  );
  logEnergy(flags, report, 'bench scaling', result.tokens, report.seconds);
}
