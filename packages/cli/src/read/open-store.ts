// openStore: picks the StoreReader for a path (a SQLite file, a Parquet folder, a merged dataset).
import { existsSync, statSync } from 'node:fs';
import { InrunError } from '@inrun/store';
import type { StoreReader } from './reader.js';

/**
 * Opens a store for reading: a SQLite file (through better-sqlite3), a Parquet folder (through
 * DuckDB views over the segment files) or a merged dataset (DuckDB views over its Hive partitions).
 * Throws `invalid_input` on `store` when nothing is there or it is not a store, and `invalid_state`
 * when a newer inrun wrote it.
 */
export async function openStore(path: string): Promise<StoreReader> {
  if (!existsSync(path)) throw new InrunError(`no store at ${path}: expected a SQLite file or a Parquet folder written by inrun`, { field: 'store', code: 'invalid_input' });
  if (statSync(path).isDirectory()) {
    const { isDataset } = await import('../dataset/layout.js');
    if (isDataset(path)) {
      const { openMergedStore } = await import('./dataset-reader.js');
      return openMergedStore(path);
    }
    const { openParquetStore } = await import('./parquet-reader.js');
    return openParquetStore(path);
  }
  const { openSqliteStore } = await import('./sqlite-reader.js');
  return openSqliteStore(path);
}
