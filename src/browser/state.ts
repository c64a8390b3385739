/**
 * Conversation state in the browser, in the state file format of docs/DESIGN.md (the bytes Node's
 * `saveState` writes, so a state saved by the page loads in Node and the other way round). Web
 * Crypto hashes whole buffers only, so the weights are hashed once, at load, from one copy.
 */
import { modelWeightsProducer } from '../models/checkpoint.js';
import { checkStateFile, stateFileProducer, BYTE_TOKENIZER } from '../io/statefile.js';
import { decodeSafetensors } from '../io/safetensors.js';
import { restoreState, stateHeader, stateTensors } from '../models/state.js';
import { collectBytes } from '../io/atomic.js';
import type { Model } from '../api/model.js';
import type { ModelState } from '../models/types.js';
import type { ModelFiles } from './index.js';
import { sha256Hex } from './cache.js';

/** Which model and tokenizer a state belongs to (the state file's model_sha256 and tokenizer_sha256). */
export interface StateIdentity {
  modelSha256: string;
  tokenizerSha256: string;
}

/** The identity of a loaded model: its weights as frugal writes them, and its tokenizer.json (or "byte"). */
export async function stateIdentity(model: Model, files: ModelFiles): Promise<StateIdentity> {
  const tok = files['tokenizer.json'];
  return {
    modelSha256: await sha256Hex(collectBytes(modelWeightsProducer(model.network))),
    tokenizerSha256: tok === undefined ? BYTE_TOKENIZER : await sha256Hex(tok),
  };
}

/** The state file bytes of `state`. */
export function encodeState(model: Model, state: ModelState, id: StateIdentity): Uint8Array {
  const header = stateHeader(model.network, state, id.tokenizerSha256, id.modelSha256);
  return collectBytes(stateFileProducer(header, stateTensors(model.network, state)));
}

/** A state restored from state file bytes (`where` names them in errors), checked against the model. */
export function decodeState(bytes: Uint8Array, where: string, model: Model, id: StateIdentity): ModelState {
  const { header, file } = checkStateFile(decodeSafetensors(bytes, where), where);
  return restoreState(header, file, where, model.network, id.tokenizerSha256, id.modelSha256);
}
