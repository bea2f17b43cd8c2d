// A progress bar on stderr for long work (only on a terminal: pipes and CI logs stay clean).
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
