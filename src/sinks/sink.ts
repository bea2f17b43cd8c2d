import type { ExampleInfo, RunInfo, Scores, StepRecord } from '../types.js';

/**
 * Where a run's results go. Sinks see plain data only (no tensors, no training), so writing one
 * needs no tf.js: see docs/sinks.md for a JSON-lines sink in a dozen lines.
 *
 * Call order: `open` once before anything else; then `writeExamples` and `writeSteps` any number of
 * times; `writeScores` with the run's totals at the end; `close` last. Each may return a promise,
 * which the run awaits before the next call.
 */
export interface Sink {
  /** Name for errors and metadata. */
  readonly name: string;
  open(run: RunInfo): void | Promise<void>;
  /** Example metadata (source, label, text), as the user gave it. */
  writeExamples?(examples: readonly ExampleInfo[]): void | Promise<void>;
  /** Per-step records, in step order. Leave it out to receive totals only. */
  writeSteps?(records: readonly StepRecord[]): void | Promise<void>;
  /** Run totals. */
  writeScores?(scores: Scores, run: RunInfo): void | Promise<void>;
  close(): void | Promise<void>;
}
