// A StoreReader over an in-memory DuckDB whose tables and views a Parquet store or a merged dataset sets up.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { InrunError } from '@inrun/store';
import { checkReadsOnly, ONE_STATEMENT, READ_ONLY } from './read-only.js';
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

/** Every file under `path` (a store's own files), as given and resolved: what DuckDB may read. */
function storeFiles(path: string): string[] {
  const files = readdirSync(path, { recursive: true, encoding: 'utf8' })
    .map((name) => join(path, name))
    .filter((p) => statSync(p).isFile());
  return [...new Set([...files, ...files.map((f) => resolve(f))])];
}

/**
 * Locks the connection down once the views exist: it may read the files of the store at `path` and
 * nothing else (no other file, no network, no extension loaded or installed), and nobody can unlock
 * it. DuckDB checks access when a view is read, not when it is made, hence `allowed_paths` (the
 * store's files as listed now, a superset of those the views name).
 */
async function lockDown(db: DuckDBConnection, path: string): Promise<void> {
  await db.run(`SET allowed_paths = ${pathList(storeFiles(path))}`);
  await db.run('SET enable_external_access = false');
  await db.run('SET autoload_known_extensions = false');
  await db.run('SET autoinstall_known_extensions = false');
  await db.run('SET lock_configuration = true');
}

/**
 * Opens an in-memory DuckDB (extensions never loaded or installed: nothing may be downloaded at run
 * time), lets `build` create the store's tables and views, then locks it down to the store's own
 * files (`lockDown`) and answers SQL over them: one statement, and only one that reads (as a SQLite
 * store opened read-only answers).
 */
export async function duckdbStore(path: string, kind: StoreReader['kind'], build: (db: DuckDBConnection) => Promise<void>): Promise<StoreReader> {
  const { DuckDBInstance, StatementType } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const db = await instance.connect();
  try {
    await build(db);
    await lockDown(db, path);
  } catch (error) {
    db.closeSync();
    instance.closeSync();
    // DuckDB reads the files' footers as it makes the views: a damaged one is bad input, and its message names the file.
    if (error instanceof InrunError) throw error;
    throw new InrunError(`${path} cannot be read (${(error as Error).message.split('\n')[0]}): a file of the store is damaged or foreign`, { field: 'store', code: 'invalid_input', cause: error });
  }
  const failed = (cause: unknown) => (cause instanceof InrunError ? cause : new InrunError(`the query failed: ${(cause as Error).message}`, { field: 'sql', code: 'invalid_input', cause }));
  const prepare = async (sql: string, params: readonly SqlParam[]) => {
    checkReadsOnly(sql);
    const statements = await db.extractStatements(sql);
    if (statements.count !== 1) throw new InrunError(`the query failed: ${statements.count === 0 ? 'no statement' : ONE_STATEMENT}`, { field: 'sql', code: 'invalid_input' });
    const statement = await statements.prepare(0);
    if (statement.statementType !== StatementType.SELECT && statement.statementType !== StatementType.EXPLAIN) {
      throw new InrunError(READ_ONLY, { field: 'sql', code: 'invalid_input' });
    }
    statement.bind([...params]);
    return statement;
  };
  return {
    path,
    kind,
    async all(sql, params = []) {
      try {
        const reader = await (await prepare(sql, params)).runAndReadAll();
        return reader.getRowObjectsJS().map(plain);
      } catch (cause) {
        throw failed(cause);
      }
    },
    async *iterate(sql, params = []) {
      let chunks;
      try {
        chunks = (await (await prepare(sql, params)).stream()).yieldRowObjectJs();
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
