import { generate } from '../api/generate.js';
import { loadModel } from '../api/model.js';
import type { Model } from '../api/model.js';
import { formatJoules } from '../energy/index.js';
import { inputError } from '../io/errors.js';
import { writeOut } from './stdout.js';
import type { WasmKind } from '../kernels/backend.js';

const err = (s: string) => process.stderr.write(s + '\n');

/** One measured configuration of `frugal bench --model`. */
export interface ModelBenchRow {
  model: string;
  adapter: string | null;
  parameters: number;
  prefill_tok_s: number;
  decode_tok_s: number;
  j_per_token: number;
  energy_kind: string;
  /** The kernel build that ran (`--kernels`): wasm or wasm-relaxed. */
  kernel_build: WasmKind;
}

/**
 * Greedy decoding of `tokens` tokens after a 64-token prompt, the best of 3 runs after a warm-up:
 * prefill and decode tokens/s and J/token of the whole call.
 */
function measure(model: Model, tokens: number): Omit<ModelBenchRow, 'model' | 'adapter' | 'parameters' | 'kernel_build'> {
  const prompt = Int32Array.from({ length: 64 }, (_, i) => (i * 7 + 3) % model.vocabSize);
  const once = () => generate(model, prompt, { maxTokens: tokens, temperature: 0 });
  once();
  const runs = [once(), once(), once()];
  const best = runs.reduce((a, b) => (b.decodeSeconds < a.decodeSeconds ? b : a));
  return {
    prefill_tok_s: best.promptTokens / Math.max(best.prefillSeconds, 1e-9),
    decode_tok_s: best.tokensPerSecond,
    j_per_token: Math.min(...runs.map((r) => r.energy.jPerToken)),
    energy_kind: best.energy.kind,
  };
}

/**
 * `frugal bench --model DIR [--adapter DIR]`: the speed and energy of decoding one checkpoint (the
 * speed benchmark's own models are random weights in published shapes), and with an adapter, the
 * same model with it attached (unmerged), so its cost shows beside the base's.
 */
export function benchModelCommand(o: {
  model: string;
  adapter?: string;
  threads: number;
  kernels?: WasmKind;
  tokens?: number;
  json?: boolean;
}): void {
  if (o.adapter !== undefined && o.model === undefined) throw inputError('bench: --adapter needs --model, the base it runs on');
  const kernels = o.kernels ?? 'wasm';
  const model = loadModel(o.model, { threads: o.threads, kernels });
  try {
    const n = o.tokens ?? 64;
    const rows: ModelBenchRow[] = [];
    const row = (adapter: string | null) => ({
      model: o.model,
      adapter,
      parameters: model.parameters,
      ...measure(model, n),
      kernel_build: kernels,
    });
    rows.push(row(null));
    if (o.adapter !== undefined) {
      model.useAdapter(o.adapter);
      rows.push(row(o.adapter));
    }
    for (const r of rows) {
      err(
        `bench: ${r.model}${r.adapter ? ` + ${r.adapter}` : ''}: prefill ${r.prefill_tok_s.toFixed(0)} tok/s, decode ${r.decode_tok_s.toFixed(1)} tok/s, ` +
          `${formatJoules(r.j_per_token)} J/token (${r.energy_kind}), ${o.threads} thread${o.threads > 1 ? 's' : ''}, kernels ${kernels}`,
      );
    }
    if (o.json === true) writeOut(JSON.stringify(rows, null, 2) + '\n');
  } finally {
    model.dispose();
  }
}
