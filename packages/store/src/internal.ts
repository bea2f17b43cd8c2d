// Helpers shared by inrun's own packages (inrun, @inrun/cli, @inrun/jobs): no semver promise, not for applications.
export { invalid, preview, quote } from './errors.js';
export { checkRunId, newRunId } from './run-id.js';
export { readParquetFile, writeAtomically, writeParquetFile } from './parquet-file.js';
export type { ParquetColumn } from './parquet-file.js';
