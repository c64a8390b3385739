import type { Rng } from '../io/rng.js';
import { checkMoves, planHanoi, PEGS } from './planner.js';
import type { Move } from './planner.js';
import { packBatch } from './types.js';
import type { ScoredBatch, Vocabulary } from './types.js';

/**
 * Tower of Hanoi as token sequences: a small analogue of the neuro-symbolic against end-to-end
 * comparison of Duggan et al. (ICRA 2026). Vocabulary (a contract):
 *   D1–D6 ids 0–5 (D1 smallest), P1–P3 ids 6–8, 16 distractors ids 9–24, SEP 25,
 *   moves M(from,to) ids 26–31 in the order P1→P2, P1→P3, P2→P1, P2→P3, P3→P1, P3→P2, END 32.
 * A scene has n of the six disk sizes, each on any peg; the goal is every disk on P3. The
 * observation lists each (disk, peg) pair three times at random places, each peg token replaced by
 * a uniformly random peg with probability 0.05, with as many distractor tokens as pair tokens
 * (half of the observation), then SEP.
 *   end-to-end:     the model emits the optimal moves, then END, reading its own output back.
 *   neuro-symbolic: the model emits the peg of each disk present, smallest first, then END; the
 *                   planner (planner.ts) makes the moves. The symbolic side also structures the
 *                   reading: it lists the disks the observation names (noise touches pegs only) and
 *                   feeds each disk token in turn, then SEP; after each disk token the model emits
 *                   that disk's peg, after SEP it emits END (an object-by-object query, as a
 *                   perception module is asked about each detected object).
 */
export const HANOI_DISKS = 6;
export const DISK0 = 0;
export const PEG0 = 6;
export const DISTRACTOR0 = 9;
export const DISTRACTORS = 16;
export const SEP = 25;
export const MOVE0 = 26;
export const END = 32;
export const HANOI_VOCAB = 33;
export const PEG_NOISE = 0.05;
export const COPIES = 3;
export const MOVES: readonly Move[] = [
  [0, 1],
  [0, 2],
  [1, 0],
  [1, 2],
  [2, 0],
  [2, 1],
];

export const HANOI_METHODS = ['end-to-end', 'neuro-symbolic'] as const;
export type HanoiMethod = (typeof HANOI_METHODS)[number];

export const HANOI_NAMES: Vocabulary = [
  ...Array.from({ length: HANOI_DISKS }, (_, i) => `D${i + 1}`),
  'P1',
  'P2',
  'P3',
  ...Array.from({ length: DISTRACTORS }, (_, i) => `X${i + 1}`),
  'SEP',
  ...MOVES.map(([f, t]) => `M${f + 1}${t + 1}`),
  'END',
];

export interface HanoiScene {
  disks: number[];
  pegs: number[];
}

/** n distinct sizes (ascending, uniform among the subsets of six), each on a uniformly random peg. */
export function hanoiScene(rng: Rng, n: number): HanoiScene {
  if (!Number.isInteger(n) || n < 1 || n > HANOI_DISKS) throw new RangeError(`hanoi: disks must be 1 to ${HANOI_DISKS}, got ${n}`);
  const sizes = Array.from({ length: HANOI_DISKS }, (_, i) => i);
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(HANOI_DISKS - i);
    [sizes[i], sizes[j]] = [sizes[j], sizes[i]];
  }
  const disks = sizes.slice(0, n).sort((a, b) => a - b);
  return { disks, pegs: disks.map(() => rng.int(PEGS)) };
}

/** Observation tokens for n disks: 3n pairs, 6n distractors, SEP. */
export function observationLength(n: number): number {
  return 4 * COPIES * n + 1;
}

export interface Observation {
  ids: Int32Array;
  replaced: number;
}

/** The observation of a scene; `replaced` counts peg tokens redrawn (a redraw may give the same peg). */
export function observe(rng: Rng, scene: HanoiScene, noise = PEG_NOISE): Observation {
  const n = scene.disks.length,
    items: number[][] = [];
  let replaced = 0;
  for (let c = 0; c < COPIES; c++) {
    scene.disks.forEach((d, i) => {
      let peg = scene.pegs[i];
      if (rng.uniform() < noise) {
        peg = rng.int(PEGS);
        replaced++;
      }
      items.push([DISK0 + d, PEG0 + peg]);
    });
  }
  for (let i = 0; i < 2 * COPIES * n; i++) items.push([DISTRACTOR0 + rng.int(DISTRACTORS)]);
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return { ids: Int32Array.from([...items.flat(), SEP]), replaced };
}

/** What the model must emit after SEP: the optimal moves, or the pegs smallest first; then END. */
export function hanoiTarget(scene: HanoiScene, method: HanoiMethod): Int32Array {
  const body =
    method === 'end-to-end'
      ? planHanoi(scene.pegs).map(([f, t]) => MOVE0 + MOVES.findIndex((m) => m[0] === f && m[1] === t))
      : scene.pegs.map((p) => PEG0 + p);
  return Int32Array.from([...body, END]);
}

/** Training length for n-disk scenes, the same for both methods (so both see the same tokens): observation + the longest move list. */
export function hanoiTrainLength(n: number): number {
  return observationLength(n) + 2 ** n - 1;
}

/** The neuro-symbolic queries: the disk tokens an observation names, smallest first, then SEP. */
export function parserQueries(obs: ArrayLike<number>): Int32Array {
  const seen = new Set<number>();
  for (let i = 0; i < obs.length; i++) if (obs[i] >= DISK0 && obs[i] < DISK0 + HANOI_DISKS) seen.add(obs[i]);
  return Int32Array.from([...[...seen].sort((a, b) => a - b), SEP]);
}

/**
 * One training sequence: the observation, then (end-to-end) the target teacher-forced, scored from
 * SEP on, each position predicting the next output token; or (neuro-symbolic) the queries, each
 * scored against the peg of the disk it names and SEP against END. Training asks about the disks in
 * a random order (`rng`): a parser that may rely on the order learns "the third query is the
 * largest disk" and fails on a fourth disk; in random order it must look each disk up. Evaluation
 * asks smallest first. Padded with END to L.
 */
export function hanoiSequence(
  scene: HanoiScene,
  obs: Int32Array,
  method: HanoiMethod,
  L: number,
  rng: Rng | null = null,
): { ids: Int32Array; at: number[]; targets: Int32Array } {
  let tail: Int32Array, targets: Int32Array, first: number;
  if (method === 'end-to-end') {
    targets = hanoiTarget(scene, method);
    tail = targets.subarray(0, targets.length - 1);
    first = obs.length - 1;
  } else {
    const order = scene.disks.map((_, i) => i);
    if (rng)
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
    tail = Int32Array.from([...order.map((i) => DISK0 + scene.disks[i]), SEP]);
    targets = Int32Array.from([...order.map((i) => PEG0 + scene.pegs[i]), END]);
    first = obs.length;
  }
  if (obs.length + tail.length > L)
    throw new RangeError(`hanoi: ${obs.length + tail.length} tokens do not fit in a training length of ${L}`);
  const ids = new Int32Array(L).fill(END);
  ids.set(obs);
  ids.set(tail, obs.length);
  return { ids, at: Array.from(targets, (_, k) => first + k), targets };
}

/** B training sequences of n-disk scenes (see hanoiSequence). */
export function hanoiBatch(rng: Rng, B: number, n: number, method: HanoiMethod, L = hanoiTrainLength(n)): ScoredBatch {
  return packBatch(
    L,
    Array.from({ length: B }, () => {
      const scene = hanoiScene(rng, n),
        obs = observe(rng, scene).ids;
      return hanoiSequence(scene, obs, method, L, rng);
    }),
  );
}

export interface EpisodeResult {
  success: boolean;
  moves: Move[];
  reason: string;
}

/**
 * Score what a model emitted after SEP (up to and including END) for the true scene: the moves
 * (read directly, or planned from the emitted pegs) must be legal from the true state and reach
 * the goal. Output without END, or with a token of the wrong kind, fails.
 */
export function scoreEpisode(scene: HanoiScene, method: HanoiMethod, output: ArrayLike<number>): EpisodeResult {
  const toks = Array.from(output),
    end = toks.indexOf(END);
  if (end < 0) return { success: false, moves: [], reason: 'no END' };
  const body = toks.slice(0, end);
  let moves: Move[];
  if (method === 'end-to-end') {
    if (body.some((t) => t < MOVE0 || t >= MOVE0 + MOVES.length))
      return { success: false, moves: [], reason: 'a token that is not a move' };
    moves = body.map((t) => MOVES[t - MOVE0]);
  } else {
    if (body.some((t) => t < PEG0 || t >= PEG0 + PEGS)) return { success: false, moves: [], reason: 'a token that is not a peg' };
    moves = planHanoi(body.map((t) => t - PEG0));
  }
  const r = checkMoves(scene.pegs, moves);
  return { success: r.solved, moves, reason: !r.legal ? `illegal move ${r.firstIllegal + 1}` : r.solved ? 'solved' : 'goal not reached' };
}
