/**
 * inrun for browsers: the entry bundlers pick through the `browser` export condition (esbuild, Vite,
 * webpack, Rollup's node-resolve with `browser: true`). Everything of the Node entry (index.ts) whose
 * import graph has no Node built-in; what needs a file system (checkpoint folders, the Node SQLite and
 * Parquet sinks, model folders, TracIn/TRAK/UnTrac over checkpoints) is a function that throws an
 * `InrunError` (`unsupported_platform`) saying what to use instead. docs/architecture.md#packages.
 */

// Attach to a training loop, and the run it returns.
export { attach } from './attach/attach.js';
export type { AttachOptions, NonFinitePolicy, TokenOptions } from './attach/options.js';
export type { FitArgs, Run, RunStats } from './run/api.js';
export type {
  ColumnInfo,
  CoveredLayer,
  ExampleId,
  ExampleInfo,
  FunctionalModel,
  Method,
  RunInfo,
  Scores,
  SkippedLayer,
  SourceInfluenceRow,
  StepRecord,
  TargetData,
  TokenScore,
} from './types.js';

// Hand-written models and tf.js helpers.
export { ops } from './layers/ops.js';
export type { OpOptions } from './layers/ops.js';
export { useFastEmbeddingGradient } from './hooks/gather.js';

// A run's values summed per source.
export { NO_SOURCE, sourceValues } from './posthoc/source-values.js';
export type { SourceValue, SourceValues, SourceValuesOptions } from './posthoc/source-values.js';

// Unlearning: remove rows or a concept from a trained model.
export { unlearn } from './unlearn/unlearn.js';
export type { UnlearnEpoch, UnlearnMetrics, UnlearnResult } from './unlearn/unlearn.js';
export type { UnlearnMethod, UnlearnOptions, UnlearnRequest, UnlearnRows } from './unlearn/options.js';
export { LoraConv2D, LoraDense, LoraEmbedding } from './unlearn/lora.js';
export type { LoraConv2DArgs, LoraDenseArgs, LoraEmbeddingArgs } from './unlearn/lora.js';
export { mergeAdapters } from './unlearn/adapt.js';
export { membershipAuc, qualityUtility } from './unlearn/metrics.js';
export type { ConceptRows, QualityUtility } from './unlearn/metrics.js';

// Sinks: the contract (browser sinks implement it); delivery.
export type { ResumeState, Sink, TotalsPoint } from '@inrun/store/core';
export type { DeliveryStats, SinkFailure } from './stream/delivery.js';

// Telemetry.
export { SCORE_BUCKETS } from './telemetry/metrics.js';
export type { MetricsOptions } from './telemetry/metrics.js';

// Errors and version.
export { InrunError } from './errors.js';
export type { InrunErrorCode } from './errors.js';
export { VERSION } from './version.js';

// Node only: these throw InrunError('unsupported_platform') naming what to use instead.
export {
  loadCheckpoint,
  loadModelFolder,
  parquetSink,
  readCheckpointInfo,
  readSourceInfluence,
  saveCheckpoint,
  sqliteSink,
  tracin,
  trak,
  untrac,
  writeSourceInfluence,
} from './browser-stubs.js';
