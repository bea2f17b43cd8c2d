/**
 * inrun: in-run data attribution for TensorFlow.js. The public API, grouped by topic; everything
 * else is private. The report and CLI are `@inrun/cli`, the offline jobs past one process `@inrun/jobs`
 * (docs/architecture.md#packages). This is the Node entry; bundlers for the browser pick `browser.ts`
 * (the `browser` export condition), which leaves out what needs a file system.
 */
import { useCheckpointFolders } from './run/checkpoint-choice.js';
import { nodeCheckpointFolders } from './run/checkpoint-folders-node.js';

// Checkpoint folders over node:fs (the browser entry has none).
useCheckpointFolders(nodeCheckpointFolders);

// Attach to a training loop, and the run it returns.
export { attach } from './attach/attach.js';
export type { AttachOptions, CheckpointOptions, DeliveryOptions, NonFinitePolicy, SketchOptions, TokenOptions } from './attach/options.js';
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

// Checkpoints and TracIn from them.
export { loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './run/checkpoint.js';
export { loadModelFolder } from './run/model-folder.js';
export type { CheckpointInfo } from './run/checkpoint.js';
export { tracin } from './posthoc/tracin.js';
export type { Influence, TracInResult, SourceInfluence } from './posthoc/tracin.js';
export type { LabelledRows, TracInOptions } from './posthoc/tracin-options.js';

// Dataset-level influence: unlearning (UnTrac, UnTrac-Inv) and a run's values summed per source.
export { untrac } from './posthoc/untrac.js';
export type { UntracResult } from './posthoc/untrac.js';
export type { UntracData, UntracOptions, UntracProgress, UntracRow } from './posthoc/untrac-options.js';
export { NO_SOURCE, sourceValues } from './posthoc/source-values.js';
export type { SourceValue, SourceValues, SourceValuesOptions } from './posthoc/source-values.js';
export { readSourceInfluence, writeSourceInfluence } from '@inrun/store';
export type { SourceInfluenceStore, StoredSourceInfluence } from '@inrun/store';

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
export { parquetSink, PARQUET_LAYOUT_VERSION, sqliteSink, SQLITE_APPLICATION_ID, SQLITE_SCHEMA_VERSION } from '@inrun/store';
export type { ParquetSinkOptions, ResumeState, Sink, SqliteSinkOptions, TotalsPoint } from '@inrun/store';
export type { DeliveryStats, SinkFailure } from './stream/delivery.js';

// Telemetry.
export { SCORE_BUCKETS } from './telemetry/metrics.js';
export type { MetricsOptions } from './telemetry/metrics.js';

// Errors and version.
export { InrunError } from './errors.js';
export type { InrunErrorCode } from './errors.js';
export { VERSION } from './version.js';
export { trak, resolveTrakOptions } from './posthoc/trak.js';
export type { TrakOptions, ResolvedTrakOptions, TrakResult } from './posthoc/trak.js';
