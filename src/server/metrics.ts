import { startEnergy } from '../energy/index.js';
import type { EnergyKind, EnergySession } from '../energy/index.js';

/**
 * The server's Prometheus metrics (text format 0.0.4), kept by hand: a few counters, gauges and
 * two histograms need no client library. Energy comes from the same meter as every frugal
 * command, windowed between scrapes, and is labelled `energy_kind` measured or estimated.
 */
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const ITL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private n = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[],
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.n++;
    this.buckets.forEach((b, i) => {
      if (v <= b) this.counts[i]++;
    });
  }
  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.n}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.n}`);
    return lines.join('\n');
  }
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  generatedTokens = 0;
  prefillTokens = 0;
  snapshots = 0;
  /** Bytes of the snapshots committed: fixed per snapshot for Mamba, growing with the conversation for attention layers. */
  snapshotBytes = 0;
  readonly ttft = new Histogram('frugal_time_to_first_token_seconds', 'Time from a request to its first generated token', TTFT_BUCKETS);
  readonly itl = new Histogram('frugal_inter_token_latency_seconds', 'Time between successive tokens of one stream', ITL_BUCKETS);
  private energy: EnergySession;
  private joules = 0;
  private energyTokens = 0;
  private windowTokens = 0;
  private kind: EnergyKind = 'estimated';
  private method = 'cpu-time';

  constructor(private readonly tdp?: number) {
    this.energy = this.meter();
  }

  private meter(): EnergySession {
    return startEnergy({ tdp: this.tdp, idleBaseline: false, warn: () => {} });
  }

  request(endpoint: string, status: number): void {
    const k = `endpoint="${endpoint}",code="${status}"`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  /** Tokens processed (prefilled or generated), for J/token. */
  tokens(n: number): void {
    this.windowTokens += n;
  }

  /** Close the energy window since the last scrape and open the next. */
  private rollEnergy(): void {
    const r = this.energy.stop(this.windowTokens);
    this.joules += r.joules;
    this.energyTokens += this.windowTokens;
    this.windowTokens = 0;
    this.kind = r.kind;
    this.method = r.method;
    this.energy = this.meter();
  }

  text(active: number, queued: number): string {
    this.rollEnergy();
    const out: string[] = [];
    const one = (name: string, type: string, help: string, value: number, labels = '') =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${value}`);
    out.push('# HELP frugal_requests_total HTTP requests by endpoint and status code', '# TYPE frugal_requests_total counter');
    for (const [k, v] of this.requests) out.push(`frugal_requests_total{${k}} ${v}`);
    one('frugal_generated_tokens_total', 'counter', 'Tokens generated', this.generatedTokens);
    one(
      'frugal_prefill_tokens_total',
      'counter',
      'New prompt tokens prefilled (a continued conversation prefills only its new tokens)',
      this.prefillTokens,
    );
    one('frugal_snapshots_committed_total', 'counter', 'State snapshots committed (one per completed turn and choice)', this.snapshots);
    one(
      'frugal_snapshot_bytes_total',
      'counter',
      'Bytes of the state snapshots committed (fixed per snapshot for a recurrent state; a KV cache grows with the conversation)',
      this.snapshotBytes,
    );
    one('frugal_active_streams', 'gauge', 'Streams in the batched decode loop', active);
    one('frugal_queue_depth', 'gauge', 'Streams waiting for a slot', queued);
    out.push(this.ttft.text(), this.itl.text());
    const kind = `{energy_kind="${this.kind}",method="${this.method}"}`;
    one('frugal_energy_joules_total', 'counter', 'Energy of the server process since it started', this.joules, kind);
    const jpt = this.energyTokens > 0 ? this.joules / this.energyTokens : 0;
    one('frugal_energy_joules_per_token', 'gauge', 'Joules per processed token (prefilled and generated) since start', jpt, kind);
    return `${out.join('\n')}\n`;
  }

  close(): void {
    this.energy.stop(0);
  }
}
