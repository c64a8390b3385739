/**
 * The parts of `frugal bench serve` that rest on state snapshots: a long conversation continued
 * from its snapshot against re-processing its history, and restart to first token with many
 * persisted sessions.
 */
import { performance } from 'node:perf_hooks';
import type { Tokenizer } from '../../io/tokenizer.js';
import { median } from '../formulas.js';
import { type Api, type StreamResult, complete, pool, postJson } from './client.js';
import type { Prompts } from './prompts.js';
import { type ServeOptions, type ServeProcess, startServe, waitHealthy } from './server.js';

/** The first `tokens` tokens of `text`, as texts of at most `turnTokens` tokens each (the turns that build the conversation). */
export function conversationTurns(tok: Tokenizer, text: string, tokens: number, turnTokens: number): string[] {
  // encode only as much text as needed: the chars per token of a sample, with room to spare
  const sample = tok.encode(text.slice(0, 20_000)).length;
  const chars = Math.ceil((tokens * 20_000 * 1.3) / Math.max(1, sample)) + 1000;
  const ids = tok.encode(text.slice(0, chars));
  if (ids.length < tokens) throw new Error(`the corpus gives only ${ids.length} tokens, fewer than the ${tokens} asked for`);
  const turns: string[] = [];
  for (let at = 0; at < tokens; at += turnTokens) turns.push(tok.decode(ids.subarray(at, Math.min(tokens, at + turnTokens))));
  return turns;
}

function ok(r: StreamResult, what: string): StreamResult {
  if (r.error !== null) throw new Error(`${what}: ${r.error}`);
  if (r.tokenTimes.length === 0) throw new Error(`${what}: no token came back`);
  return r;
}

const ttft = (r: StreamResult) => r.tokenTimes[0] - r.start;

export interface LongOptions {
  longTokens: number;
  turnTokens: number;
  repeats: number;
  log: (line: string) => void;
}

/**
 * Builds a conversation of `longTokens` corpus tokens in turns chained by previous_response_id,
 * then times the first token of a short question asked (a) from the snapshot of its last
 * response and (b) in a fresh request whose prompt is the whole conversation's text.
 */
export async function longConversation(api: Api, prompts: Prompts, tok: Tokenizer, o: LongOptions) {
  const turns = conversationTurns(tok, prompts.text, o.longTokens, o.turnTokens);
  const t0 = performance.now();
  let history = '',
    last: string | null = null,
    held = 0;
  for (const [i, text] of turns.entries()) {
    const r = ok(
      await complete(api, text, 1, last === null ? {} : { previous_response_id: last }),
      `turn ${i + 1} of the long conversation`,
    );
    if (r.id === null) throw new Error(`turn ${i + 1} of the long conversation: the stream carried no response id`);
    history += text + r.text;
    last = r.id;
    held += (r.usage?.prompt_tokens ?? 0) + (r.usage?.completion_tokens ?? 0);
    o.log(`bench serve: long conversation: turn ${i + 1}/${turns.length}, ${held} tokens so far`);
  }
  const buildSeconds = (performance.now() - t0) / 1000;
  const question = prompts.short(7);
  const continued: StreamResult[] = [];
  for (let k = 0; k < o.repeats; k++)
    continued.push(ok(await complete(api, question, 8, { previous_response_id: last }), 'continuing from the snapshot'));
  const reprocessed: StreamResult[] = [];
  for (let k = 0; k < Math.min(2, o.repeats); k++)
    reprocessed.push(ok(await complete(api, history + question, 8), 're-processing the history'));
  const c = median(continued.map(ttft)),
    f = median(reprocessed.map(ttft));
  o.log(`bench serve: ${held}-token conversation: first token ${c.toFixed(1)} ms from its snapshot, ${f.toFixed(1)} ms re-processing it`);
  return {
    tokens_asked: o.longTokens,
    turns: turns.length,
    history_tokens: held,
    reprocessed_prompt_tokens: reprocessed[0].usage?.prompt_tokens ?? null,
    build_seconds: buildSeconds,
    continued_ttft_ms: c,
    reprocessed_ttft_ms: f,
    speedup: f / c,
    same_output: continued[0].text === reprocessed[0].text,
  };
}

export interface RestartOptions {
  sessions: number;
  log: (line: string) => void;
}

/** The server in use, replaced when the restart starts a new one (the caller stops whichever is current). */
export interface ServerHolder {
  current: ServeProcess;
}

/**
 * Creates `sessions` sessions (POST /v1/sessions, then one short turn each with `session_id`),
 * kills the server (SIGKILL), starts it again on the same state and times a continued session's
 * first token from the new process's spawn.
 */
export async function restart(api: Api, holder: ServerHolder, serve: ServeOptions, prompts: Prompts, o: RestartOptions) {
  const t0 = performance.now();
  const ids = await pool(o.sessions, 16, async (i) => {
    const s = await postJson(`${api.base}/v1/sessions`, {});
    if (typeof s.id !== 'string') throw new Error('POST /v1/sessions answered without a string "id"');
    ok(await complete(api, prompts.short(i), 2, { session_id: s.id }), `the first turn of session ${s.id}`);
    if ((i + 1) % 100 === 0) o.log(`bench serve: ${i + 1}/${o.sessions} sessions`);
    return s.id;
  });
  const createSeconds = (performance.now() - t0) / 1000;
  await holder.current.stop('SIGKILL');
  holder.current = startServe(serve);
  const healthy = await waitHealthy(holder.current, 300_000);
  const pick = ids[ids.length >> 1];
  const r = ok(await complete(api, prompts.short(3), 4, { session_id: pick }), `continuing session ${pick} after the restart`);
  const found = (await fetch(`${api.base}/v1/sessions/${encodeURIComponent(ids[0])}`)).status;
  const spawned = holder.current.spawnedAt;
  o.log(
    `bench serve: restart with ${o.sessions} sessions: healthy after ${(healthy - spawned).toFixed(0)} ms, first token after ${(r.tokenTimes[0] - spawned).toFixed(0)} ms`,
  );
  return {
    sessions: o.sessions,
    create_seconds: createSeconds,
    spawn_to_health_ms: healthy - spawned,
    spawn_to_first_token_ms: r.tokenTimes[0] - spawned,
    ttft_after_health_ms: ttft(r),
    first_session_status_after_restart: found,
  };
}
