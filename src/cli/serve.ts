import { fileURLToPath } from 'node:url';
import { Option } from '@commander-js/extra-typings';
import { serve } from '../server/server.js';
import { DEFAULT_STATE_DIR } from '../server/server.js';
import { engineOptions, floatArg, intArg } from './options.js';
import type { AnyCommand } from './options.js';

const err = (s: string) => process.stderr.write(s + '\n');
/** The bundled Mamba, found beside the package (dist/cli and src/cli are both two folders below its root). */
const BUNDLED_MODEL = fileURLToPath(new URL('../../models/mamba-sotu', import.meta.url));

/** `frugal serve`: the OpenAI-compatible streaming server with persistent state snapshots (src/server/). */
export function registerServe(program: AnyCommand): void {
  engineOptions(program.command('serve').description('serve a model over an OpenAI-compatible HTTP API with persistent state snapshots'))
    .option('--model <dir>', 'model directory (default: the bundled Mamba, models/mamba-sotu)')
    .option('--adapter <dir>', "a LoRA adapter folder (PEFT layout, from 'frugal finetune') to run on the model")
    .option('--port <n>', 'TCP port (0: any free port)', intArg(0, 65535), 8000)
    .option('--host <addr>', 'address to listen on (loopback unless told otherwise)', '127.0.0.1')
    .option('--api-key <key>', 'require Authorization: Bearer KEY on every route but /health')
    .option('--max-streams <n>', 'streams decoded together (as many more may wait in the queue)', intArg(1, 4096), 64)
    .addOption(
      new Option('--state-dir <dir>', `directory of snapshots and sessions (default ./${DEFAULT_STATE_DIR})`).conflicts('stateStore'),
    )
    .option('--state-store <url>', 'redis://HOST:PORT: snapshots, sessions and turn locks in Redis, shared by replicas')
    .option('--log-prompts', 'write prompts to the log (never by default)')
    .option('--tdp <watts>', 'CPU package power for the energy estimate in /metrics', floatArg(0.001, 1e5))
    .action(async (o) => {
      const { stop } = await serve({
        ...o,
        model: o.model ?? BUNDLED_MODEL,
        apiKey: o.apiKey,
        logPrompts: o.logPrompts === true,
        log: err,
      });
      const onSignal = (sig: NodeJS.Signals) => {
        err(`frugal serve: ${sig}`);
        stop().then(
          () => process.exit(0),
          (e: unknown) => {
            err(`frugal serve: ${e instanceof Error ? e.message : String(e)}`);
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      await new Promise<never>(() => {}); // serve until a signal
    });
}
