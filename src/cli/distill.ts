import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readableDir } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { ARCHITECTURES } from '../models/factory.js';
import type { TrainOptions } from '../train/trainer.js';
import { floatArg, intArg } from './args.js';
import { trainCommand } from './commands.js';
import { addTrainerFlags, trainerOptions } from './finetune.js';

/** Register `frugal distill` (with the common --kernels/--threads options). */
export function registerDistill(program: Command, common: (c: Command) => Command): void {
  const cmd = common(program.command('distill').description("train a student on a teacher's next-token distributions mixed with the text's next tokens"))
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
  addTrainerFlags(cmd, { steps: 300, lr: '2e-3 for a new student, 3e-4 for --student', warmup: 30, weightDecay: 0.1 })
    .action(async (o: Record<string, unknown>, c: Command) => {
      if ((o.student === undefined) === (o.arch === undefined)) throw inputError('distill: give the student as --student DIR, or build one with --arch mamba|transformer (one of the two)');
      const sizes = ['dModel', 'layers', 'dState', 'heads'].filter((k) => c.getOptionValueSource(k) === 'cli');
      if (o.student !== undefined && sizes.length > 0) {
        throw inputError(`--${sizes[0].replace(/[A-Z]/g, (x) => '-' + x.toLowerCase())} has no effect with --student: its shape comes from ${String(o.student)}/config.json`);
      }
      // a new student reads text with the teacher's tokenizer (its tokenizer.json, or bytes)
      const teacherTok = existsSync(join(readableDir(o.teacher as string).dir, 'tokenizer.json')) ? o.teacher as string : null;
      const base = trainerOptions(o, c, o.student !== undefined ? 3e-4 : 2e-3);
      const opts: TrainOptions = {
        ...base, arch: (o.arch as string | undefined) ?? 'mamba', data: o.data as string, out: o.out as string,
        dModel: o.dModel as number, layers: o.layers as number, dState: o.dState as number,
        ...(o.heads !== undefined ? { heads: o.heads as number } : {}),
        init: (o.student as string | undefined) ?? null, tokenizer: o.student === undefined ? teacherTok : null,
        teacher: o.teacher as string, temperature: o.temperature as number, alpha: o.alpha as number,
        explicit: [...(base.explicit ?? []), 'teacher', 'init', 'tokenizer', 'arch'],
      };
      await trainCommand(opts, { energyLog: o.energyLog as string | undefined, tdp: o.tdp as number | undefined });
    });
}
