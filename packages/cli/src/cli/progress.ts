// Progress bars on stderr for long work and for queued jobs (only on a terminal: pipes and CI logs stay clean).
import cliProgress from 'cli-progress';

/** A progress callback for {@link writeReport}-style phases, and `stop` to clear it. */
export function progressBar(): { update: (phase: string, done: number, total: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: '  {phase} [{bar}] {percentage}% {value}/{total} rows', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let phase = '';
  return {
    update(next, done, total) {
      // Small scans finish before a bar is worth drawing.
      if (total < 100_000) return;
      if (next !== phase) {
        if (phase !== '') bar.stop();
        phase = next;
        bar.start(total, done, { phase });
      } else bar.update(done);
    },
    stop() {
      if (phase !== '') bar.stop();
    },
  };
}

/** Jobs done and failed of a run, with ETA (only on a terminal). */
export function jobsBar(): { update: (p: { done: number; failed: number; total: number }) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: '  jobs [{bar}] {value}/{total} done, {failed} failed, ETA {eta_formatted}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      if (!started) bar.start(p.total, p.done, { failed: p.failed });
      else bar.update(p.done, { failed: p.failed });
      started = true;
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
