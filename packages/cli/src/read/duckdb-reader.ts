// A StoreReader over an in-memory DuckDB whose tables and views a Parquet store or a merged dataset sets up.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { COLUMN_TYPES, InrunError, STORE_VIEWS, type StoreTable } from '@inrun/store';
import { text } from './text.js';
import type { Row, SqlParam, StoreReader } from './reader.js';

/** A SQL string literal. */
export const literal = (s: string): string => `'${s.replaceAll("'", "''")}'`;
/** A SQL identifier (score column names hold `:`). */
export const ident = (s: string): string => `"${s.replaceAll('"', '""')}"`;
/** A DuckDB list of paths, for `read_parquet`. */
export const pathList = (paths: readonly string[]): string => `[${paths.map(literal).join(', ')}]`;

/** The `.parquet` files in `dir` (none when it is missing), sorted by name. */
export const parquetFiles = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort().map((f) => join(dir, f)) : []);

/** `NULL::<type> AS <column>, ...`: the columns of a schema table, for a view of it with no rows. */
export const emptyColumns = (table: StoreTable): string => table.columns.map((c) => `NULL::${COLUMN_TYPES[c.type].duckdb} AS ${ident(c.name)}`).join(', ');

/**
 * The select list that gives a schema table's columns, in its order and under its names: each
 * column from `from[name]`, else from the source's column of that name. Throws on a name the table
 * lacks, so a reader cannot answer a column the schema does not have.
 */
export function selectList(table: StoreTable, from: Readonly<Record<string, string>> = {}): string {
  const unknown = Object.keys(from).filter((name) => !table.columns.some((c) => c.name === name));
  if (unknown.length > 0) throw new Error(`table ${table.name} has no column ${unknown.join(', ')} (packages/store/src/schema.ts)`);
  return table.columns.map((c) => (from[c.name] === undefined ? ident(c.name) : `${from[c.name]} AS ${ident(c.name)}`)).join(', ');
}

/** Creates the schema's views that every kind of store has (`example_scores`, `latest_run`), in DuckDB's SQL. */
export async function createViews(db: DuckDBConnection): Promise<void> {
  for (const view of STORE_VIEWS) if (view.only === undefined && view.sql !== undefined) await db.run(`CREATE VIEW ${view.name} AS ${view.sql}`);
}

/** Creates view `name` as the union of `parts`, or, with none, as no rows of the columns `empty` names. */
export async function unionView(db: DuckDBConnection, name: string, parts: readonly string[], empty: string): Promise<void> {
  await db.run(`CREATE VIEW ${name} AS ${parts.length > 0 ? parts.join(' UNION ALL BY NAME ') : `SELECT * FROM (SELECT ${empty}) WHERE false`}`);
}

/** DuckDB's BIGINT and HUGEINT come back as bigint; counts and sums fit a number. */
function plain(row: Record<string, unknown>): Row {
  for (const k of Object.keys(row)) if (typeof row[k] === 'bigint') row[k] = Number(row[k]);
  return row;
}

/**
 * Opens an in-memory DuckDB (extensions never auto-installed: nothing may be downloaded at run
 * time), lets `build` create the store's tables and views, and answers SQL over them.
 */
export async function duckdbStore(path: string, kind: StoreReader['kind'], build: (db: DuckDBConnection) => Promise<void>): Promise<StoreReader> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false' });
  const db = await instance.connect();
  try {
    await build(db);
  } catch (error) {
    db.closeSync();
    instance.closeSync();
    throw error;
  }
  const failed = (cause: unknown) => new InrunError(`the query failed: ${(cause as Error).message}`, { field: 'sql', code: 'invalid_input', cause });
  return {
    path,
    kind,
    async all(sql, params = []) {
      try {
        const reader = await db.runAndReadAll(sql, params as SqlParam[]);
        return reader.getRowObjectsJS().map(plain);
      } catch (cause) {
        throw failed(cause);
      }
    },
    async *iterate(sql, params = []) {
      let chunks;
      try {
        chunks = (await db.stream(sql, params as SqlParam[])).yieldRowObjectJs();
      } catch (cause) {
        throw failed(cause);
      }
      // A file that turns out unreadable mid-stream fails here, not at the start.
      while (true) {
        let next;
        try {
          next = await chunks.next();
        } catch (cause) {
          throw failed(cause);
        }
        if (next.done === true) return;
        for (const row of next.value) yield plain(row);
      }
    },
    async tables() {
      const reader = await db.runAndReadAll("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1");
      return reader.getRowObjectsJS().map((r) => text(r['name']));
    },
    close() {
      db.closeSync();
      instance.closeSync();
      return Promise.resolve();
    },
  };
}
