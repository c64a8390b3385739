import type { AnyCommand } from './options.js';
import { debugOption, floatArg } from './options.js';
import { checkReportDir, studyProgress } from './report.js';
import { runStreamsStudy } from '../report/streams.js';
import { STREAMS_JSON, readStreamsReport, writeStreamsReport } from '../report/streams-md.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** The default budget of the full streams study (minutes on this 2-core machine). */
export const STREAMS_BUDGET_MINUTES = 60;

/** `frugal report streams`: the streaming study into a folder. */
export function registerReportStreams(program: AnyCommand): void {
  const group =
    program.commands.find((c) => c.name() === 'report') ?? program.command('report').description('studies that write a report folder');
  debugOption(
    group
      .command('streams')
      .description(
        'train and stream Mamba and the transformer on market and sensor series; writes streams.json, streams.md, SVG charts and models/',
      ),
  )
    .requiredOption('--out <dir>', 'report folder')
    .option('--quick', 'tiny models, a few steps, short series and 2,000 latency ticks (what the test suite runs), no time budget')
    .option(
      '--budget-minutes <n>',
      'time budget of the full study (training is sized to fit it)',
      floatArg(1, 100000),
      STREAMS_BUDGET_MINUTES,
    )
    .option('--render-only', "only write streams.md and the charts again from the folder's streams.json (after editing its NOTES.md)")
    .option('--force', 'replace the report already in --out')
    .action((o: { out: string; quick?: boolean; budgetMinutes: number; renderOnly?: boolean; force?: boolean }) => {
      checkReportDir(o.out, o.force === true || o.renderOnly === true, STREAMS_JSON);
      if (o.renderOnly === true) {
        writeStreamsReport(o.out, readStreamsReport(o.out));
        err(`report: rendered ${o.out}/streams.md`);
        return;
      }
      const quick = o.quick === true;
      const command =
        `frugal report streams --out ${o.out}${quick ? ' --quick' : ''}` +
        (!quick && o.budgetMinutes !== STREAMS_BUDGET_MINUTES ? ` --budget-minutes ${String(o.budgetMinutes)}` : '');
      const bar = studyProgress();
      const rep = runStreamsStudy({
        out: o.out,
        quick,
        budgetMinutes: o.budgetMinutes,
        command,
        progress: (label, fr) => bar.update(label, fr),
        log: (m) => err(`\n${m}`),
      });
      bar.stop();
      writeStreamsReport(o.out, rep);
      const l = rep.latency;
      err(
        `report: ${rep.series.length} series, ${rep.series.reduce((a, s) => a + s.models.length, 0)} models in ${rep.run.seconds.toFixed(0)} s; ` +
          l.map((x) => `${x.arch} p50 ${x.p50_us.toFixed(1)} µs/tick`).join(', ') +
          `; wrote ${o.out}/streams.md`,
      );
    });
}
