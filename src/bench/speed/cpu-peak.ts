/**
 * The CPU's theoretical float32 peak, for model-FLOP utilisation against the hardware:
 * cores × frequency × FLOP per cycle per core, where FLOP per cycle = FMA units × lanes of the
 * datapath they execute × 2 (a fused multiply-add is two FLOPs).
 *
 * What the machine says is detected (vector ISA from the CPU flags, physical cores, frequency);
 * what no interface reports is assumed from the CPU family (how many FMA units a core has, and
 * whether 512-bit instructions run on a 512-bit or a 256-bit datapath), and every figure says
 * which it is. The frequency is the one the OS reports (the maximum boost clock when cpufreq
 * exposes it, else the base or current clock, so a boosting CPU's peak is understated).
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

export interface CpuPeak {
  model: string;
  /** Vector and matrix extensions found in the CPU flags, by their usual names (AVX2, AVX-512F, AVX-512 VNNI …). */
  isa: string[];
  /** Physical cores (SMT siblings share their core's FMA units). */
  cores: number;
  ghz: number;
  /** Widest float32 vector instructions the CPU has. */
  vector_bits: number;
  /** Width of the FMA units that execute them. */
  datapath_bits: number;
  fma_units: number;
  /** float32 FLOP per cycle per core. */
  flops_per_cycle: number;
  /** All cores, GFLOP/s (1e9). */
  gflops: number;
  /** The numbers read from the machine, with where they came from. */
  detected: string[];
  /** The numbers taken from the CPU family because no interface reports them. */
  assumed: string[];
}

/** The fields of /proc/cpuinfo that matter here (the first processor's; cores counted over all). */
export interface CpuInfo {
  vendor: string;
  family: number | null;
  model: string;
  flags: Set<string>;
  /** Physical cores: distinct (physical id, core id) pairs, else 'cpu cores' × packages, else null. */
  cores: number | null;
  mhz: number | null;
}

/** Parse /proc/cpuinfo text (x86 or ARM). */
export function parseCpuInfo(text: string): CpuInfo {
  const blocks = text.split(/\n\s*\n/).filter((b) => b.trim() !== '');
  const fields = blocks.map(
    (b) =>
      new Map(
        b.split('\n').map((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string];
        }),
      ),
  );
  const first = fields[0] ?? new Map<string, string>();
  const pairs = new Set(fields.filter((f) => f.has('core id')).map((f) => `${f.get('physical id') ?? 0}:${f.get('core id')}`));
  const packages = new Set(fields.map((f) => f.get('physical id') ?? '0')).size;
  const perPackage = Number(first.get('cpu cores'));
  const cores = pairs.size > 0 ? pairs.size : Number.isFinite(perPackage) && perPackage > 0 ? perPackage * packages : null;
  const mhz = Number(first.get('cpu MHz'));
  const family = Number(first.get('cpu family'));
  return {
    vendor: first.get('vendor_id') ?? first.get('CPU implementer') ?? '',
    family: Number.isFinite(family) ? family : null,
    model: first.get('model name') ?? first.get('Processor') ?? '',
    flags: new Set((first.get('flags') ?? first.get('Features') ?? '').split(/\s+/)),
    cores,
    mhz: Number.isFinite(mhz) && mhz > 0 ? mhz : null,
  };
}

const ISA_NAMES: [string, string][] = [
  ['sse4_2', 'SSE4.2'],
  ['avx', 'AVX'],
  ['avx2', 'AVX2'],
  ['fma', 'FMA'],
  ['f16c', 'F16C'],
  ['avx_vnni', 'AVX-VNNI'],
  ['avx512f', 'AVX-512F'],
  ['avx512bw', 'AVX-512BW'],
  ['avx512vl', 'AVX-512VL'],
  ['avx512_vnni', 'AVX-512 VNNI'],
  ['avx512_bf16', 'AVX-512 BF16'],
  ['avx512_fp16', 'AVX-512 FP16'],
  ['amx_tile', 'AMX'],
  ['asimd', 'NEON'],
  ['asimddp', 'NEON dot product'],
  ['sve', 'SVE'],
  ['sve2', 'SVE2'],
  ['i8mm', 'I8MM'],
];

/** The vector ISA flags by name, in a fixed order. */
export function isaNames(flags: Set<string>): string[] {
  return ISA_NAMES.filter(([f]) => flags.has(f)).map(([, n]) => n);
}

/** FMA units and datapath width by CPU family: what no /proc or sysfs file says. */
function microarchitecture(info: CpuInfo, vectorBits: number): { units: number; datapath: number; why: string } {
  const amd = /AMD/i.test(info.vendor),
    intel = /Intel/i.test(info.vendor);
  if (amd && info.family === 26)
    return {
      units: 2,
      datapath: Math.min(512, vectorBits),
      why: 'AMD family 26 (Zen 5): 2 FMA pipes, 512-bit on desktop and server parts',
    };
  if (amd && info.family === 25)
    return {
      units: 2,
      datapath: Math.min(256, vectorBits),
      why: 'AMD family 25 (Zen 3/4): 2 FMA pipes of 256 bits (Zen 4 runs AVX-512 as two halves)',
    };
  if (amd && info.family === 23)
    return { units: 2, datapath: Math.min(256, vectorBits), why: 'AMD family 23 (Zen 2): 2 FMA pipes of 256 bits (Zen 1: 128)' };
  if (intel && vectorBits === 512)
    return { units: 2, datapath: 512, why: 'Intel with AVX-512: 2 FMA units of 512 bits (some Xeon Silver/Gold 5xxx parts have 1)' };
  if (intel) return { units: 2, datapath: vectorBits, why: 'Intel since Haswell: 2 FMA units' };
  return { units: 2, datapath: vectorBits, why: 'unknown CPU family: 2 FMA units of the full vector width' };
}

function readText(file: string): string | null {
  try {
    return existsSync(file) ? readFileSync(file, 'utf8') : null;
  } catch {
    return null;
  }
}

/** The frequency in GHz and where it came from: cpufreq's maximum, '@ x GHz' in the model name, or the reported clock. */
function frequency(info: CpuInfo, maxKhz: string | null): { ghz: number; from: string } {
  const khz = Number(maxKhz?.trim());
  if (Number.isFinite(khz) && khz > 0) return { ghz: khz / 1e6, from: 'cpufreq cpuinfo_max_freq (maximum boost clock)' };
  const named = /@\s*([\d.]+)\s*GHz/i.exec(info.model);
  if (named) return { ghz: Number(named[1]), from: 'the model name (base clock; boost not counted)' };
  if (info.mhz !== null) return { ghz: info.mhz / 1000, from: "/proc/cpuinfo 'cpu MHz' (the clock the OS reports; boost not counted)" };
  const os = cpus()[0]?.speed ?? 0;
  return { ghz: os > 0 ? os / 1000 : 2, from: os > 0 ? 'os.cpus() speed' : 'nothing reports it: 2 GHz assumed' };
}

/** The peak from cpuinfo text and cpufreq's maximum (injectable for tests). */
export function cpuPeakFrom(cpuinfo: string, maxKhz: string | null, logical = cpus().length): CpuPeak {
  const info = parseCpuInfo(cpuinfo);
  const f = info.flags;
  const vectorBits = f.has('avx512f') ? 512 : f.has('avx') ? 256 : 128; // SSE, NEON; SVE's width is not in the flags
  const arch = microarchitecture(info, vectorBits);
  const fma = f.has('fma') || f.has('avx512f') || f.has('asimd') || f.has('sve');
  const units = fma ? arch.units : 1;
  // without FMA a core still issues one multiply and one add per cycle on separate pipes
  const flopsPerCycle = units * (arch.datapath / 32) * 2;
  const cores = info.cores ?? logical;
  const clock = frequency(info, maxKhz);
  const detected = [
    `vector width ${vectorBits} bits (${f.has('avx512f') ? 'avx512f' : f.has('avx') ? 'avx' : 'no AVX'} in the CPU flags)`,
    info.cores !== null ? `${cores} physical cores (/proc/cpuinfo)` : `${cores} cores (logical CPUs: /proc/cpuinfo has no core ids)`,
    `${clock.ghz.toFixed(3)} GHz (${clock.from})`,
  ];
  const assumed = [
    `${units} FMA unit${units > 1 ? 's' : ''} per core, ${arch.datapath}-bit datapath: ${arch.why}${fma ? '' : '; no FMA flag: one multiply and one add pipe'}`,
  ];
  return {
    model: info.model || cpus()[0]?.model || 'unknown CPU',
    isa: isaNames(f),
    cores,
    ghz: clock.ghz,
    vector_bits: vectorBits,
    datapath_bits: arch.datapath,
    fma_units: units,
    flops_per_cycle: flopsPerCycle,
    gflops: cores * clock.ghz * flopsPerCycle,
    detected,
    assumed,
  };
}

/** This machine's peak. */
export function cpuPeak(): CpuPeak {
  return cpuPeakFrom(readText('/proc/cpuinfo') ?? '', readText('/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq'));
}

/** The peak reachable with `threads` threads: at most one core each. */
export function peakGflopsAt(p: CpuPeak, threads: number): number {
  return Math.min(threads, p.cores) * p.ghz * p.flops_per_cycle;
}
