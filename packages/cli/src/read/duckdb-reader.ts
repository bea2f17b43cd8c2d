// A StoreReader over an in-memory DuckDB whose tables and views a Parquet store or a merged dataset sets up.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { InrunError } from '@inrun/store';
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

/** The view that joins totals with example metadata and column names, as the SQLite store has it. */
export const EXAMPLE_SCORES_VIEW = `CREATE VIEW example_scores AS
    SELECT s.run_id, e.example_id, e.source, e.label, c.name AS column_name, c.method, c.target, s.value, s.steps
    FROM scores s
    JOIN examples e ON e.run_id = s.run_id AND e.example_key = s.example_key
    JOIN columns c ON c.run_id = s.run_id AND c.column_id = s.column_id`;

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
