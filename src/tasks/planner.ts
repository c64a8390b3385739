/**
 * The symbolic half of the neuro-symbolic Tower of Hanoi: an optimal planner from any legal state
 * and a move checker. A state lists the peg (0, 1, 2 for P1, P2, P3) of each disk present,
 * smallest first; only the order of sizes matters, so any assignment of pegs is a legal state
 * (each peg's disks stack largest at the bottom). A move is [from, to].
 */
export type Move = readonly [from: number, to: number];
export const PEGS = 3;

/** Pegs are 0, 1, 2; anything else is not a state. */
export function checkState(pegs: readonly number[]): void {
  for (const p of pegs) if (!Number.isInteger(p) || p < 0 || p >= PEGS) throw new RangeError(`hanoi: peg ${p} is not 0, 1 or 2`);
}

/**
 * The shortest move sequence that gathers every disk on `goal` from `pegs`: the largest disk not
 * yet on the goal must move there once, which needs every smaller disk stacked on the third peg
 * first; after it moves, the smaller disks form a tower that moves to the goal in 2^k − 1 moves.
 * Disks already on the goal beneath it never move. (Optimal: every solution moves that largest
 * disk, and each stage is forced; the tests check it against breadth-first search.)
 */
export function planHanoi(pegs: readonly number[], goal = PEGS - 1): Move[] {
  checkState(pegs);
  const state = [...pegs],
    moves: Move[] = [];
  const gather = (k: number, target: number): void => {
    // disks 0..k-1 onto target
    for (let d = k - 1; d >= 0; d--) {
      if (state[d] === target) continue;
      const spare = PEGS - state[d] - target;
      gather(d, spare);
      moves.push([state[d], target]);
      state[d] = target;
      gather(d, target);
      return;
    }
  };
  gather(state.length, goal);
  return moves;
}

export interface CheckResult {
  /** Every move takes the top disk of a non-empty peg onto an empty peg or a larger disk. */
  legal: boolean;
  /** Legal, and every disk ends on the goal peg. */
  solved: boolean;
  /** Index of the first illegal move (−1 when all are legal). */
  firstIllegal: number;
  /** The state after the legal prefix. */
  final: number[];
}

/** Apply `moves` to `pegs` with the rules: one disk at a time, from the top, never onto a smaller one. */
export function checkMoves(pegs: readonly number[], moves: readonly Move[], goal = PEGS - 1): CheckResult {
  checkState(pegs);
  const state = [...pegs];
  const top = (p: number) => state.indexOf(p); // disks are smallest first: the first on p is its top
  for (let i = 0; i < moves.length; i++) {
    const [from, to] = moves[i];
    const ok = Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < PEGS && to >= 0 && to < PEGS && from !== to;
    const d = ok ? top(from) : -1,
      under = ok ? top(to) : -1;
    if (d < 0 || (under >= 0 && under < d)) return { legal: false, solved: false, firstIllegal: i, final: state };
    state[d] = to;
  }
  return { legal: true, solved: state.every((p) => p === goal), firstIllegal: -1, final: state };
}
