// The Sink interface: what a store receives from a run (tf-free, so anyone can write one).
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from './records.js';

/** Where a totals snapshot stands: after which step, and whether it is the run's last. */
export interface TotalsPoint {
  /** Last step the totals include (-1 before the first step). */
  readonly step: number;
  readonly final: boolean;
}

/** What a sink knows of a run it stored: the totals after a given step, to resume from. */
export interface ResumeState {
  /** Examples in the order of their stored keys. */
  readonly ids: readonly ExampleId[];
  /** Totals per column after the resumed step, aligned with `ids`. */
  readonly columns: Readonly<Record<string, ArrayLike<number>>>;
  /** Steps each example took part in, aligned with `ids`. */
  readonly steps: ArrayLike<number>;
  /** The last stored step the totals include (the resume point). */
  readonly step: number;
}

/**
 * Where a run's results go. Sinks see plain data only (no tensors, no training), so writing one
 * needs no tf.js: see docs/sinks.md for a JSON-lines sink in a dozen lines.
 *
 * Call order: `open` (or `resume`) once before anything else; then `writeExamples`, `writeSteps` and
 * `writeScores` in run order; `close` last. Each call may return a promise, which is awaited before
 * the next call to the same sink.
 */
export interface Sink {
  /** Name for errors and metadata. */
  readonly name: string;
  open(run: RunInfo): void | Promise<void>;
  /** Example metadata (source, label, text), as the user gave it. */
  writeExamples?(examples: readonly ExampleInfo[]): void | Promise<void>;
  /** Per-step records, in step order. Leave it out to receive totals only. */
  writeSteps?(records: readonly StepRecord[]): void | Promise<void>;
  /** A totals snapshot: every `totalsEvery` steps, at `run.checkpoint()`, and the final one at `close()`. */
  writeScores?(scores: Scores, run: RunInfo, at: TotalsPoint): void | Promise<void>;
  /**
   * Reopens a stored run instead of `open`: forgets every step after `afterStep` (they will be
   * trained again) and returns the totals after it. Sinks without it are opened afresh on resume.
   */
  resume?(run: RunInfo, afterStep: number): ResumeState | Promise<ResumeState>;
  close(): void | Promise<void>;
  /**
   * Whether run `runId` is stored here already: asked at `attach` (synchronously, before `open`), so
   * that a reused run id is reported before training instead of at the first write. Optional.
   */
  stores?(runId: string): boolean;
}
