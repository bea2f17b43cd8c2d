// A StoreReader over an in-memory DuckDB whose tables and views a Parquet store or a merged dataset sets up.
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { COLUMN_TYPES, InrunError, STORE_VIEWS, type StoreTable, storeTable } from '@inrun/store';
import { checkReadsOnly, ONE_STATEMENT, READ_ONLY } from './read-only.js';
import { text } from './text.js';
import type { Row, SqlParam, StoreReader } from './reader.js';

/** A SQL string literal. */
export const literal = (s: string): string => `'${s.replaceAll("'", "''")}'`;
/** A SQL identifier (score column names hold `:`). */
export const ident = (s: string): string => `"${s.replaceAll('"', '""')}"`;
/** A DuckDB list of paths, for `read_parquet`. */
export const pathList = (paths: readonly string[]): string => `[${paths.map(literal).join(', ')}]`;

/** Whether `file` is a file whose real path lies inside `root`'s (a symlink out of the store is not the store's). */
function within(root: string, file: string): boolean {
  try {
    return realpathSync(file).startsWith(realpathSync(root) + sep) && statSync(file).isFile();
  } catch {
    return false; // a dangling link
  }
}

/** The `.parquet` files in `dir` (none when it is missing), sorted by name; links to files outside `dir` are left out. */
export const parquetFiles = (dir: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.parquet'))
        .sort()
        .map((f) => join(dir, f))
        .filter((f) => within(dir, f))
    : [];

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

/** The view of `examples` with each id's type beside it (`id_type`), which `StoreReader.idType` reads. */
export const TYPED_EXAMPLES = 'ids.examples';

/**
 * Creates {@link TYPED_EXAMPLES} as the union of `parts`, each giving the schema's columns of
 * `examples`, then `id_type` ('number' or 'string'), and the view `examples` over it without
 * `id_type`. A Parquet column has one type, so ids are text there and their type a column of its
 * own; it stays out of `examples` so that every kind of store answers the schema's columns.
 */
export async function examplesViews(db: DuckDBConnection, parts: readonly string[]): Promise<void> {
  await db.run('CREATE SCHEMA ids');
  await unionView(db, TYPED_EXAMPLES, parts, `${emptyColumns(storeTable('examples'))}, NULL::VARCHAR AS id_type`);
  await db.run(`CREATE VIEW examples AS SELECT * EXCLUDE (id_type) FROM ${TYPED_EXAMPLES}`);
}

/** DuckDB's BIGINT and HUGEINT come back as bigint; counts and sums fit a number. */
function plain(row: Record<string, unknown>): Row {
  for (const k of Object.keys(row)) if (typeof row[k] === 'bigint') row[k] = Number(row[k]);
  return row;
}

/** Every Parquet file under `path` (a store's own files, links out of it left out), as given and resolved: what DuckDB may read. */
function storeFiles(path: string): string[] {
  const files = readdirSync(path, { recursive: true, encoding: 'utf8' })
    .map((name) => join(path, name))
    .filter((p) => p.endsWith('.parquet') && within(path, p));
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
    idType: (alias) => `(SELECT t.id_type FROM ${TYPED_EXAMPLES} t WHERE t.run_id = ${alias}.run_id AND t.example_key = ${alias}.example_key)`,
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
