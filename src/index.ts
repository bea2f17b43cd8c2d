/**
 * inrun: in-run data attribution for TensorFlow.js. The public API; everything else is private.
 */
export { attach } from './attach/attach.js';
export { InrunError } from './errors.js';
export { useFastEmbeddingGradient } from './hooks/gather.js';
export { ops } from './layers/ops.js';
export { loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './run/checkpoint.js';
export { parquetSink, PARQUET_LAYOUT_VERSION } from './store/parquet.js';
export { sqliteSink, SQLITE_SCHEMA_VERSION } from './store/sqlite.js';
export { tracin } from './posthoc/tracin.js';
export { SCORE_BUCKETS } from './telemetry/metrics.js';
export { VERSION } from './version.js';

export type { OpOptions } from './layers/ops.js';
export type { CheckpointInfo } from './run/checkpoint.js';
export type { FitArgs, Run, RunStats } from './run/run.js';
export type { ParquetSinkOptions } from './store/parquet.js';
export type { ResumeState, Sink, TotalsPoint } from './store/sink.js';
export type { SqliteSinkOptions } from './store/sqlite.js';
export type { DeliveryStats, SinkFailure } from './stream/delivery.js';
export type { MetricsOptions } from './telemetry/metrics.js';
export type { Influence, LabelledRows, TracInOptions, TracInResult } from './posthoc/tracin.js';
export type {
  AttachOptions,
  ColumnInfo,
  CoveredLayer,
  ExampleId,
  ExampleInfo,
  FunctionalModel,
  Method,
  RunInfo,
  Scores,
  SkippedLayer,
  StepRecord,
  TargetData,
  TokenOptions,
  TokenScore,
} from './types.js';
