// Progress of untrac(): a cli-progress bar on a terminal and the onProgress callback, fed one ascent step at a time.
import cliProgress from 'cli-progress';
import type { UntracProgress } from './untrac-options.js';

export interface ProgressTracker {
  /** An ascent of `planned` steps on `unlearning` begins. */
  begin(unlearning: string, planned: number): void;
  step(): void;
  /** The current ascent ended (its untaken steps, when the guard stopped it, count as done). */
  end(): void;
  stop(): void;
}

/** Tracks `totalSteps` steps over `total` ascents; draws a bar when `bar`, calls `callback` after each step. */
export function progressTracker(total: number, totalSteps: number, bar: boolean, callback: ((p: UntracProgress) => void) | null): ProgressTracker {
  const started = performance.now();
  let done = 0;
  let steps = 0;
  let unlearning = '';
  let endsAt = 0;
  const drawn = bar
    ? new cliProgress.SingleBar(
        { format: 'untrac [{bar}] {done}/{ascents} ascents | {value}/{total} steps | ETA {eta_formatted} | {unlearning}', stream: process.stderr, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  drawn?.start(totalSteps, 0, { done, ascents: total, unlearning });
  const report = () => {
    drawn?.update(steps, { done, unlearning });
    if (callback === null) return;
    const seconds = (performance.now() - started) / 1000;
    callback({ unlearning, done, total, steps, totalSteps, seconds, etaSeconds: steps === 0 ? Number.NaN : (seconds / steps) * (totalSteps - steps) });
  };
  return {
    begin: (name, planned) => {
      unlearning = name;
      endsAt = steps + planned;
    },
    step: () => {
      steps++;
      report();
    },
    end: () => {
      done++;
      steps = endsAt;
      report();
    },
    stop: () => drawn?.stop(),
  };
}
