/**
 * Between the input and the model: a bounded queue with an explicit overflow policy, and the
 * check of tick times (gaps, duplicates, ticks out of order).
 *
 * Overflow, when a tick arrives and the queue holds `capacity` ticks:
 * - block: the tick is queued and the caller pauses its input until the queue drains (no tick lost;
 *   the only policy under which a resumed stream repeats an uninterrupted one exactly);
 * - drop-oldest: the oldest queued tick is dropped (counted);
 * - coalesce: the tick is merged into the newest queued one (its time, its values over the older
 *   ones), so the model sees the latest values at the cost of the intermediate ticks (counted).
 */
export const OVERFLOW_POLICIES = ['block', 'drop-oldest', 'coalesce'] as const;
export type OverflowPolicy = (typeof OVERFLOW_POLICIES)[number];

export interface QueueStats {
  /** Most ticks ever waiting. */
  maxDepth: number;
  dropped: number;
  coalesced: number;
}

export class TickQueue<T> {
  private items: T[] = [];
  private head = 0;
  readonly stats: QueueStats = { maxDepth: 0, dropped: 0, coalesced: 0 };

  constructor(
    readonly capacity: number,
    readonly policy: OverflowPolicy,
    private readonly merge: (older: T, newer: T) => T,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a whole number ≥ 1, got ${capacity}`);
  }

  get depth(): number {
    return this.items.length - this.head;
  }

  /** Add a tick under the policy; true when the producer should pause (block, and the queue is full). */
  push(x: T): boolean {
    if (this.depth >= this.capacity && this.policy !== 'block') {
      if (this.policy === 'drop-oldest') {
        this.head++;
        this.stats.dropped++;
      } else {
        const last = this.items.length - 1;
        this.items[last] = this.merge(this.items[last], x);
        this.stats.coalesced++;
        return false;
      }
    }
    this.items.push(x);
    if (this.depth > this.stats.maxDepth) this.stats.maxDepth = this.depth;
    return this.policy === 'block' && this.depth >= this.capacity;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
}

/** What the time check says of a tick: in order, after a gap (with the ticks missing), a duplicate, or out of order. */
export type TimeVerdict = { kind: 'ok' } | { kind: 'gap'; missing: number } | { kind: 'duplicate' } | { kind: 'out-of-order' };

/**
 * Tick times against the last accepted one. A tick at the same time is a duplicate and one before
 * it is out of order: both are skipped (the model's state only moves forward). A tick more than
 * `gapFactor` expected intervals after the last is accepted and flagged as a gap, with
 * round(Δt / interval) − 1 ticks missing; no values are invented for them. The expected interval is
 * the training data's median (the model's stream.json), or without one the first interval seen.
 */
export class TimeCheck {
  last: number | null = null;
  interval: number | null;

  constructor(
    interval: number | null,
    readonly gapFactor = 1.5,
  ) {
    this.interval = interval !== null && interval > 0 ? interval : null;
  }

  check(at: number): TimeVerdict {
    const last = this.last;
    if (last === null) {
      this.last = at;
      return { kind: 'ok' };
    }
    if (at === last) return { kind: 'duplicate' };
    if (at < last) return { kind: 'out-of-order' };
    const dt = at - last;
    this.last = at;
    if (this.interval === null) {
      this.interval = dt;
      return { kind: 'ok' };
    }
    if (dt > this.gapFactor * this.interval) return { kind: 'gap', missing: Math.max(1, Math.round(dt / this.interval) - 1) };
    return { kind: 'ok' };
  }
}
