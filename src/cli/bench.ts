import { registerSpeed } from './bench-speed.js';
import { registerScaling } from './bench-scaling.js';
import { registerBenchWeb } from './bench-web.js';
import { registerBenchServe } from './bench-serve.js';
import type { AnyCommand } from './options.js';

/**
 * `frugal bench`: the speed benchmark when given no subcommand (bench-speed.ts, over
 * src/bench/speed/), `frugal bench scaling` (bench-scaling.ts, over src/bench/scaling/) and
 * `frugal bench serve` (bench-serve.ts, over src/bench/serve/).
 */
export function registerBench(program: AnyCommand): void {
  // `bench` has options of its own (the speed benchmark's); for `frugal bench scaling --quick` to
  // reach `scaling`, the program must stop reading options at the subcommand name too
  program.enablePositionalOptions();
  const bench = program
    .command('bench')
    .description(
      'measurements; `bench scaling`: Mamba vs transformer across context lengths; `bench web`: the page against Node; `bench serve`: frugal serve through its HTTP API',
    );
  registerScaling(bench);
  registerBenchWeb(bench);
  registerBenchServe(bench);
  registerSpeed(bench);
}
