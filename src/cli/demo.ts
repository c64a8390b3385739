import { Engine, valueAndGrad } from '../ops/index.js';
import { Rng } from '../io/rng.js';
import { createMambaConfig } from '../models/mamba/config.js';
import { MambaLM } from '../models/mamba/model.js';
import { ByteTokenizer } from '../io/tokenizer.js';
import { generate } from '../infer/generate.js';
import { startEnergy, formatJPerToken } from '../energy/index.js';
import { trainCommand } from './commands.js';
import { writeOut } from './stdout.js';
import { checkOutputDir } from '../io/outputs.js';

const DEMO = { dModel: 128, layers: 2, dState: 16, seqLen: 128, batch: 8 };

/**
 * `npm start`: size the run to the time budget (timing two training steps of the same shape), train
 * on the State of the Union corpus, stream a sample to stdout, and print the summary to stderr.
 */
export async function demoCommand(o: { out: string; seconds: number; kernels: 'wasm' | 'ref'; threads: number; force?: boolean }): Promise<void> {
  checkOutputDir(o.out, { flag: '--out', force: o.force }); // before the timing probe: fail fast
  const e = new Engine({ kernels: o.kernels, threads: o.threads });
  const probe = new MambaLM(e, createMambaConfig({ dModel: DEMO.dModel, nLayer: DEMO.layers, dState: DEMO.dState, vocabSize: 256 })).init(Rng.fromSeed(0));
  for (const t of probe.params.values()) t.grad = e.persistent(t.shape);
  const ids = new Int32Array(DEMO.batch * DEMO.seqLen).fill(65);
  valueAndGrad(e, () => probe.loss(ids, ids, DEMO.batch, DEMO.seqLen)); // warm-up
  const t0 = performance.now();
  valueAndGrad(e, () => probe.loss(ids, ids, DEMO.batch, DEMO.seqLen));
  const stepSeconds = (performance.now() - t0) / 1000 * 1.15; // + optimiser and bookkeeping
  e.dispose(); // the probe's workers; its memory goes with the engine
  const steps = Math.max(20, Math.min(5000, Math.floor(o.seconds * 0.9 / stepSeconds)));
  process.stderr.write(`demo: training a ${DEMO.layers}-layer Mamba (d_model ${DEMO.dModel}) for ${steps} steps (~${o.seconds} s) on State of the Union addresses\n`);
  const { model, summary } = await trainCommand({
    arch: 'mamba', data: 'sotu', out: o.out, ...DEMO, steps, lr: 3e-3, warmup: Math.min(50, Math.floor(steps / 10)), minLr: 3e-4,
    weightDecay: 0.1, clip: 1, seed: 1, evalEvery: 0, evalWindows: 64, saveEvery: 0, valFraction: 0.05,
    kernels: o.kernels, threads: o.threads, resume: false, force: o.force === true, init: null,
  });
  const tok = new ByteTokenizer();
  const prompt = 'The state of the Union is ';
  const dec = tok.createStreamDecoder();
  writeOut(prompt);
  const energy = startEnergy();
  const r = generate(model, tok.encode(prompt), 300, { temperature: 0.7, topK: 0, topP: 0.95 }, Rng.fromSeed(7),
    (id) => { const s = dec.push(id); if (s) writeOut(s); });
  writeOut(dec.flush() + '\n');
  const genTps = r.ids.length / Math.max(r.decodeSeconds, 1e-9);
  process.stderr.write(`demo: ${summary.parameters.toLocaleString('en-US')} parameters | training ${summary.trainTokPerSec.toFixed(0)} tok/s | ` +
    `generation ${genTps.toFixed(1)} tok/s, ${formatJPerToken(energy.stop(r.ids.length + r.promptTokens))} | ` +
    `validation ${summary.valBpb.toFixed(3)} bits/byte vs unigram entropy ${summary.unigramBpb.toFixed(3)} | model in ${o.out}\n`);
}
