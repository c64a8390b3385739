/**
 * `frugal bench serve`: `frugal serve` measured through its OpenAI HTTP API (src/bench/serve/).
 * The JSON document goes to stdout, progress and the verdicts to stderr.
 */
import type { Command } from '@commander-js/extra-typings';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runServeBench } from '../bench/serve/run.js';
import { verdictLine } from '../bench/serve/stats.js';
import type { Verdict } from '../bench/serve/stats.js';
import { inputError } from '../io/errors.js';
import { intArg } from './options.js';
import { writeOut } from './stdout.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** The bundled Mamba, which `frugal serve` serves when given no --model. */
const BUNDLED_MAMBA = fileURLToPath(new URL('../../models/mamba-sotu', import.meta.url));

const collect = (v: string, all: string[]) => [...all, v];

export function registerBenchServe(bench: Command): void {
  bench
    .command('serve')
    .description('frugal serve through its HTTP API: latency at 1/8/64 streams, throughput against batched decode, snapshots, restart')
    .option('--quick', 'a smoke run of seconds: few requests, a short conversation, few sessions')
    .option('--model <dir>', 'checkpoint to serve and to decode in-process (default: the bundled Mamba)')
    .option('--long-tokens <n>', 'length of the long conversation in tokens (default 100000; --quick 2000)', intArg(1))
    .option('--turn-tokens <n>', 'the long conversation is sent in turns of at most this many tokens', intArg(1), 16384)
    .option('--sessions <n>', 'sessions persisted before the restart (default 1000; --quick 20)', intArg(1))
    .option('--threads <n>', 'threads of the in-process batched-decode reference', intArg(1, 256), 1)
    .option(
      '--server-arg <arg>',
      'one more flag for `frugal serve` (repeat for several, e.g. --server-arg=--max-streams=64)',
      collect,
      [] as string[],
    )
    .action(async (o) => {
      const model = o.model ?? BUNDLED_MAMBA;
      if (!existsSync(model)) {
        throw inputError(`bench serve: no model at ${model}: pass --model DIR (a checkpoint folder) or restore the bundled models/`);
      }
      const doc = await runServeBench({
        quick: o.quick === true,
        model,
        passModel: o.model !== undefined,
        longTokens: o.longTokens ?? (o.quick ? 2000 : 100_000),
        turnTokens: o.turnTokens,
        sessions: o.sessions ?? (o.quick ? 20 : 1000),
        threads: o.threads,
        serverArgs: o.serverArg,
        command: `frugal ${process.argv.slice(2).join(' ')}`,
        log: err,
      });
      for (const v of doc.verdicts as Verdict[]) err(`bench serve: target: ${verdictLine(v)}`);
      writeOut(JSON.stringify(doc, null, 2) + '\n');
      const failed = doc.failed as string[];
      if (failed.length > 0) {
        err(`bench serve: ${failed.join(', ')} failed (their errors are in the JSON)`);
        process.exitCode = 1;
      }
    });
}
