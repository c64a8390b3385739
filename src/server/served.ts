import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { loadModel } from '../api/model.js';
import type { Model, RunOptions, TextCodec } from '../api/model.js';
import { collectBytes, readableDir } from '../io/atomic.js';
import { inputError } from '../io/errors.js';
import { decodeSafetensors } from '../io/safetensors.js';
import { checkStateFile, stateFileProducer, tokenizerSha256 } from '../io/statefile.js';
import { ADAPTER_WEIGHTS } from '../models/lora.js';
import { modelSha256, restoreState, stateHeader, stateTensors } from '../models/state.js';
import type { ModelState } from '../models/types.js';
import { kvStream } from '../models/transformer/runner.js';

/** State file metadata key of the pending token: the last generated id, which the next turn feeds first. */
export const PENDING_KEY = 'frugal_pending_token';

/** A chat message as the chat endpoint receives it. */
export interface ChatMessage {
  role: string;
  content: string;
}

/**
 * The model a server runs, with what its snapshots need: an identity (weights, adapter and
 * tokenizer hashed together: a snapshot resumes only on the same), the state file encoding of a
 * state and its pending token, and the chat template.
 */
export class ServedModel {
  readonly id: string;
  /** SHA-256 over the weights, adapter and tokenizer hashes: the `model` of every snapshot it commits. */
  readonly identity: string;
  readonly codec: TextCodec;
  /**
   * Tokens a conversation may hold: the model's max_position_embeddings when its state holds a KV
   * cache (attention layers: the cache, and so each snapshot, grows with the conversation); null
   * for a recurrent state (Mamba family), whose size is fixed however long the conversation.
   */
  readonly maxContext: number | null;
  private readonly weights: string;
  private readonly tokenizer: string;
  private readonly template: Template | null;
  private readonly special: { bos_token: string; eos_token: string };

  constructor(
    readonly model: Model,
    adapter: string | undefined,
  ) {
    const net = model.network;
    this.maxContext = contextLimit(net);
    this.codec = model.text();
    this.weights = modelSha256(net);
    this.tokenizer = tokenizerSha256(model.dir);
    const adapterHash = adapter
      ? createHash('sha256')
          .update(readFileSync(join(readableDir(adapter).dir, ADAPTER_WEIGHTS)))
          .digest('hex')
      : 'none';
    this.identity = createHash('sha256').update(`${this.weights}:${adapterHash}:${this.tokenizer}`).digest('hex');
    this.id = basename(model.dir.replace(/[\\/]+$/, '')) + (adapter ? `+${basename(adapter.replace(/[\\/]+$/, ''))}` : '');
    const cfg = readTokenizerConfig(model.dir);
    this.template = typeof cfg.chat_template === 'string' ? new Template(cfg.chat_template) : null;
    this.special = { bos_token: tokenText(cfg.bos_token), eos_token: tokenText(cfg.eos_token) };
  }

  /** The state file bytes of a one-stream state whose next turn starts by feeding `pending`. */
  encodeState(state: ModelState, pending: number): Uint8Array {
    const net = this.model.network;
    const header = stateHeader(net, state, this.tokenizer, this.weights);
    return collectBytes(stateFileProducer(header, stateTensors(net, state), { [PENDING_KEY]: String(pending) }));
  }

  /** A state file's bytes restored for this model (exit-code-2 FrugalError naming what differs), with its pending token if any. */
  decodeState(bytes: Uint8Array, what: string): { state: ModelState; pending: number | null } {
    const { header, file } = checkStateFile(decodeSafetensors(bytes, what), what);
    if (header.batch !== 1) throw inputError(`${what} holds ${header.batch} streams; a session holds one`);
    const state = restoreState(header, file, what, this.model.network, this.tokenizer, this.weights);
    const p = file.metadata[PENDING_KEY];
    const pending = p !== undefined && /^\d+$/.test(p) && Number(p) < this.model.vocabSize ? Number(p) : null;
    return { state, pending };
  }

  /**
   * The prompt text of chat messages: the tokenizer config's `chat_template` (Jinja) when it has
   * one, else the plain template: `Role: content` lines (System, User, Assistant, …) and a final
   * `Assistant:`; a continued conversation starts with a newline (the last reply ended without one).
   */
  renderChat(messages: readonly ChatMessage[], continued: boolean): string {
    if (this.template) return this.template.render({ messages, add_generation_prompt: true, ...this.special });
    const lines = messages.map((m) => `${m.role.charAt(0).toUpperCase()}${m.role.slice(1)}: ${m.content}\n`);
    return `${continued ? '\n' : ''}${lines.join('')}Assistant:`;
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Load the model (and adapter) a server runs. */
export function openServedModel(dir: string, adapter: string | undefined, run: RunOptions): ServedModel {
  const model = loadModel(dir, { ...run, adapter });
  try {
    return new ServedModel(model, adapter);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** A model's context limit when its state holds a KV cache (see ServedModel.maxContext), else null. */
function contextLimit(net: Model['network']): number | null {
  const state = net.createState(1);
  const kv = [...state.tensors.keys()].some((name) => kvStream(name) !== null);
  for (const t of state.tensors.values()) t.dispose();
  if (!kv) return null;
  const max = net.hfConfig().max_position_embeddings;
  return typeof max === 'number' && Number.isInteger(max) && max > 0 ? max : null;
}

function readTokenizerConfig(dir: string): Record<string, unknown> {
  const f = join(dir, 'tokenizer_config.json');
  if (!existsSync(f)) return {};
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** A special token given as a string or as {"content": …}. */
function tokenText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return '';
}
