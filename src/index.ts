/**
 * inrun: in-run data attribution for TensorFlow.js. The public API; everything else is private.
 */
export { attach } from './attach.js';
export { InrunError } from './errors.js';
export { useFastEmbeddingGradient } from './hooks/gather.js';
export { ops } from './hooks/ops.js';
export { loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './checkpoint.js';
export { parquetSink, PARQUET_LAYOUT_VERSION } from './sinks/parquet.js';
export { sqliteSink, SQLITE_SCHEMA_VERSION } from './sinks/sqlite.js';
export { tracin } from './tracin.js';
export { SCORE_BUCKETS } from './telemetry/metrics.js';
export { VERSION } from './version.js';

export type { OpOptions } from './hooks/ops.js';
export type { CheckpointInfo } from './checkpoint.js';
export type { FitArgs, Run, RunStats } from './run.js';
export type { ParquetSinkOptions } from './sinks/parquet.js';
export type { ResumeState, Sink, TotalsPoint } from './sinks/sink.js';
export type { SqliteSinkOptions } from './sinks/sqlite.js';
export type { DeliveryStats, SinkFailure } from './stream/delivery.js';
export type { MetricsOptions } from './telemetry/metrics.js';
export type { Influence, LabelledRows, TracInOptions, TracInResult } from './tracin.js';
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
