// A merged dataset (`inrun merge`) opened through DuckDB: one view per table over its run=<id> partitions.
import { DATASET_TABLES, partitionDir, partitions } from '../dataset/layout.js';
import { storeTable } from '@inrun/store';
import type { DuckDBConnection } from '@duckdb/node-api';
import { createViews, duckdbStore, emptyColumns, examplesViews, parquetFiles, pathList, unionView } from './duckdb-reader.js';
import type { StoreReader } from './reader.js';

/**
 * Opens a merged dataset in an in-memory DuckDB: each table of the SQLite store (`runs`, `columns`,
 * `examples`, `steps`, `step_scores`, `scores`, `token_scores`, and `source_influence` where some run
 * has it) is a view over its partitions, read with `hive_partitioning`, with the SQLite table's
 * columns (packages/store/src/schema.ts); `example_scores` and `latest_run` as in SQLite. Only runs listed in `runs` are read: the
 * partitions a crashed merge left behind stay invisible until the next merge removes them.
 */
export async function openMergedStore(folder: string): Promise<StoreReader> {
  const runs = new Set(partitions(folder, 'runs'));
  return duckdbStore(folder, 'merged', async (db) => {
    for (const table of DATASET_TABLES) {
      const files = partitions(folder, table.name)
        .filter((id) => runs.has(id))
        .flatMap((id) => parquetFiles(partitionDir(folder, table.name, id)));
      if (files.length === 0 && !table.always) continue;
      // The partition key is read as text (DuckDB would make run=1 a number and run=2024-01-01 a
      // date); the files' own run_id column is what queries see.
      const read = `SELECT * EXCLUDE (run) FROM read_parquet(${pathList(files)}, hive_partitioning = true, hive_types = {'run': VARCHAR}, union_by_name = true)`;
      if (table.name === 'examples') await examplesViews(db, files.length > 0 ? [await withIdType(db, read)] : []);
      else await unionView(db, table.name, files.length > 0 ? [read] : [], emptyColumns(storeTable(table.name)));
    }
    await createViews(db);
  });
}


/** `read` (a dataset's `examples` files) with an `id_type` column: its own, or null where an older inrun merged it without one. */
async function withIdType(db: DuckDBConnection, read: string): Promise<string> {
  const columns = (await db.runAndReadAll(`SELECT * FROM (${read}) LIMIT 0`)).columnNames();
  return columns.includes('id_type') ? read : `SELECT *, NULL::VARCHAR AS id_type FROM (${read})`;
}
