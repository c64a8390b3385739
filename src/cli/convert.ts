/**
 * `frugal convert`: move a Mamba checkpoint between the layouts people use (the conversion itself
 * is src/models/convert.ts): --to hf | original | gguf, --dtype f32 | f16 (| q8_0 | q4_0 for gguf).
 */
import { InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { openConvertOutput } from '../models/convert.js';
import type { ConvertOpts } from '../models/convert.js';
import { startEnergy } from '../energy/index.js';
import { runInWorker } from './interrupt.js';
import { debugOption, forceOption, modelOption } from './options.js';
import type { AnyCommand } from './options.js';

export function registerConvert(program: AnyCommand): void {
  const cmd = modelOption(
    program
      .command('convert')
      .description('convert a Mamba checkpoint: state-spaces <-> Hugging Face layout, f32 -> f16, or to a llama.cpp GGUF file'),
    'checkpoint directory (either layout; model.safetensors, shards or pytorch_model.bin)',
  )
    .requiredOption('--out <path>', 'output directory (--to hf, original) or .gguf file (--to gguf)')
    .addOption(
      new Option('--to <layout>', 'hf: transformers; original: state-spaces mamba_ssm; gguf: llama.cpp')
        .choices(['hf', 'original', 'gguf'] as const)
        .default('hf'),
    )
    .addOption(
      new Option('--dtype <type>', 'tensor type (default: as stored, lossless); q8_0 and q4_0 for gguf only').choices([
        'f32',
        'f16',
        'q8_0',
        'q4_0',
      ] as const),
    )
    .option('--max-shard-size <size>', 'hf: split model.safetensors into shards past this size, e.g. 2GB', sizeArg, 5e9);
  debugOption(forceOption(cmd, 'replace an existing --out (a frugal checkpoint, or the .gguf file)')).action((o) =>
    convertCommand({ ...o, maxShardBytes: o.maxShardSize, force: o.force === true }),
  );
}

/**
 * The CLI command: check the output (a folder is locked too), convert in a worker thread (Ctrl-C
 * leaves no partial file), then one summary line on stderr (throughput and energy, with its kind).
 */
export async function convertCommand(o: ConvertOpts): Promise<void> {
  const log = (m: string) => process.stderr.write(m + '\n');
  const out = openConvertOutput(o, log);
  try {
    const t0 = performance.now();
    const energy = startEnergy();
    const { model, to, dtype, maxShardBytes } = o;
    const r = await runInWorker<{ tensors: number; bytes: number }>(
      { task: 'convert', options: { model, out: out.path, to, dtype, maxShardBytes } },
      out.cleanUp,
    );
    const sec = (performance.now() - t0) / 1000;
    const e = energy.stop();
    const mib = r.bytes / 2 ** 20;
    log(
      `convert: ${o.model} -> ${o.out} (${o.to}${o.dtype ? `, ${o.dtype}` : ''}): ${r.tensors} tensors, ${mib.toFixed(1)} MiB ` +
        `in ${sec.toFixed(2)} s (${(mib / Math.max(sec, 1e-9)).toFixed(1)} MiB/s), ${e.joules.toFixed(2)} J (${e.kind})`,
    );
  } finally {
    out.release();
  }
}

const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 };

/** A size flag: bytes, or a number with KB / MB / GB (powers of 1000, as transformers' max_shard_size). */
export function sizeArg(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?\s*$/i.exec(v);
  if (!m) throw new InvalidArgumentError(`expected a size like 2GB or 500MB, got '${v}'`);
  const n = Number(m[1]) * SIZE_UNITS[(m[2] ?? 'B').toUpperCase()];
  if (!(n >= 1)) throw new InvalidArgumentError(`must be at least 1 byte, got '${v}'`);
  return Math.floor(n);
}
