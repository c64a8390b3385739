import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readableDir } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { ARCHITECTURES } from '../models/factory.js';
import { trainCommand } from './train.js';
import type { Command } from 'commander';
import { engineFlags, runOptions, runSettings } from './finetune.js';
import type { RunFlags } from './finetune.js';
import { floatArg, intArg } from './options.js';
import type { AnyCommand } from './options.js';

interface DistillFlags extends RunFlags {
  teacher: string;
  student?: string;
  arch?: string;
  dModel: number;
  layers: number;
  dState: number;
  heads?: number;
  data: string;
  temperature: number;
  alpha: number;
}

export function registerDistill(program: AnyCommand): void {
  const cmd = engineFlags((program as unknown as Command).command('distill'))
    .description("train a student on a teacher's next-token distributions mixed with the text's next tokens")
    .requiredOption('--teacher <dir>', 'the teacher model folder (any architecture and size; frozen)')
    .option('--student <dir>', "start the student from this model folder (it must share the teacher's tokenizer)")
    .option('--arch <name>', `or build a new student: ${ARCHITECTURES.join(' or ')} (it takes the teacher's tokenizer)`)
    .option('--d-model <n>', 'new student: width D', intArg(1, 65536), 128)
    .option('--layers <n>', 'new student: layers', intArg(1, 1024), 2)
    .option('--d-state <n>', 'new Mamba student: SSM state size N', intArg(1, 1024), 16)
    .option('--heads <n>', 'new transformer student: attention heads', intArg(1, 4096))
    .requiredOption('--data <file|sotu>', "the text to distil on: a file, or 'sotu'")
    .requiredOption('--out <dir>', 'the student checkpoint folder (plus optimiser state for --resume)')
    .option('--temperature <T>', 'softmax temperature of both distributions in the soft loss', floatArg(0.01, 100), 2)
    .option('--alpha <a>', 'weight of the soft loss (alpha · T² · KL); the next-token loss gets 1 − alpha', floatArg(0, 1), 0.5);
  runOptions(cmd, { steps: 300, warmup: 30, weightDecay: 0.1, lrHelp: '2e-3 for a new student, 3e-4 for --student' }).action(
    (o: DistillFlags, c: Command) => distillCommand(o, c),
  );
}

/** `frugal distill`: a new student (with the teacher's tokenizer) or one from a folder, trained against the teacher. */
async function distillCommand(o: DistillFlags, c: { getOptionValueSource(key: string): string | undefined }): Promise<void> {
  if ((o.student === undefined) === (o.arch === undefined))
    throw inputError('distill: give the student as --student DIR, or build one with --arch mamba|transformer (one of the two)');
  const sizes = ['dModel', 'layers', 'dState', 'heads'].filter((k) => c.getOptionValueSource(k) === 'cli');
  if (o.student !== undefined && sizes.length > 0)
    throw inputError(
      `--${sizes[0].replace(/[A-Z]/g, (x) => '-' + x.toLowerCase())} has no effect with --student: its shape comes from ${o.student}/config.json`,
    );
  // a new student reads text with the teacher's tokenizer (its tokenizer.json, or bytes)
  const teacherTok = existsSync(join(readableDir(o.teacher).dir, 'tokenizer.json')) ? o.teacher : null;
  const { teacher: _t, student: _s, temperature: _T, alpha: _a, ...rest } = o;
  const settings = runSettings(rest, c, {
    steps: o.steps,
    warmup: o.warmup,
    weightDecay: o.weightDecay,
    lr: o.student !== undefined ? 3e-4 : 2e-3,
    arch: o.arch ?? 'mamba',
    dModel: o.dModel,
    layers: o.layers,
    dState: o.dState,
    ...(o.heads !== undefined ? { heads: o.heads } : {}),
  });
  await trainCommand(
    {
      ...settings,
      data: o.data,
      init: o.student ?? null,
      tokenizer: o.student === undefined ? teacherTok : null,
      teacher: o.teacher,
      temperature: o.temperature,
      alpha: o.alpha,
    },
    o,
  );
}
