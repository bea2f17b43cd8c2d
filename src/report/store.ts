// StoreReader: SQL over a stored run, a SQLite file or a Parquet folder, behind one small interface.
import { existsSync, statSync } from 'node:fs';
import { InrunError } from '../errors.js';

/** A value bound to a `?` placeholder. */
export type SqlParam = string | number | null;

/** A stored value as text: null and undefined as empty, objects as JSON. */
export function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value as string | number | boolean | bigint | symbol);
}

/** A value as one CSV field (quoted when it holds a comma, quote or line break). */
export function csvField(value: unknown): string {
  const s = text(value);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One result row, keyed by column name; integers come back as numbers. */
export type Row = Record<string, unknown>;

/**
 * A stored run's tables, read-only, through SQL. Every kind answers the same tables and view
 * (`runs`, `columns`, `examples`, `steps`, `step_scores`, `scores`, `token_scores`, `example_scores`;
 * docs/schema.md), so reports and the CLI write their SQL once: a SQLite file, a Parquet folder, or a
 * dataset `mergeStores` wrote (`merged`, docs/scale-out.md).
 */
export interface StoreReader {
  readonly path: string;
  readonly kind: 'sqlite' | 'parquet' | 'merged';
  /** Every row of a query (for small results). */
  all(sql: string, params?: readonly SqlParam[]): Promise<Row[]>;
  /** The rows one at a time, never the whole result in memory (for large results). */
  iterate(sql: string, params?: readonly SqlParam[]): AsyncIterable<Row>;
  /** Names of the tables and views a query can use. */
  tables(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Opens a store for reading: a SQLite file (through better-sqlite3), a Parquet folder (through
 * DuckDB views over the segment files) or a merged dataset (DuckDB views over its Hive partitions).
 * Throws `invalid_input` on `store` when nothing is there or it is not a store, and `invalid_state`
 * when a newer inrun wrote it.
 */
export async function openStore(path: string): Promise<StoreReader> {
  if (!existsSync(path)) throw new InrunError(`no store at ${path}: expected a SQLite file or a Parquet folder written by inrun`, { field: 'store', code: 'invalid_input' });
  if (statSync(path).isDirectory()) {
    const { isDataset } = await import('./dataset.js');
    if (isDataset(path)) {
      const { openMergedStore } = await import('./merged-store.js');
      return openMergedStore(path);
    }
    const { openParquetStore } = await import('./parquet-store.js');
    return openParquetStore(path);
  }
  const { openSqliteStore } = await import('./sqlite-store.js');
  return openSqliteStore(path);
}
