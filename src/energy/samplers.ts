import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Energy sources that run beside frugal's main thread and keep sampling while a long synchronous
 * computation blocks its timers. RAPL counters are read by a worker thread (rapl.ts); these two run
 * as child processes that write samples to a file:
 * - `perf stat -a -I 100 -e power/energy-pkg/`: the package energy event, every 100 ms.
 * - `nvidia-smi --query-gpu=timestamp,index,power.draw -lms 100`: board power of every NVIDIA GPU,
 *   integrated over time (trapezoids). nvidia-smi exposes no energy counter, and on Ampere and newer
 *   power.draw is a 1 s average, so short windows are smoothed.
 * `joules()` re-reads the file and returns the energy since the sampler started; `readings()` counts
 * the samples behind it, so the meter can refuse a window too short to hold a few of them.
 */
export interface Sampler {
  readonly id: 'rapl' | 'perf' | 'nvml';
  /** 'cpu': counters of the CPU package(s) doing the work; 'gpu': board power of accelerators beside it. */
  readonly device: 'cpu' | 'gpu';
  describe(): string;
  /** Joules since the sampler started. */
  joules(): number;
  /** Readings (samples, counter reads) taken since the sampler started. */
  readings(): number;
  close(): void;
}

/** Energy and the number of readings it was summed from. */
export interface Samples {
  joules: number;
  readings: number;
}

export interface Probe {
  ok: boolean;
  problem: string | null;
  detail: string;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}

/** Whether `perf` can count power/energy-pkg/ system-wide here. */
export function probePerf(bin = 'perf'): Probe {
  const r = spawnSync(bin, ['stat', '-a', '-x', ',', '-e', 'power/energy-pkg/', '--', 'sleep', '0.01'], {
    encoding: 'utf8',
    timeout: 5000,
  });
  if (r.error)
    return { ok: false, problem: `perf is not available (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`, detail: '' };
  const line = (r.stderr ?? '').split('\n').find((l) => /energy-pkg/.test(l)) ?? '';
  if (r.status === 0 && /^\s*[\d.]+,Joules,/.test(line)) return { ok: true, problem: null, detail: 'perf power/energy-pkg/' };
  const why = firstLine(r.stderr ?? '') || `exit ${r.status}`;
  return {
    ok: false,
    problem: `perf power events unavailable: ${why}${/paranoid|permission|access/i.test(why) ? ' (needs root or kernel.perf_event_paranoid ≤ 0)' : ''}`,
    detail: '',
  };
}

/** Whether nvidia-smi reports board power here; detail lists the GPUs. */
export function probeNvidiaSmi(bin = 'nvidia-smi'): Probe {
  const r = spawnSync(bin, ['--query-gpu=index,name,power.draw', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 10000 });
  if (r.error) return { ok: false, problem: null, detail: '' }; // no NVIDIA driver: nothing to say
  if (r.status !== 0) return { ok: false, problem: `nvidia-smi failed: ${firstLine(r.stderr || r.stdout)}`, detail: '' };
  const gpus = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(',').map((s) => s.trim()));
  if (gpus.length === 0) return { ok: false, problem: null, detail: '' };
  if (gpus.some((g) => !Number.isFinite(Number(g[2]))))
    return { ok: false, problem: `nvidia-smi reports no power reading (${gpus.map((g) => g[2]).join(', ')})`, detail: '' };
  return { ok: true, problem: null, detail: gpus.map((g) => `GPU ${g[0]} (${g[1]})`).join(', ') };
}

/** The power/energy-pkg/ intervals in `perf stat -x, -I` output (lines: time,value,Joules,event,…): their sum and count. */
export function perfSamples(text: string): Samples {
  let joules = 0,
    readings = 0;
  for (const line of text.split('\n')) {
    const f = line.split(',');
    if (f.length >= 4 && /energy-pkg/.test(f[3]) && f[2] === 'Joules' && f[1].trim() !== '' && Number.isFinite(Number(f[1]))) {
      joules += Number(f[1]);
      readings++;
    }
  }
  return { joules, readings };
}

/** Sum of power/energy-pkg/ intervals in `perf stat -x, -I` output. */
export function parsePerfIntervals(text: string): number {
  return perfSamples(text).joules;
}

/** Milliseconds of an nvidia-smi timestamp `YYYY/MM/DD HH:MM:SS.mmm` (as UTC: only differences are used). */
function smiTime(s: string): number {
  const m = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$/.exec(s.trim());
  if (!m) return Number.NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], m[7] ? +m[7].padEnd(3, '0') : 0);
}

/** `nvidia-smi --query-gpu=timestamp,index,power.draw` samples: joules (trapezoids per GPU, summed) and the sample count. */
export function smiSamples(text: string): Samples {
  const series = new Map<string, { t: number; w: number }[]>();
  for (const line of text.split('\n')) {
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 3) continue;
    const t = smiTime(f[0]),
      w = Number(f[2]);
    if (!Number.isFinite(t) || !Number.isFinite(w) || f[2] === '') continue;
    const s = series.get(f[1]) ?? [];
    s.push({ t, w });
    series.set(f[1], s);
  }
  let joules = 0,
    readings = 0;
  for (const s of series.values()) {
    readings = Math.max(readings, s.length); // GPUs are sampled together: one reading covers all of them
    for (let i = 1; i < s.length; i++) {
      const dt = (s[i].t - s[i - 1].t) / 1000;
      if (dt > 0) joules += (dt * (s[i].w + s[i - 1].w)) / 2;
    }
  }
  return { joules, readings };
}

/** Joules from nvidia-smi power samples (see smiSamples). */
export function integrateSmiSamples(text: string): number {
  return smiSamples(text).joules;
}

class FileSampler implements Sampler {
  readonly id: 'perf' | 'nvml';
  readonly device: 'cpu' | 'gpu';
  private readonly dir: string;
  private readonly file: string;
  private readonly child: ChildProcess;
  private readonly parse: (text: string) => Samples;
  private readonly what: string;
  private readonly onExit: () => void;
  private closed = false;

  constructor(
    id: 'perf' | 'nvml',
    bin: string,
    args: (file: string) => string[],
    toStdout: boolean,
    parse: (t: string) => Samples,
    what: string,
  ) {
    this.id = id;
    this.device = id === 'perf' ? 'cpu' : 'gpu';
    this.dir = mkdtempSync(join(tmpdir(), 'frugal-energy-'));
    this.file = join(this.dir, 'samples.txt');
    this.parse = parse;
    this.what = what;
    const fd = openSync(this.file, 'w');
    try {
      this.child = spawn(bin, args(this.file), { stdio: ['ignore', toStdout ? fd : 'ignore', 'ignore'] });
    } finally {
      closeSync(fd);
    }
    this.child.on('error', () => {
      /* reported as zero samples */
    });
    this.onExit = () => this.close();
    process.once('exit', this.onExit);
  }

  describe(): string {
    return this.what;
  }

  private samples(): Samples {
    try {
      return existsSync(this.file) ? this.parse(readFileSync(this.file, 'utf8')) : { joules: 0, readings: 0 };
    } catch {
      return { joules: 0, readings: 0 };
    }
  }

  joules(): number {
    return this.samples().joules;
  }
  readings(): number {
    return this.samples().readings;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    process.removeListener('exit', this.onExit);
    this.child.kill('SIGTERM'); // not SIGINT: a shell's background jobs ignore it, and the interval samples are already written
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function startPerfSampler(bin = 'perf'): Sampler {
  return new FileSampler(
    'perf',
    bin,
    (file) => ['stat', '-a', '-x', ',', '-I', '100', '-e', 'power/energy-pkg/', '-o', file],
    false,
    perfSamples,
    'perf power/energy-pkg/ (all packages, every process)',
  );
}

export function startNvidiaSmiSampler(bin = 'nvidia-smi', gpus = 'NVIDIA GPUs'): Sampler {
  return new FileSampler(
    'nvml',
    bin,
    () => ['--query-gpu=timestamp,index,power.draw', '--format=csv,noheader,nounits', '-lms', '100'],
    true,
    smiSamples,
    `NVML board power via nvidia-smi, 100 ms samples integrated: ${gpus}`,
  );
}
