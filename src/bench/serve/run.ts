/**
 * `frugal bench serve`: the server measured from outside, through its OpenAI HTTP API, as a
 * client sees it. It starts `frugal serve` as a child process on a free loopback port and measures
 *   - time to first token and inter-token latency (p50/p99) at 1, 8 and 64 concurrent streams;
 *   - aggregate tokens/s at 64 streams against `frugal bench`'s batched decode (streamsRate, run
 *     here in-process on the same checkpoint), rounds interleaved so that both see the same machine;
 *   - a long conversation continued from its snapshot (`previous_response_id`) against a fresh
 *     request that re-processes its whole history;
 *   - restart to first token with many persisted sessions (the server is killed, then started again).
 *
 * What it relies on of the server: `frugal serve --port P --host 127.0.0.1 --state-dir DIR
 * [--model DIR]`; GET /health 200 when ready; GET /v1/models `{"data":[{"id"}]}`; POST
 * /v1/completions with `model, prompt, max_tokens, temperature, stream: true, stream_options:
 * {include_usage: true}` and the extension fields `previous_response_id` and `session_id`,
 * answering `data: {"id", "choices":[{"text"}], "usage"}` events and `data: [DONE]`, the
 * response `id` being the snapshot a later `previous_response_id` continues; POST /v1/sessions
 * `{}` answering `{"id"}`; GET /v1/sessions/{id} 200 for a known session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadModel } from '../../api/model.js';
import type { Model } from '../../api/model.js';
import { median } from '../formulas.js';
import { TokenCounter, streamsRate } from '../speed/models.js';
import { type Api, apiOf, complete, errorsOf, pool, streamTokens } from './client.js';
import { Prompts } from './prompts.js';
import { type ServeOptions, freePort, serveArgs, startServe, waitHealthy } from './server.js';
import { type ServerHolder, longConversation, restart } from './sessions.js';
import {
  type Latency,
  type Rate,
  type Verdict,
  aggregateRate,
  continuationVerdict,
  firstTokenTimes,
  interTokenGaps,
  latency,
  throughputVerdict,
} from './stats.js';

export interface ServeBenchOptions {
  quick: boolean;
  /** The checkpoint folder (the bundled Mamba when --model was not given). */
  model: string;
  /** Whether to pass --model to the server (else it serves its default, the same bundled Mamba). */
  passModel: boolean;
  longTokens: number;
  turnTokens: number;
  sessions: number;
  /** Threads of the in-process batched-decode reference. */
  threads: number;
  /** More flags for `frugal serve`. */
  serverArgs: string[];
  command: string;
  log: (line: string) => void;
}

export interface LevelResult {
  streams: number;
  requests: number;
  max_tokens: number;
  tokens: number;
  errors: string[];
  ttft: Latency;
  itl: Latency;
  rate: Rate;
}

/** The size of each part: `--quick` is a smoke run of seconds, the default the targets' sizes. */
export function plan(quick: boolean) {
  return {
    levels: [1, 8, 64],
    requestsPerLevel: (c: number) => (quick ? Math.max(2, c) : Math.max(16, 2 * c)),
    maxTokens: quick ? 8 : 128,
    throughputRounds: quick ? 1 : 3,
    throughputTokens: quick ? 16 : 256,
    referenceSteps: quick ? 4 : 64,
    referenceSeconds: quick ? 0.1 : 2,
    continueRepeats: quick ? 2 : 5,
  };
}

export async function runServeBench(o: ServeBenchOptions): Promise<Record<string, unknown>> {
  const p = plan(o.quick);
  const model = loadModel(o.model, { threads: o.threads });
  const stateDir = mkdtempSync(join(tmpdir(), 'frugal-bench-serve-'));
  try {
    return await measure(o, p, model, stateDir);
  } finally {
    model.dispose();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Every part in turn against one server (the restart replaces it); a part that fails records its error and the next runs. */
async function measure(o: ServeBenchOptions, p: ReturnType<typeof plan>, model: Model, stateDir: string): Promise<Record<string, unknown>> {
  const started = performance.now();
  const prompts = new Prompts();
  const serve: ServeOptions = { port: await freePort(), stateDir, model: o.passModel ? o.model : undefined, extra: o.serverArgs };
  const doc: Record<string, unknown> = {
    command: o.command,
    quick: o.quick,
    model: o.model,
    server_args: serveArgs(serve),
    reference_threads: o.threads,
    node: process.version,
    cpus: availableParallelism(),
  };
  const failed: string[] = [];
  const part = async (name: string, fn: () => Promise<unknown>) => {
    try {
      doc[name] = await fn();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      o.log(`bench serve: ${name} failed: ${msg}`);
      doc[name] = { error: msg };
      failed.push(name);
    }
  };
  o.log(`bench serve: starting frugal ${serveArgs(serve).join(' ')}`);
  const holder: ServerHolder = { current: startServe(serve) };
  try {
    await waitHealthy(holder.current, 300_000);
    const api = await apiOf(holder.current.base);
    doc.model_id = api.model;
    await part('latency', () => latencyLevels(api, prompts, p, o.log));
    await part('throughput', () => throughput(api, prompts, model, p, o.log));
    const long = { longTokens: o.longTokens, turnTokens: o.turnTokens, repeats: p.continueRepeats, log: o.log };
    await part('long_conversation', () => longConversation(api, prompts, model.text().tokenizer, long));
    await part('restart', () => restart(api, holder, serve, prompts, { sessions: o.sessions, log: o.log }));
  } finally {
    await holder.current.stop('SIGTERM');
  }
  doc.verdicts = verdicts(doc);
  doc.failed = failed;
  doc.seconds = (performance.now() - started) / 1000;
  return doc;
}

/** The targets the measured parts can be held to. */
export function verdicts(doc: Record<string, unknown>): Verdict[] {
  const out: Verdict[] = [];
  const t = doc.throughput as { server_tok_s?: number; reference_tok_s?: number } | undefined;
  if (t?.server_tok_s !== undefined && t.reference_tok_s !== undefined) out.push(throughputVerdict(t.server_tok_s, t.reference_tok_s));
  const l = doc.long_conversation as { continued_ttft_ms?: number; reprocessed_ttft_ms?: number } | undefined;
  if (l?.continued_ttft_ms !== undefined && l.reprocessed_ttft_ms !== undefined)
    out.push(continuationVerdict(l.continued_ttft_ms, l.reprocessed_ttft_ms));
  return out;
}

/** Runs `requests` streams, `streams` at a time, and summarises them. */
async function level(api: Api, prompts: Prompts, streams: number, requests: number, maxTokens: number, offset = 0): Promise<LevelResult> {
  const rs = await pool(requests, streams, (i) => complete(api, prompts.short(offset + i), maxTokens));
  const ok = rs.filter((r) => r.error === null);
  const timed = ok.map((r) => ({ start: r.start, tokenTimes: r.tokenTimes, tokens: streamTokens(r) }));
  return {
    streams,
    requests,
    max_tokens: maxTokens,
    tokens: timed.reduce((a, s) => a + s.tokens, 0),
    errors: errorsOf(rs),
    ttft: latency(firstTokenTimes(timed)),
    itl: latency(interTokenGaps(timed)),
    rate: aggregateRate(timed),
  };
}

async function latencyLevels(api: Api, prompts: Prompts, p: ReturnType<typeof plan>, log: (l: string) => void): Promise<LevelResult[]> {
  const out: LevelResult[] = [];
  for (const c of p.levels) {
    const r = await level(api, prompts, c, p.requestsPerLevel(c), p.maxTokens);
    log(
      `bench serve: ${c} stream${c > 1 ? 's' : ''}: TTFT p50 ${r.ttft.p50_ms.toFixed(1)} ms p99 ${r.ttft.p99_ms.toFixed(1)} ms, ` +
        `ITL p50 ${r.itl.p50_ms.toFixed(2)} ms p99 ${r.itl.p99_ms.toFixed(2)} ms, ${r.errors.length} error kinds`,
    );
    if (r.errors.length > 0) throw new Error(`${c} streams: ${r.errors[0]}`);
    out.push(r);
  }
  return out;
}

/** Server rounds of 64 streams and in-process batched decode of the same model, alternated. */
async function throughput(api: Api, prompts: Prompts, model: Model, p: ReturnType<typeof plan>, log: (l: string) => void) {
  const S = 64;
  const rounds: { server_tok_s: number; method: string; window_s: number; reference_tok_s: number }[] = [];
  for (let k = 0; k < p.throughputRounds; k++) {
    const r = await level(api, prompts, S, S, p.throughputTokens, 1000 * (k + 1));
    if (r.errors.length > 0) throw new Error(`round ${k + 1}: ${r.errors[0]}`);
    const ref = streamsRate(model.network, S, p.referenceSteps, p.referenceSeconds, new TokenCounter()).median;
    rounds.push({ server_tok_s: r.rate.tokens_per_s, method: r.rate.method, window_s: r.rate.window_s, reference_tok_s: ref });
    log(
      `bench serve: round ${k + 1}: server ${r.rate.tokens_per_s.toFixed(0)} tok/s (${r.rate.method}), in-process batched decode ${ref.toFixed(0)} tok/s`,
    );
  }
  const server = median(rounds.map((r) => r.server_tok_s));
  const reference = median(rounds.map((r) => r.reference_tok_s));
  return { streams: S, rounds, server_tok_s: server, reference_tok_s: reference, ratio: server / reference };
}
