/**
 * @inrun/store: what a run hands its sinks and what stores hold, without tf.js. The record types, the
 * Sink interface, the SQLite and Parquet sinks, dataset-level influence beside runs, and InrunError.
 * `inrun` re-exports all of it; the CLI and anyone writing a sink can depend on this package alone.
 */

// Record types of runs, scores and examples.
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

// The sink contract and the two sinks that ship.
export type { ResumeState, Sink, TotalsPoint } from './sink.js';
export { sqliteSink, SQLITE_APPLICATION_ID, SQLITE_SCHEMA_VERSION } from './sqlite.js';
export type { SqliteSinkOptions } from './sqlite.js';
export { parquetSink, PARQUET_LAYOUT_VERSION } from './parquet.js';
export type { ParquetSinkOptions } from './parquet.js';

// The store schema, written once: tables, views, columns and types of every kind of store.
export { COLUMN_TYPES, sqliteTableSql, sqliteViewSql, STORE_TABLES, STORE_VIEWS, storeHas, storeTable } from './schema.js';
export type { ColumnType, StoreColumn, StoreKind, StoreTable, StoreView } from './schema.js';

// Dataset-level influence (untrac's rows) stored beside runs.
export { readSourceInfluence, writeSourceInfluence } from './source-influence.js';
export type { SourceInfluenceStore, StoredSourceInfluence } from './source-influence.js';

// Errors and version.
export { InrunError } from './errors.js';
export type { InrunErrorCode } from './errors.js';
export { VERSION } from './version.js';
