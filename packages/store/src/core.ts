// The part of @inrun/store without Node built-ins (for browsers): errors, ids, version, record and sink types.
export { InrunError, invalid, preview, quote } from './errors.js';
export type { InrunErrorCode } from './errors.js';
export { checkRunId, newRunId } from './run-id.js';
export { VERSION } from './version.js';
export type {
  ColumnInfo,
  CoveredLayer,
  ExampleId,
  ExampleInfo,
  Method,
  PosthocMethod,
  RunInfo,
  Scores,
  SkippedLayer,
  SourceInfluenceRow,
  StepRecord,
  TokenScore,
} from './records.js';
export type { ResumeState, Sink, TotalsPoint } from './sink.js';
