import { inputError } from '../io/errors.js';
import { readStateFile, sha256Of, writeStateFile } from '../io/statefile.js';
import { readTensorF32 } from '../io/safetensors.js';
import type { SafetensorsFile, StreamTensor } from '../io/safetensors.js';
import type { StateHeader } from '../io/statefile.js';
import type { Tensor } from '../tensor/index.js';
import { modelWeightsProducer } from './checkpoint.js';
import type { ModelState, TrainableModel } from './types.js';

/**
 * Saving and restoring a model's recurrent state (or KV cache) as a state file (format in
 * src/io/statefile.ts and docs/DESIGN.md). The file records which model and tokenizer made it;
 * restoring checks both, then the names and shapes of every tensor, before touching any state.
 */

/**
 * SHA-256 (hex) of the model's weights as frugal writes them: for a checkpoint `frugal train`
 * saved, `sha256sum model.safetensors`. Hashes every weight (about a second per 500 MB).
 */
export function modelSha256(model: TrainableModel): string {
  return sha256Of(modelWeightsProducer(model));
}

/** The first `count` values of a state tensor as an F32 stream tensor of `shape`. */
function leading(name: string, t: Tensor, shape: number[]): StreamTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    dtype: 'F32',
    shape,
    write: (emit) => {
      const v = t.floats().subarray(0, count);
      const f = v instanceof Float32Array ? v : Float32Array.from(v); // float64 engines store F32 too
      emit(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
    },
  };
}

/** Write `state` of `model` to `path` (atomically), naming the model and the tokenizer (tokenizerSha256 of its directory). */
export function saveState(
  path: string,
  model: TrainableModel,
  state: ModelState,
  tokenizer: string,
  weightsSha256 = modelSha256(model),
): void {
  writeStateFile(path, stateHeader(model, state, tokenizer, weightsSha256), stateTensors(model, state));
}

/** The header of a state file for `state` of `model`. */
export function stateHeader(model: TrainableModel, state: ModelState, tokenizer: string, weightsSha256: string): StateHeader {
  return {
    architecture: model.config.modelType,
    modelSha256: weightsSha256,
    tokenizerSha256: tokenizer,
    tokens: state.position,
    batch: state.batch,
  };
}

/** The tensors a state file stores for `state` (only the part of a KV cache that is filled). */
export function stateTensors(model: TrainableModel, state: ModelState): StreamTensor[] {
  return [...model.savedStateShapes(state.batch, state.position)].map(([name, shape]) => {
    const t = state.tensors.get(name);
    if (!t) throw new Error(`saveState: the state has no tensor '${name}'`);
    return leading(name, t, shape);
  });
}

/**
 * A new state for `model` restored from the state file at `path`, ready for the next step, after
 * checking that this model and tokenizer made it (exit code 2 with what differs otherwise).
 */
export function loadState(path: string, model: TrainableModel, tokenizer: string, weightsSha256 = modelSha256(model)): ModelState {
  const { header, file } = readStateFile(path);
  return restoreState(header, file, path, model, tokenizer, weightsSha256);
}

/** A new state for `model` from a checked state file (`path` names it in errors), after checking that this model and tokenizer made it. */
export function restoreState(
  header: StateHeader,
  file: SafetensorsFile,
  path: string,
  model: TrainableModel,
  tokenizer: string,
  weightsSha256: string,
): ModelState {
  const arch = model.config.modelType;
  if (header.architecture !== arch) throw inputError(`${path} holds the state of a ${header.architecture} model; this model is ${arch}`);
  if (header.modelSha256 !== weightsSha256) {
    throw inputError(
      `${path} was saved from another model (weights SHA-256 ${header.modelSha256.slice(0, 12)}…, this model's ${weightsSha256.slice(0, 12)}…); ` +
        'continue a state with the model that made it',
    );
  }
  if (header.tokenizerSha256 !== tokenizer) {
    throw inputError(
      `${path} consumed ids of another tokenizer (${short(header.tokenizerSha256)}, this model's ${short(tokenizer)}); ` +
        'continue a state with the tokenizer that made it',
    );
  }
  const want = model.savedStateShapes(header.batch, header.tokens);
  for (const name of file.tensors.keys())
    if (!want.has(name)) throw inputError(`${path}: tensor '${name}' is not part of this model's state`);
  for (const [name, shape] of want) {
    const got = file.tensors.get(name)?.shape;
    if (!got) throw inputError(`${path}: state tensor '${name}' is missing`);
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw inputError(
        `${path}: state tensor '${name}' has shape [${got}], but ${header.batch} stream(s) after ${header.tokens} tokens need [${shape}]`,
      );
    }
  }
  const state = model.createState(header.batch, header.tokens);
  for (const name of want.keys()) (state.tensors.get(name) as Tensor).floats().set(readTensorF32(file, name));
  state.position = header.tokens;
  return state;
}

function short(id: string): string {
  return id.length === 64 ? `SHA-256 ${id.slice(0, 12)}…` : `"${id}"`;
}
