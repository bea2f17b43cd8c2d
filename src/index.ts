/**
 * inrun: in-run data attribution for TensorFlow.js. The public API, grouped by topic; everything
 * else is private.
 */

// Attach to a training loop, and the run it returns.
export { attach } from './attach/attach.js';
export type { AttachOptions, TokenOptions } from './attach/options.js';
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
  StepRecord,
  TargetData,
  TokenScore,
} from './types.js';

// Hand-written models and tf.js helpers.
export { ops } from './layers/ops.js';
export type { OpOptions } from './layers/ops.js';
export { useFastEmbeddingGradient } from './hooks/gather.js';

// Checkpoints and TracIn from them.
export { loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './run/checkpoint.js';
export type { CheckpointInfo } from './run/checkpoint.js';
export { tracin } from './posthoc/tracin.js';
export type { Influence, LabelledRows, TracInOptions, TracInResult } from './posthoc/tracin.js';

// Unlearning: remove rows or a concept from a trained model (the same request is an attribution target).
export { unlearn } from './unlearn/unlearn.js';
export type { UnlearnEpoch, UnlearnMetrics, UnlearnResult } from './unlearn/unlearn.js';
export type { UnlearnMethod, UnlearnOptions, UnlearnRequest, UnlearnRows } from './unlearn/options.js';
export { LoraConv2D, LoraDense, LoraEmbedding } from './unlearn/lora.js';
export type { LoraConv2DArgs, LoraDenseArgs, LoraEmbeddingArgs } from './unlearn/lora.js';
export { mergeAdapters } from './unlearn/adapt.js';
export { membershipAuc, qualityUtility } from './unlearn/metrics.js';
export type { ConceptRows, QualityUtility } from './unlearn/metrics.js';

// Sinks and delivery.
export { parquetSink, PARQUET_LAYOUT_VERSION } from './store/parquet.js';
export type { ParquetSinkOptions } from './store/parquet.js';
export { sqliteSink, SQLITE_SCHEMA_VERSION } from './store/sqlite.js';
export type { SqliteSinkOptions } from './store/sqlite.js';
export type { ResumeState, Sink, TotalsPoint } from './store/sink.js';
export type { DeliveryStats, SinkFailure } from './stream/delivery.js';

// Telemetry.
export { SCORE_BUCKETS } from './telemetry/metrics.js';
export type { MetricsOptions } from './telemetry/metrics.js';

// Errors and version.
export { InrunError } from './errors.js';
export type { InrunErrorCode } from './errors.js';
export { VERSION } from './version.js';
