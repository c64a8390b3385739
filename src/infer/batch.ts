import type { Tensor } from '../tensor/index.js';
import type { ModelState, SequenceModel } from '../models/types.js';
import { kvStream } from '../models/transformer/runner.js';

/**
 * Batched decoding: up to `capacity` independent streams stepped together, so each weight read
 * serves every stream (GEMV becomes GEMM). Active streams occupy the leading rows of one state;
 * a stream joins by prefilling its prompt alone and copying its state into the next free row, and
 * leaves by moving the last row into its place. Every kernel treats rows independently, so each
 * stream gets bit for bit the logits it would get alone. Recurrent state is batch-major (every
 * tensor's first dimension is the batch, as Mamba's conv and SSM states); a KV cache keeps one
 * tensor per stream (k.i.b.g, attention layers), which a joining stream hands over whole, and
 * the state's per-stream positions let streams of different lengths attend together.
 */
export class BatchDecoder {
  readonly model: SequenceModel;
  readonly capacity: number;
  private readonly state: ModelState;
  private readonly positions: number[];
  private readonly rows: number[] = []; // stream id of each active row
  private nextId = 1;

  constructor(model: SequenceModel, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.model = model;
    this.capacity = capacity;
    this.state = model.createState(capacity);
    for (const [name, t] of this.state.tensors) {
      if (!kvStream(name) && t.shape[0] !== capacity)
        throw new Error(`BatchDecoder needs batch-major or per-stream state; '${name}' has shape [${t.shape}]`);
    }
    this.positions = new Array<number>(capacity).fill(0);
    this.state.positions = this.positions;
  }

  get active(): readonly number[] {
    return this.rows;
  }

  /**
   * Add a stream: prefill its prompt (≥ 1 token) alone, from `from` (a one-stream state, which the
   * decoder takes over) or a fresh state, then give it a row. Returns its id and its next-token logits.
   */
  join(prompt: Int32Array, from?: ModelState): { id: number; logits: Float32Array } {
    if (this.rows.length >= this.capacity) throw new Error(`all ${this.capacity} streams are busy`);
    if (prompt.length === 0) throw new Error('join: the prompt needs at least one token');
    if (from && from.batch !== 1) throw new Error(`join: the state to continue holds ${from.batch} streams, not 1`);
    const solo = from ?? this.model.createState(1),
      handed = new Set<Tensor>();
    try {
      const logits = this.model.prefill(prompt, prompt.length, solo);
      const r = this.rows.length;
      for (const [name, t] of this.state.tensors) {
        const kv = kvStream(name);
        if (!kv) copyRow(t, r, solo.tensors.get(name) as Tensor, 0);
        else if (kv.stream === r) {
          const own = solo.tensors.get(kv.of(0)) as Tensor; // the cache its prefill filled, whatever its rows
          this.state.tensors.set(name, own);
          handed.add(own);
          t.dispose();
        }
      }
      this.positions[r] = solo.position;
      const id = this.nextId++;
      this.rows.push(id);
      return { id, logits };
    } finally {
      for (const t of solo.tensors.values()) if (!handed.has(t)) t.dispose();
    }
  }

  /**
   * A copy of one stream's state as a one-stream state (to save it while the stream goes on, or
   * after its last step): its row of each batch-major tensor and, of its KV caches, the rows of
   * the positions it has consumed (the rest of a cache is room, not state).
   */
  rowState(id: number): ModelState {
    const r = this.rows.indexOf(id);
    if (r < 0) throw new Error(`no active stream ${id}`);
    const used = this.positions[r];
    const solo = this.model.createState(1, used);
    for (const [name, t] of solo.tensors) {
      const kv = kvStream(name);
      if (!kv) copyRow(t, 0, this.state.tensors.get(name) as Tensor, r);
      else {
        const own = this.state.tensors.get(kv.of(r)) as Tensor; // (rows, hd), rows ≥ used
        const n = used * own.shape[1];
        t.data().set(own.data().subarray(0, n));
      }
    }
    solo.position = used;
    return solo;
  }

  /** Remove a stream; the last active row moves into its place. */
  leave(id: number): void {
    const r = this.rows.indexOf(id);
    if (r < 0) throw new Error(`no active stream ${id}`);
    const last = this.rows.length - 1;
    if (r !== last) {
      const tensors = this.state.tensors;
      for (const [name, t] of [...tensors]) {
        const kv = kvStream(name);
        if (!kv) copyRow(t, r, t, last);
        else if (kv.stream === r) {
          tensors.set(name, tensors.get(kv.of(last)) as Tensor); // swap the two streams' caches
          tensors.set(kv.of(last), t);
        }
      }
      this.positions[r] = this.positions[last];
      this.rows[r] = this.rows[last];
    }
    this.rows.pop();
  }

  /**
   * One token for every active stream (all must be given); returns each stream's next logits:
   * views of one fresh array of all the rows (copying each row again cost 32 streams of a 50k
   * vocabulary 6 MiB a step).
   */
  step(tokens: ReadonlyMap<number, number>): Map<number, Float32Array> {
    const n = this.rows.length;
    if (n === 0) return new Map();
    if (tokens.size !== n) throw new Error(`step: ${tokens.size} tokens for ${n} active streams`);
    const ids = new Int32Array(n);
    this.rows.forEach((id, r) => {
      const tok = tokens.get(id);
      if (tok === undefined) throw new Error(`step: no token for stream ${id}`);
      ids[r] = tok;
    });
    const logits = this.model.step(ids, this.state);
    const V = logits.length / n;
    const out = new Map<number, Float32Array>();
    this.rows.forEach((id, r) => out.set(id, logits.subarray(r * V, (r + 1) * V)));
    return out;
  }

  dispose(): void {
    for (const t of this.state.tensors.values()) t.dispose();
  }
}

/** dst[row rd] = src[row rs] for batch-major tensors. */
function copyRow(dst: Tensor, rd: number, src: Tensor, rs: number): void {
  const n = dst.size / dst.shape[0];
  if (src.size / src.shape[0] !== n) throw new Error('copyRow: row sizes differ');
  const dv = dst.data(),
    sv = src.data();
  if (dv === sv || dst === src) dv.copyWithin(rd * n, rs * n, (rs + 1) * n);
  else dv.set(sv.subarray(rs * n, (rs + 1) * n), rd * n);
}
