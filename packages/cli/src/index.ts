/**
 * @inrun/cli: offline reading of stored runs, without tf.js. The HTML report, curation manifests, run
 * comparison, SQL over any kind of store, and merging many runs' stores into one dataset; the `inrun`
 * command (`bin`) drives the same functions.
 */

// Reading a store: one contract for a SQLite file, a Parquet folder and a merged dataset.
export { openStore } from './read/open-store.js';
export type { Row, SqlParam, StoreReader } from './read/reader.js';

// The report page and the decisions it leads to.
export { writeReport } from './report/report.js';
export type { ReportOptions, ReportResult } from './report/report.js';
export { curate } from './report/curate.js';
export type { CurateOptions, CurateResult } from './report/curate.js';
export { compareRuns } from './report/compare.js';
export type { ColumnComparison, CompareOptions } from './report/compare.js';

// Many runs' stores into one Hive-partitioned Parquet dataset (docs/scale-out.md#merging-runs).
export { mergeStores } from './dataset/merge.js';
export type { MergedRun, MergeOptions, MergeProgress, MergeResult, OnConflict } from './dataset/merge.js';
export { DATASET_LAYOUT_VERSION } from './dataset/layout.js';
