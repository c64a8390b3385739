import cliProgress from 'cli-progress';

/**
 * A live progress bar on stderr (cli-progress) when stderr is a terminal; otherwise a plain line
 * about every 10% so logs stay readable. Never writes to stdout.
 */
export interface Progress {
  update(step: number, fields: Record<string, string>): void;
  stop(): void;
}

export function createProgress(total: number, label: string): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${label} [{bar}] {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 20,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { loss: '-', tps: '-' });
    // stop() shows the cursor and turns line wrapping back on; also when the process exits early
    let active = true;
    const stop = () => {
      if (active) {
        active = false;
        bar.stop();
        process.off('exit', stop);
      }
    };
    process.on('exit', stop);
    return {
      update: (s, f) => {
        if (active) bar.update(s, f);
      },
      stop,
    };
  }
  const every = Math.max(1, Math.round(total / 10));
  const t0 = performance.now();
  return {
    update(step, f) {
      if (step % every !== 0 && step !== total) return;
      const el = (performance.now() - t0) / 1000;
      const eta = step > 0 ? (el / step) * (total - step) : 0;
      process.stderr.write(`${label} ${step}/${total} | loss ${f.loss} | ${f.tps} tok/s | ETA ${eta.toFixed(0)}s\n`);
    },
    stop() {},
  };
}
