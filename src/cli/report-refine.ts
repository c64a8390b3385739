import { writeDirAtomic } from '../io/atomic.js';
import { openOutputDir } from '../io/outputs.js';
import { refineMarkdown, refineSvg } from '../report/refine-md.js';
import { runRefine } from '../report/refine.js';
import { engineOptions, floatArg, forceOption, seedOption } from './options.js';
import type { AnyCommand } from './options.js';

const err = (s: string) => process.stderr.write(s + '\n');

export interface ReportRefineOpts {
  out: string;
  quick: boolean;
  budgetMinutes: number;
  threads: number;
  seed: number;
  force?: boolean;
}

/**
 * `frugal report refine`: run the refinement study (src/report/refine.ts) and write
 * DIR/refine.json, DIR/refine.md and the chart DIR/refine.svg in one atomic folder write.
 */
export function reportRefineCommand(o: ReportRefineOpts, command: string): void {
  const out = openOutputDir(o.out, { flag: '--out', force: o.force }, (m) => err(`warning: ${m}`));
  try {
    const r = runRefine({ quick: o.quick, budgetMinutes: o.budgetMinutes, threads: o.threads, seed: o.seed, log: err });
    writeDirAtomic(out.path, {
      'refine.json': JSON.stringify({ command, ...r }, null, 2) + '\n',
      'refine.md': refineMarkdown(r, command),
      'refine.svg': refineSvg(r),
    });
    err(`report refine: ${r.target.statement}; written to ${o.out}/refine.md in ${(r.seconds / 60).toFixed(1)} min`);
  } finally {
    out.release();
  }
}

/** Add `refine` to a `report` command (the one `frugal report` has, or a new one). */
export function addReportRefine(report: AnyCommand): void {
  const cmd = engineOptions(
    report
      .command('refine')
      .description(
        'does a small model refined for a task beat a 4x larger general one, at a fraction of its J/token? (a held-out era of the State of the Union)',
      ),
  )
    .requiredOption('--out <dir>', 'folder for refine.json, refine.md and refine.svg')
    .option('--quick', 'tiny models and a few steps: a smoke test of the whole pipeline in under a minute')
    .option('--budget-minutes <n>', 'time the full run is sized to (training steps are set from timed steps)', floatArg(1, 1440), 60);
  forceOption(seedOption(cmd, 'seed of every model and data order'), 'replace a report frugal wrote before in --out').action((o) =>
    reportRefineCommand({ ...o, quick: o.quick === true }, `frugal ${process.argv.slice(2).join(' ')}`),
  );
}

/** Register `frugal report refine`, adding to the program's `report` command if it has one. */
export function registerReportRefine(program: AnyCommand): void {
  const existing = program.commands.find((c) => c.name() === 'report') as AnyCommand | undefined;
  addReportRefine(
    existing ?? program.command('report').description('reports: `report refine` runs the small-and-refined vs big-and-general study'),
  );
}
