import { writeDirAtomic } from '../io/atomic.js';
import { openOutputDir } from '../io/outputs.js';
import { DEFAULT_GENOME_ROOT } from '../genome/sources.js';
import { runGenomics } from '../report/genome.js';
import { GENOMICS_MD, genomicsFiles, per100k } from '../report/genome-md.js';
import { formatJoules } from '../energy/index.js';
import { engineOptions, floatArg, forceOption, intArg, seedOption } from './options.js';
import type { AnyCommand } from './options.js';
import { studyProgress } from './report.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** The default budget of the full study on this 2-core machine shared with other work. */
export const GENOMICS_BUDGET_MINUTES = 60;

interface GenomicsCliOptions {
  out: string;
  quick?: boolean;
  budgetMinutes: number;
  seeds?: number;
  seed: number;
  threads: number;
  rcEquivariant?: boolean;
  genomes: string;
  force?: boolean;
}

/**
 * `frugal report genomics`: run the genome study (src/report/genome.ts) and write DIR/genomics.json,
 * DIR/genomics.md and the SVG charts in one atomic folder write. A genome file that is missing is
 * an input error naming the Debian package that provides it.
 */
function reportGenomics(o: GenomicsCliOptions): void {
  const quick = o.quick === true;
  const command =
    `frugal report genomics --out ${o.out}${quick ? ' --quick' : ''}` +
    (!quick && o.budgetMinutes !== GENOMICS_BUDGET_MINUTES ? ` --budget-minutes ${String(o.budgetMinutes)}` : '') +
    (o.seeds !== undefined ? ` --seeds ${String(o.seeds)}` : '') +
    (o.seed !== 1 ? ` --seed ${String(o.seed)}` : '') +
    (o.rcEquivariant ? ' --rc-equivariant' : '') +
    (o.genomes !== DEFAULT_GENOME_ROOT ? ` --genomes ${o.genomes}` : '');
  const out = openOutputDir(o.out, { flag: '--out', force: o.force, inputs: [o.genomes] }, (m) => err(`warning: ${m}`));
  try {
    const bar = studyProgress();
    const rep = runGenomics({
      quick,
      budgetMinutes: o.budgetMinutes,
      threads: o.threads,
      seed: o.seed,
      seeds: o.seeds,
      root: o.genomes,
      rc: o.rcEquivariant === true,
      command,
      progress: (label, f) => bar.update(label, f),
      log: (m) => err(`\n${m}`),
    });
    bar.stop();
    writeDirAtomic(out.path, genomicsFiles(rep));
    const cost = per100k(rep)
      .filter((c) => c.joules !== null)
      .map((c) => `${c.arch} ${formatJoules(c.joules as number)} J`);
    err(
      `report genomics: ${rep.runs.length} models in ${rep.run.seconds.toFixed(0)} s; ` +
        (cost.length ? `per 100k-base window ${cost.join(', ')} (estimated unless measured); ` : '') +
        `wrote ${o.out}/${GENOMICS_MD}`,
    );
  } finally {
    out.release();
  }
}

/** Register `frugal report genomics`, adding to the program's `report` command if it has one. */
export function registerReportGenomics(program: AnyCommand): void {
  const report =
    (program.commands.find((c) => c.name() === 'report') as AnyCommand | undefined) ??
    program.command('report').description('studies that write a report folder');
  const cmd = engineOptions(
    report
      .command('genomics')
      .description(
        'nucleotide models on real genomes (Debian packages ragout-examples and emboss-test): strains, bits per base, HLA exons, motif pairs; writes genomics.json, genomics.md and SVG charts',
      ),
  )
    .requiredOption('--out <dir>', 'report folder')
    .option('--quick', 'tiny models, a few steps and short windows (what the test suite runs), no time budget')
    .option('--budget-minutes <n>', 'time budget of the full study, shared among its jobs', floatArg(1, 100000), GENOMICS_BUDGET_MINUTES)
    .option('--seeds <n>', 'seeds per model (default: 3, or 1 with --quick)', intArg(1, 100))
    .option('--rc-equivariant', "average each window's answer with its reverse complement's (reverse-complement invariant answers)")
    .option('--genomes <root>', 'folder the genome packages are installed under', DEFAULT_GENOME_ROOT);
  forceOption(
    seedOption(cmd, 'first seed of the models and of the evaluation data'),
    'replace a report frugal wrote before in --out',
  ).action((o) => reportGenomics(o as GenomicsCliOptions));
}
