// The public face of a run: the Run interface, its counters and run.fit's arguments.
import type * as tf from '@tensorflow/tfjs';
import type { DatasetLike } from '../hooks/fit.js';
import type { DeliveryStats } from '../stream/delivery.js';
import type { CheckpointInfo } from './checkpoint.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from '../types.js';
import type { Observable } from 'rxjs';

/** Arguments of {@link Run.fit}: `model.fit`'s, plus example ids and the shuffle seed. */
export interface FitArgs extends tf.ModelFitArgs {
  /**
   * One id per row of `x`, in row order.
   * @defaultValue the row indices `0..n-1`
   */
  readonly ids?: readonly ExampleId[] | ArrayLike<number>;
  /** Seed of this call's shuffling. @defaultValue the run's seed */
  readonly seed?: number;
}

/** A training run with attribution attached. Created by {@link attach}. */
export interface Run {
  readonly id: string;
  /** Run metadata (covered and skipped layers, columns, optimizer, seeds). */
  readonly info: RunInfo;
  /** Per-step records, emitted in step order after each asynchronous read. Completes on `close()`. */
  readonly records$: Observable<StepRecord>;
  /** `model.fit` with example ids: same arguments and callbacks; shuffling is seeded and exact. */
  fit(x: tf.Tensor | tf.Tensor[], y: tf.Tensor | tf.Tensor[], args?: FitArgs): Promise<tf.History>;
  /** `model.fitDataset` whose elements carry ids: `{ xs, ys, ids }`. */
  fitDataset<T extends tf.TensorContainer>(dataset: tf.data.Dataset<T> | DatasetLike<T>, args: tf.ModelFitDatasetArgs<T>): Promise<tf.History>;
  /**
   * One step of a custom loop: `fn` must run exactly one optimizer step (e.g. `optimizer.minimize`
   * or `model.trainOnBatch`) on the rows whose ids are given, in row order.
   */
  step<T>(ids: readonly ExampleId[] | ArrayLike<number>, fn: () => T | Promise<T>): Promise<T>;
  /**
   * Adds example metadata (source, label, text), sent to the sinks' examples table. A described id
   * gets a score row only once it trains: one never trained is in no `Scores` and no stored score.
   */
  describe(examples: Iterable<ExampleInfo>): void;
  /** Run totals so far (one asynchronous read). */
  scores(): Promise<Scores>;
  /** Reads buffered per-step records and hands them to `records$` and sinks. */
  flush(): Promise<void>;
  /**
   * Saves a checkpoint of the model (weights, optimizer state) to `<dir>/step-<n>` and points
   * `<dir>/latest` at it, after the sinks hold every step up to it and a totals snapshot at it.
   * Call it between steps, e.g. in an `onEpochEnd` callback. LayersModel runs only.
   */
  checkpoint(dir: string): Promise<CheckpointInfo>;
  /**
   * Continues a stored run: before any training step, reopen the sinks at the step of a checkpoint
   * (a folder written by `checkpoint()`) or at `afterStep`; sinks forget the later steps, and the
   * device totals start from the stored ones. Returns where training resumes.
   */
  resume(from: string | { readonly afterStep: number }): Promise<{ readonly step: number; readonly epoch: number | null }>;
  /** Progress and delivery counters. */
  stats(): RunStats;
  /** Flushes, writes totals to sinks, closes them, removes every hook and frees device memory. */
  close(): Promise<Scores>;
}

/** Counters of a run. */
export interface RunStats {
  /** Attributed optimizer steps so far (including resumed ones). */
  readonly steps: number;
  /** Steps whose loss, target losses or scores were NaN or Infinity (read back so far); see `nonFinite`. */
  readonly nonFiniteSteps: number;
  /** The first such step, or null. */
  readonly firstNonFiniteStep: number | null;
  readonly delivery: DeliveryStats;
  /** Milliseconds spent turning records into OpenTelemetry measurements (0 without `metrics`). */
  readonly metricsMs: number;
}
