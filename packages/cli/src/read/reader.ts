// StoreReader: the contract every kind of stored run is read through (SQL over its tables, read-only).

/** A value bound to a `?` placeholder. */
export type SqlParam = string | number | null;

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
