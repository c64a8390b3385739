import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/io/rng.js';
import {
  DISTRACTOR0,
  END,
  HANOI_NAMES,
  MOVE0,
  PEG0,
  SEP,
  hanoiBatch,
  hanoiScene,
  hanoiTarget,
  hanoiTrainLength,
  observationLength,
  observe,
  parserQueries,
  scoreEpisode,
} from '../../src/tasks/hanoi.js';
import type { HanoiScene } from '../../src/tasks/hanoi.js';
import { checkMoves, planHanoi } from '../../src/tasks/planner.js';
import type { Move } from '../../src/tasks/planner.js';

/** Every state of n disks (pegs smallest first), in base-3 order. */
function allStates(n: number): number[][] {
  return Array.from({ length: 3 ** n }, (_, code) => Array.from({ length: n }, (_, d) => Math.floor(code / 3 ** d) % 3));
}

/**
 * Breadth-first search over the 3^n states, written from the rules alone (not from the planner):
 * the length of a shortest solution from every state to all disks on P3.
 */
function bfsDistances(n: number): Map<string, number> {
  const key = (s: number[]) => s.join('');
  const goal = new Array(n).fill(2),
    dist = new Map([[key(goal), 0]]),
    queue = [goal];
  while (queue.length > 0) {
    const s = queue.shift() as number[];
    for (let from = 0; from < 3; from++) {
      for (let to = 0; to < 3; to++) {
        const d = s.indexOf(from),
          under = s.indexOf(to);
        if (from === to || d < 0 || (under >= 0 && under < d)) continue;
        const t = [...s];
        t[d] = to; // moves are reversible: the distance to the goal is symmetric
        if (!dist.has(key(t))) {
          dist.set(key(t), (dist.get(key(s)) as number) + 1);
          queue.push(t);
        }
      }
    }
  }
  return dist;
}

describe('symbolic planner', () => {
  it.each([1, 2, 3, 4, 5, 6])('moves the standard tower of %i disks from P1 to P3 in 2^n − 1 moves', (n) => {
    const moves = planHanoi(new Array(n).fill(0));
    expect(moves.length).toBe(2 ** n - 1);
    expect(checkMoves(new Array(n).fill(0), moves)).toMatchObject({ legal: true, solved: true });
  });

  it.each([1, 2, 3, 4, 5, 6])('solves every legal state of %i disks with a shortest plan (breadth-first search)', (n) => {
    const dist = bfsDistances(n);
    expect(dist.size).toBe(3 ** n);
    for (const s of allStates(n)) {
      const moves = planHanoi(s);
      const r = checkMoves(s, moves);
      expect(r.legal && r.solved, `state ${s}`).toBe(true);
      expect(moves.length, `state ${s}`).toBe(dist.get(s.join('')));
    }
  });

  it('gives an empty plan when every disk is already on P3', () => {
    expect(planHanoi([2, 2, 2])).toEqual([]);
  });
});

describe('move checker', () => {
  const start = [0, 0, 0]; // three disks on P1
  it.each<[string, Move[]]>([
    ['a move from an empty peg', [[1, 2]]],
    [
      'a larger disk onto a smaller one',
      [
        [0, 2],
        [0, 2],
      ],
    ],
    ['a disk onto its own peg', [[0, 0]]],
    ['a peg that does not exist', [[0, 3]]],
    ['a negative peg', [[-1, 2]]],
  ])('rejects %s', (_, moves) => {
    const r = checkMoves(start, moves);
    expect(r.legal).toBe(false);
    expect(r.solved).toBe(false);
    expect(r.firstIllegal).toBe(moves.length - 1);
  });

  it('accepts legal moves that stop short of the goal, without calling them solved', () => {
    expect(
      checkMoves(start, [
        [0, 2],
        [0, 1],
      ]),
    ).toMatchObject({ legal: true, solved: false, final: [2, 1, 0] });
  });

  it('takes the top disk: the smallest on the peg', () => {
    expect(checkMoves([1, 0, 1], [[1, 2]]).final).toEqual([2, 0, 1]);
  });
});

describe('Tower of Hanoi scenes and observations', () => {
  it('token names follow the id layout', () => {
    expect(HANOI_NAMES.length).toBe(33);
    expect([
      HANOI_NAMES[0],
      HANOI_NAMES[5],
      HANOI_NAMES[6],
      HANOI_NAMES[8],
      HANOI_NAMES[9],
      HANOI_NAMES[24],
      HANOI_NAMES[25],
      HANOI_NAMES[26],
      HANOI_NAMES[31],
      HANOI_NAMES[32],
    ]).toEqual(['D1', 'D6', 'P1', 'P3', 'X1', 'X16', 'SEP', 'M12', 'M32', 'END']);
  });

  it.each([1, 3, 4, 6])('an observation of %i disks: 3 pairs per disk, half distractors, SEP last, no output tokens', (n) => {
    const rng = Rng.fromSeed(n);
    for (let i = 0; i < 200; i++) {
      const scene = hanoiScene(rng, n),
        ids = observe(rng, scene).ids;
      expect(ids.length).toBe(observationLength(n));
      expect(ids[ids.length - 1]).toBe(SEP);
      const body = [...ids.subarray(0, ids.length - 1)];
      expect(body.filter((t) => t >= DISTRACTOR0 && t < SEP).length).toBe(body.length / 2);
      expect(body.some((t) => t >= SEP)).toBe(false);
      for (const d of scene.disks) expect(body.filter((t) => t === d).length).toBe(3);
      body.forEach((t, k) => {
        if (t < PEG0) expect(body[k + 1] >= PEG0 && body[k + 1] < DISTRACTOR0).toBe(true);
      });
      expect(body.filter((t) => t >= PEG0 && t < DISTRACTOR0).length).toBe(3 * n);
    }
  });

  it('replaces each peg token with a random peg with probability 0.05', () => {
    const rng = Rng.fromSeed(11),
      n = 4,
      N = 8000;
    let replaced = 0,
      wrong = 0,
      tokens = 0;
    for (let i = 0; i < N; i++) {
      const scene = hanoiScene(rng, n),
        o = observe(rng, scene);
      replaced += o.replaced;
      const body = o.ids;
      for (let k = 0; k + 1 < body.length; k++) {
        if (body[k] >= PEG0) continue;
        tokens++;
        if (body[k + 1] - PEG0 !== scene.pegs[scene.disks.indexOf(body[k])]) wrong++;
      }
    }
    const sd = (p: number) => Math.sqrt((p * (1 - p)) / tokens);
    expect(tokens).toBe(N * 3 * n);
    expect(Math.abs(replaced / tokens - 0.05)).toBeLessThan(4 * sd(0.05));
    // a redrawn peg is wrong two times in three
    expect(Math.abs(wrong / tokens - (0.05 * 2) / 3)).toBeLessThan(4 * sd((0.05 * 2) / 3));
  });

  it('scenes use n distinct sizes, every size and peg equally often', () => {
    const rng = Rng.fromSeed(12),
      N = 6000,
      sizes = new Array(6).fill(0),
      pegs = [0, 0, 0];
    for (let i = 0; i < N; i++) {
      const s = hanoiScene(rng, 3);
      expect(new Set(s.disks).size).toBe(3);
      for (const d of s.disks) sizes[d]++;
      for (const p of s.pegs) pegs[p]++;
    }
    for (const c of sizes) expect(Math.abs(c - N / 2)).toBeLessThan(5 * Math.sqrt(N / 4));
    for (const c of pegs) expect(Math.abs(c - N)).toBeLessThan(5 * Math.sqrt((N * 2) / 3));
  });

  it('is determined by the seed', () => {
    expect(hanoiBatch(Rng.fromSeed(3), 4, 3, 'end-to-end')).toEqual(hanoiBatch(Rng.fromSeed(3), 4, 3, 'end-to-end'));
    expect(hanoiBatch(Rng.fromSeed(3), 4, 3, 'end-to-end').ids).not.toEqual(hanoiBatch(Rng.fromSeed(4), 4, 3, 'end-to-end').ids);
  });

  it('targets: the optimal moves then END, or the pegs smallest first then END', () => {
    const scene: HanoiScene = { disks: [0, 2, 5], pegs: [0, 1, 2] };
    expect([...hanoiTarget(scene, 'neuro-symbolic')]).toEqual([PEG0, PEG0 + 1, PEG0 + 2, END]);
    const e2e = [...hanoiTarget(scene, 'end-to-end')];
    expect(e2e.at(-1)).toBe(END);
    expect(e2e.length - 1).toBe(planHanoi(scene.pegs).length);
    expect(scoreEpisode(scene, 'end-to-end', e2e).success).toBe(true);
  });

  it('end-to-end batch: the target teacher-forced after SEP, scored from SEP on, each position predicting the next output', () => {
    const n = 3,
      L = hanoiTrainLength(n),
      b = hanoiBatch(Rng.fromSeed(8), 6, n, 'end-to-end'),
      obs = observationLength(n);
    expect(L).toBe(44);
    expect(b.L).toBe(L);
    let k = 0;
    for (let i = 0; i < b.B; i++) {
      expect(b.ids[i * L + obs - 1]).toBe(SEP);
      expect(b.rows[k]).toBe(i * L + obs - 1);
      const first = k;
      while (k < b.rows.length && b.rows[k] < (i + 1) * L) {
        expect(b.rows[k]).toBe(i * L + obs - 1 + k - first);
        if (k > first) expect(b.ids[b.rows[k]]).toBe(b.targets[k - 1]);
        k++;
      }
      expect(b.targets[k - 1]).toBe(END);
      for (let j = first; j < k - 1; j++) expect(b.targets[j]).toBeGreaterThanOrEqual(MOVE0);
    }
    expect(k).toBe(b.rows.length);
  });

  it('neuro-symbolic batch: the disks named, in a random order, then SEP; each scored against its own peg, SEP against END', () => {
    const n = 3,
      L = hanoiTrainLength(n),
      rng = Rng.fromSeed(9),
      obs = observationLength(n),
      orders = new Set<string>();
    for (let rep = 0; rep < 20; rep++) {
      const b = hanoiBatch(rng, 6, n, 'neuro-symbolic');
      expect(b.L).toBe(L);
      expect(b.rows.length).toBe(6 * (n + 1));
      for (let i = 0; i < b.B; i++) {
        const seq = b.ids.subarray(i * L, (i + 1) * L),
          named = [...new Set([...seq.subarray(0, obs)].filter((t) => t < PEG0))].sort((x, y) => x - y);
        const asked = [...seq.subarray(obs, obs + n)];
        expect([...asked].sort((x, y) => x - y)).toEqual(named);
        orders.add(asked.map((d) => named.indexOf(d)).join(''));
        expect(seq[obs + n]).toBe(SEP);
        for (let k = 0; k <= n; k++) {
          const r = i * (n + 1) + k;
          expect(b.rows[r]).toBe(i * L + obs + k);
          if (k === n) {
            expect(b.targets[r]).toBe(END);
            continue;
          }
          // the target is a peg the observation gives this disk (all three copies corrupted away from it: about 1 in 27,000)
          const pegs = [...seq.subarray(0, obs)].flatMap((t, j) => (t === asked[k] ? [seq[j + 1]] : []));
          expect(pegs).toContain(b.targets[r]);
        }
      }
    }
    expect(orders.size).toBe(6); // every order of three disks occurs
  });

  it('the queries are the disks an observation names, smallest first, then SEP, whatever the noise', () => {
    const rng = Rng.fromSeed(10);
    for (let i = 0; i < 100; i++) {
      const scene = hanoiScene(rng, 1 + (i % 6));
      expect([...parserQueries(observe(rng, scene, 0.5).ids)]).toEqual([...scene.disks, SEP]);
    }
  });
});

describe('episode scoring', () => {
  const scene: HanoiScene = { disks: [1, 3, 4, 5], pegs: [2, 0, 1, 0] };
  it('neuro-symbolic: the right pegs then END succeed; a wrong peg, a missing END or a move token fail', () => {
    expect(scoreEpisode(scene, 'neuro-symbolic', [PEG0 + 2, PEG0, PEG0 + 1, PEG0, END])).toMatchObject({ success: true, reason: 'solved' });
    expect(scoreEpisode(scene, 'neuro-symbolic', [PEG0 + 2, PEG0, PEG0 + 1, PEG0]).success).toBe(false);
    expect(scoreEpisode(scene, 'neuro-symbolic', [PEG0 + 2, MOVE0, END]).reason).toBe('a token that is not a peg');
    expect(scoreEpisode(scene, 'neuro-symbolic', [PEG0 + 1, PEG0, PEG0 + 1, PEG0, END]).success).toBe(false);
  });

  it('end-to-end: tokens after END are ignored; a peg token fails', () => {
    const moves = planHanoi(scene.pegs).map(
      ([f, t]) =>
        MOVE0 +
        [
          [0, 1],
          [0, 2],
          [1, 0],
          [1, 2],
          [2, 0],
          [2, 1],
        ].findIndex((m) => m[0] === f && m[1] === t),
    );
    expect(scoreEpisode(scene, 'end-to-end', [...moves, END, PEG0]).success).toBe(true);
    expect(scoreEpisode(scene, 'end-to-end', [...moves.slice(1), END]).success).toBe(false);
    expect(scoreEpisode(scene, 'end-to-end', [PEG0, END]).reason).toBe('a token that is not a move');
  });
});
