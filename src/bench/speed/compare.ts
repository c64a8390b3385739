/**
 * Peer comparisons measured in interleaved rounds. The machine may be shared: a peer timed a
 * minute after frugal can meet a different load. So every round times frugal, then the peer, back
 * to back, and the ratio of each round is taken; an entry reports the median over its rounds with
 * min and max, for frugal, the peer and their ratio.
 */
import type { PeerEntry, Precision, Skipped } from './types.js';
import { flopsFraction, spread, trainFlopsPerToken } from '../formulas.js';
import type { PeerRound } from './peers.js';

export interface PeerKey {
  name: PeerEntry['name'];
  measure: string;
  precision: Precision;
  threads: number;
}

interface Series {
  key: PeerKey;
  frugal: number[];
  peer: number[];
  detail: string;
  flops?: { perToken: number; withScan: number };
}

export class Comparisons {
  private readonly series = new Map<string, Series>();

  /** Record one round's pair of figures for `key`. */
  add(key: PeerKey, frugal: number, peer: number, detail: string, flops?: Series['flops']): void {
    const id = `${key.name}|${key.measure}|${key.precision}|${key.threads}`;
    const s = this.series.get(id) ?? { key, frugal: [], peer: [], detail };
    s.frugal.push(frugal);
    s.peer.push(peer);
    s.detail = detail;
    if (flops) s.flops = flops;
    this.series.set(id, s);
  }

  /** One entry per key; training peers get their own MFU against `peakGflops(threads)`. */
  entries(peakGflops: (threads: number) => number): PeerEntry[] {
    return [...this.series.values()].map((s) => {
      const f = spread(s.frugal),
        p = spread(s.peer),
        r = spread(s.frugal.map((x, i) => x / s.peer[i]));
      const e: PeerEntry = {
        ...s.key,
        rounds: s.peer.length,
        tok_s: p.median,
        tok_s_min: p.min,
        tok_s_max: p.max,
        frugal_tok_s: f.median,
        frugal_tok_s_min: f.min,
        frugal_tok_s_max: f.max,
        ratio: r.median,
        ratio_min: r.min,
        ratio_max: r.max,
        detail: s.detail,
      };
      if (s.flops) {
        e.mfu = flopsFraction(p.median, s.flops.perToken, peakGflops(s.key.threads));
        e.mfu_with_scan = flopsFraction(p.median, s.flops.withScan, peakGflops(s.key.threads));
      }
      return e;
    });
  }
}

export interface RoundsOptions {
  rounds: number;
  /** Whether another round fits in the time budget (the first round always runs). */
  canContinue: () => boolean;
  /** frugal's figures of one round, by measure. */
  frugal: () => Map<string, number>;
  /** The peer's figures of one round, by measure. */
  peer: () => PeerRound;
  key: (measure: string) => PeerKey;
  /** Label for skipped entries ('llama.cpp q8 2 threads'). */
  what: string;
}

/**
 * Run the rounds, adding every measure both sides report; a failing peer or a short budget stops
 * them, with the reason in `skipped`.
 */
export function runRounds(o: RoundsOptions, into: Comparisons, skipped: Skipped[]): void {
  for (let r = 0; r < o.rounds; r++) {
    if (r > 0 && !o.canContinue()) {
      skipped.push({ section: 'peers', what: `${o.what}: rounds ${r + 1}–${o.rounds}`, reason: 'the time budget runs short' });
      return;
    }
    const mine = o.frugal();
    const theirs = o.peer();
    if (theirs.error !== null) {
      skipped.push({ section: 'peers', what: o.what, reason: theirs.error });
      return;
    }
    for (const [measure, peer] of theirs.tokS) {
      const f = mine.get(measure);
      if (f === undefined || !(peer > 0)) continue;
      const flops =
        theirs.parameters === undefined
          ? undefined
          : {
              perToken: trainFlopsPerToken(theirs.parameters),
              withScan: trainFlopsPerToken(theirs.parameters, theirs.scanFlopsPerToken ?? 0),
            };
      into.add(o.key(measure), f, peer, theirs.detail, flops);
    }
  }
}
