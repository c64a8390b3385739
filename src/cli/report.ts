import cliProgress from 'cli-progress';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { inputError } from '../io/errors.js';
import { realOutputPath } from '../io/outputs.js';
import type { AnyCommand } from './options.js';
import { engineOptions } from './options.js';
import { floatArg, intArg } from './options.js';
import { runStudy } from '../report/synthetic.js';
import { readReport, REPORT_JSON, writeReport } from '../report/write.js';
import { formatJoules } from '../energy/index.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** The default budget: the full study's time on this 2-core machine shared with other work (see docs/synthetic). */
export const DEFAULT_BUDGET_MINUTES = 60;

/** The report's progress on stderr: a bar over the whole plan when stderr is a terminal, else a line per phase. */
export function studyProgress(): { update: (label: string, fraction: number) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'report [{bar}] {percentage}% | {phase} | {duration_formatted}',
        hideCursor: true,
        fps: 2,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1000, 0, { phase: 'starting' });
    return { update: (label, f) => bar.update(Math.round(1000 * f), { phase: label }), stop: () => bar.stop() };
  }
  let last = '';
  const t0 = performance.now();
  return {
    update(label, f) {
      const phase = label.replace(/ \d+\/\d+$/, '');
      if (phase === last) return;
      last = phase;
      err(`report ${(100 * f).toFixed(0)}% | ${phase} | ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    },
    stop() {},
  };
}

/**
 * A report folder is new, empty, or an earlier report (replaced only with --force): a folder that
 * holds anything else is the user's, and frugal does not write into it.
 */
function checkReportDir(out: string, force: boolean): void {
  const path = realOutputPath(out, '--out');
  if (!existsSync(path)) return;
  if (!statSync(path).isDirectory()) throw inputError(`--out ${out} is a file, not a folder; --out names the report folder`);
  const entries = readdirSync(path);
  if (entries.length === 0) return;
  if (!entries.includes(REPORT_JSON)) {
    throw inputError(
      `--out ${out} already exists and is not a frugal report (it holds ${entries.slice(0, 3).join(', ')}); choose a new folder`,
    );
  }
  if (!force) throw inputError(`--out ${out} already holds a report; pass --force to replace it`);
}

/** `frugal report synthetic`: the whole synthetic study into a folder. */
export function registerReport(program: AnyCommand): void {
  const group =
    program.commands.find((c) => c.name() === 'report') ?? program.command('report').description('studies that write a report folder');
  engineOptions(
    group
      .command('synthetic')
      .description('train and evaluate every model of the synthetic study; writes synthetic.json, synthetic.md, SVG charts and models/'),
  )
    .requiredOption('--out <dir>', 'report folder')
    .option('--quick', 'fixed small step counts and short lengths (what the test suite runs), no time budget')
    .option('--budget-minutes <n>', 'time budget of the full study, shared among its jobs', floatArg(1, 100000), DEFAULT_BUDGET_MINUTES)
    .option('--seed <n>', 'seed of every model and of the evaluation data', intArg(0, 2 ** 32), 1)
    .option('--render-only', "only write synthetic.md and the charts again from the folder's synthetic.json (after editing its NOTES.md)")
    .option('--force', 'replace the report already in --out')
    .action((o: Record<string, unknown>) => {
      const out = o.out as string;
      checkReportDir(out, o.force === true || o.renderOnly === true);
      if (o.renderOnly === true) {
        writeReport(out, readReport(out));
        err(`report: rendered ${out}/synthetic.md`);
        return;
      }
      const quick = o.quick === true;
      const command =
        `frugal report synthetic --out ${out}${quick ? ' --quick' : ''}` +
        (!quick && o.budgetMinutes !== DEFAULT_BUDGET_MINUTES ? ` --budget-minutes ${String(o.budgetMinutes)}` : '') +
        (o.seed !== 1 ? ` --seed ${String(o.seed)}` : '');
      const bar = studyProgress();
      const rep = runStudy({
        out,
        quick,
        budgetMinutes: o.budgetMinutes as number,
        threads: o.threads as number,
        seed: o.seed as number,
        command,
        progress: (label, f) => bar.update(label, f),
        log: (m) => err(`\n${m}`),
      });
      bar.stop();
      writeReport(out, rep);
      const h = rep.headline;
      err(
        `report: ${rep.tasks.length} models in ${rep.run.seconds.toFixed(0)} s; ` +
          (h
            ? `induction heads at ${h.length} tokens: Mamba ${(100 * h.accuracy.mamba).toFixed(1)}%, transformer ${(100 * h.accuracy.transformer).toFixed(1)}%, ` +
              `${formatJoules(h.joules_per_sequence.mamba)} vs ${formatJoules(h.joules_per_sequence.transformer)} J/sequence (${h.energy_kind}, ${h.ratio.toFixed(1)}×); `
            : '') +
          `wrote ${out}/synthetic.md`,
      );
    });
}
