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
  /**
   * SQL for the type an example's id was given as, `'number'` or `'string'`, where `alias` names a
   * row of `examples`: SQLite keeps the value's own type; a Parquet store and a merged dataset store
   * ids as text and keep the type beside them (null in a dataset an older inrun merged). Give it to
   * `typedId` (example-id.ts) with the id, so that the number 0 and the text "0" stay distinct ids.
   */
  idType(alias: string): string;
  /** Names of the tables and views a query can use. */
  tables(): Promise<string[]>;
  close(): Promise<void>;
}
