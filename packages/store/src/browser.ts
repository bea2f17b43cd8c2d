/**
 * @inrun/store/browser: what a page may import from @inrun/store. The record types, the Sink interface,
 * the SQLite sink on sqlite-wasm and the Parquet sink (each on OPFS or in memory) and InrunError, with no
 * Node built-in on the import graph. The Node sinks (`sqliteSink`, `parquetSink`) write files and stay
 * in '@inrun/store'.
 */

export type {
  ColumnInfo,
  CoveredLayer,
  ExampleId,
  ExampleInfo,
  Method,
  RunInfo,
  Scores,
  SkippedLayer,
  StepRecord,
  TokenScore,
} from './records.js';
export type { ResumeState, Sink, TotalsPoint } from './sink.js';
export { sqliteWasmSink } from './sqlite-wasm.js';
export type { SqliteWasmSink, SqliteWasmSinkOptions, SqliteWasmStorage } from './sqlite-wasm.js';
export { SQLITE_APPLICATION_ID, SQLITE_SCHEMA_VERSION } from './sqlite-ddl.js';
export { browserParquetSink } from './parquet-browser.js';
export type { BrowserParquetFile, BrowserParquetSink, BrowserParquetSinkOptions, BrowserParquetStorage, OpfsDirectory, OpfsFile } from './parquet-browser.js';
export type { ParquetSinkOptions } from './parquet-run-writer.js';
export { PARQUET_LAYOUT_VERSION } from './parquet-run-writer.js';
export { InrunError } from './errors.js';
export type { InrunErrorCode } from './errors.js';
export { VERSION } from './version.js';
