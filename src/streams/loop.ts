import type { Readable } from 'node:stream';
import { inputError } from '../io/errors.js';
import { BadLine, HeaderError, TickParser } from './parse.js';
import type { Tick, TickFormat } from './parse.js';
import { TickQueue } from './queue.js';
import type { OverflowPolicy, QueueStats } from './queue.js';
import type { StreamRunner } from './runtime.js';

/**
 * The stream loop of `frugal stream`: the input is split into lines as it arrives and parsed into a
 * bounded queue; the model takes ticks from it one at a time, yielding to the event loop after
 * each, so a producer faster than the model fills the queue and the overflow policy decides. With
 * `block`, the input is paused while the queue is full (lines already read wait outside it).
 */
export interface RunOptions {
  format: TickFormat;
  queue: number;
  overflow: OverflowPolicy;
  fatalBadLines: boolean;
  queueDepth: boolean;
  /** A restored stream: ticks at or before its last time, before the first new one, were processed already. */
  resumed: boolean;
  save: (() => void) | null;
  saveEvery: number;
  where: string;
  emit: (line: string) => void;
  log: (m: string) => void;
  /** Called after each tick (tests slow the model down with it). */
  afterTick?: () => void | Promise<void>;
}

export interface RunResult {
  ticks: number;
  seconds: number;
  duplicates: number;
  outOfOrder: number;
  replayed: number;
  gaps: number;
  badLines: number;
  queue: QueueStats;
  signal: NodeJS.Signals | null;
}

/** Merge a newer tick into an older queued one (coalesce): the newer time and values, older values where the newer has none. */
function coalesceTicks(a: Tick, b: Tick): Tick {
  return { line: b.line, t: b.t, at: b.at, values: { ...a.values, ...b.values } };
}

class StreamLoop {
  private readonly parser: TickParser;
  private readonly queue: TickQueue<Tick>;
  readonly res: RunResult;
  private partial = '';
  private ended = false;
  private failure: Error | null = null;
  /** A fatal bad line: raised once the ticks before it are done. */
  private fatal: Error | null = null;
  private fresh: boolean;
  /** Lines read but not yet queued (block: the queue is full). */
  private readonly waiting: string[] = [];
  private wake: (() => void) | null = null;

  constructor(
    private readonly runner: StreamRunner,
    private readonly input: Readable,
    private readonly o: RunOptions,
  ) {
    this.parser = new TickParser(o.format);
    this.queue = new TickQueue<Tick>(o.queue, o.overflow, coalesceTicks);
    this.fresh = !o.resumed;
    this.res = {
      ticks: 0,
      seconds: 0,
      duplicates: 0,
      outOfOrder: 0,
      replayed: 0,
      gaps: 0,
      badLines: 0,
      queue: this.queue.stats,
      signal: null,
    };
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Parse waiting lines into the queue while it has room (block) or always (the other policies). */
  private feed(): void {
    const { queue, waiting, o } = this;
    while (waiting.length && !this.failure && !this.fatal) {
      if (o.overflow === 'block' && queue.depth >= queue.capacity) {
        this.input.pause();
        return;
      }
      this.parseLine(waiting.shift() as string);
    }
    if (this.input.isPaused() && !this.ended && !this.fatal) this.input.resume();
  }

  private parseLine(raw: string): void {
    try {
      const tick = this.parser.push(raw);
      if (tick) this.queue.push(tick);
    } catch (e) {
      if (e instanceof HeaderError) this.failure = inputError(`${this.o.where}: ${e.message}`);
      else if (e instanceof BadLine) {
        this.res.badLines++;
        if (this.o.fatalBadLines) this.fatal = inputError(`${this.o.where} ${e.message}; fix the line or pass --on-bad-line skip`);
        else this.o.log(`frugal: ${this.o.where} ${e.message} (skipped)`);
      } else throw e;
    }
  }

  listen(): void {
    this.input.setEncoding('utf8');
    this.input.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() as string;
      this.waiting.push(...parts);
      this.feed();
      this.notify();
    });
    this.input.on('end', () => {
      if (this.partial !== '') this.waiting.push(this.partial);
      this.partial = '';
      this.ended = true;
      this.feed();
      this.notify();
    });
    this.input.on('error', (e) => {
      this.failure = inputError(`cannot read ${this.o.where}: ${e.message}`);
      this.notify();
    });
  }

  readonly onSignal = (s: NodeJS.Signals): void => {
    this.res.signal ??= s;
    this.notify();
  };

  /** The next tick, waiting for input; null at the end of the input, on a signal or a failure. */
  private async next(): Promise<Tick | null> {
    for (;;) {
      if (this.res.signal || this.failure) return null;
      const tick = this.queue.shift();
      if (tick) return tick;
      this.feed();
      if (this.queue.depth > 0) continue;
      if (this.fatal) {
        this.failure = this.fatal;
        return null;
      }
      if (this.ended && this.waiting.length === 0) return null;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** One tick through the time check and the model; its line emitted. */
  private process(tick: Tick, depth: number): void {
    const { res, o } = this;
    const v = this.runner.time.check(tick.at);
    if (v.kind === 'duplicate' || v.kind === 'out-of-order') {
      if (!this.fresh) res.replayed++;
      else if (v.kind === 'duplicate') res.duplicates++;
      else res.outOfOrder++;
      return;
    }
    this.fresh = true;
    const extra: Record<string, unknown> = {};
    if (v.kind === 'gap') {
      extra.gap = v.missing;
      res.gaps++;
    }
    if (o.queueDepth) extra.queue = depth;
    o.emit(JSON.stringify(this.runner.tick(tick.t, tick.values, extra)));
    res.ticks++;
    if (o.save && o.saveEvery > 0 && this.runner.ticks % o.saveEvery === 0) o.save();
  }

  async run(): Promise<RunResult> {
    const t0 = performance.now();
    try {
      for (let tick = await this.next(); tick; tick = await this.next()) {
        this.process(tick, this.queue.depth);
        await this.o.afterTick?.();
        if (this.queue.depth < this.queue.capacity) this.feed();
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.res.seconds = (performance.now() - t0) / 1000;
      this.input.destroy();
    }
    this.o.save?.(); // at the end of the input, on a signal, or before a fatal error: the ticks done are kept
    if (this.failure) throw this.failure;
    return this.res;
  }
}

/** Run `runner` over `input` until it ends or a signal (SIGTERM, SIGINT) stops it; the state is saved either way. */
export async function runStream(runner: StreamRunner, input: Readable, o: RunOptions): Promise<RunResult> {
  const loop = new StreamLoop(runner, input, o);
  loop.listen();
  process.on('SIGTERM', loop.onSignal);
  process.on('SIGINT', loop.onSignal);
  try {
    return await loop.run();
  } finally {
    process.off('SIGTERM', loop.onSignal);
    process.off('SIGINT', loop.onSignal);
  }
}
