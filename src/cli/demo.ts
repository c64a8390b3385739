import { Engine, valueAndGrad } from '../ops/index.js';
import { Rng } from '../io/rng.js';
import { createMambaConfig } from '../models/mamba/config.js';
import { MambaLM } from '../models/mamba/model.js';
import { generate } from '../api/generate.js';
import type { RunOptions } from '../api/model.js';
import { formatJPerToken } from '../energy/index.js';
import { trainCommand } from './train.js';
import { writeOut } from './stdout.js';
import { checkOutputDir } from '../io/outputs.js';
import { engineOptions, forceOption, intArg } from './options.js';
import type { AnyCommand } from './options.js';

const DEMO = { dModel: 128, layers: 2, dState: 16, seqLen: 128, batch: 8 };

export function registerDemo(program: AnyCommand): void {
  const cmd = engineOptions(
    program.command('demo').description('npm start: train a small model on the default corpus for about a minute, then generate'),
  )
    .option('--out <dir>', 'where to save the model', 'runs/demo')
    .option('--seconds <n>', 'approximate training time budget', intArg(5, 36000), 60);
  forceOption(cmd, 'replace the checkpoint an earlier demo left in --out').action((o) => demoCommand(o));
}

/** Seconds of one training step of the demo's shape (timed after a warm-up step), optimiser included. */
function stepSeconds(o: Required<RunOptions>): number {
  const e = new Engine(o);
  const probe = new MambaLM(e, createMambaConfig({ dModel: DEMO.dModel, nLayer: DEMO.layers, dState: DEMO.dState, vocabSize: 256 })).init(
    Rng.fromSeed(0),
  );
  for (const t of probe.params.values()) t.grad = e.persistent(t.shape);
  const ids = new Int32Array(DEMO.batch * DEMO.seqLen).fill(65);
  valueAndGrad(e, () => probe.loss(ids, ids, DEMO.batch, DEMO.seqLen)); // warm-up
  const t0 = performance.now();
  valueAndGrad(e, () => probe.loss(ids, ids, DEMO.batch, DEMO.seqLen));
  const seconds = ((performance.now() - t0) / 1000) * 1.15; // + optimiser and bookkeeping
  e.dispose(); // the probe's workers; its memory goes with the engine
  return seconds;
}

/**
 * `npm start`: size the run to the time budget (timing two training steps of the same shape), train
 * on the State of the Union corpus, stream a sample to stdout, and print the summary to stderr.
 */
export async function demoCommand(o: Required<RunOptions> & { out: string; seconds: number; force?: boolean }): Promise<void> {
  checkOutputDir(o.out, { flag: '--out', force: o.force }); // before the timing probe: fail fast
  const steps = Math.max(20, Math.min(5000, Math.floor((o.seconds * 0.9) / stepSeconds(o))));
  process.stderr.write(
    `demo: training a ${DEMO.layers}-layer Mamba (d_model ${DEMO.dModel}) for ${steps} steps (~${o.seconds} s) on State of the Union addresses\n`,
  );
  const trained = await trainCommand({
    arch: 'mamba',
    data: 'sotu',
    out: o.out,
    ...DEMO,
    steps,
    lr: 3e-3,
    warmup: Math.min(50, Math.floor(steps / 10)),
    minLr: 3e-4,
    weightDecay: 0.1,
    clip: 1,
    seed: 1,
    evalEvery: 0,
    evalWindows: 64,
    saveEvery: 0,
    valFraction: 0.05,
    kernels: o.kernels,
    threads: o.threads,
    resume: false,
    force: o.force === true,
    init: null,
  });
  const prompt = 'The state of the Union is ';
  writeOut(prompt);
  const r = generate(trained.model, prompt, { maxTokens: 300, temperature: 0.7, topK: 0, topP: 0.95, seed: 7, onText: writeOut });
  writeOut('\n');
  process.stderr.write(
    `demo: ${trained.parameters.toLocaleString('en-US')} parameters | training ${trained.tokensPerSecond.toFixed(0)} tok/s | ` +
      `generation ${r.tokensPerSecond.toFixed(1)} tok/s, ${formatJPerToken(r.energy)} | ` +
      `validation ${trained.valBpb.toFixed(3)} bits/byte vs unigram entropy ${trained.unigramBpb.toFixed(3)} | model in ${o.out}\n`,
  );
}
