// A SQLite store opened read-only through better-sqlite3 (DuckDB's sqlite extension downloads at run time).
import Database from 'better-sqlite3';
import { InrunError, SQLITE_SCHEMA_VERSION } from '@inrun/store';
import { checkReadsOnly, READ_ONLY } from './read-only.js';
import type { Row, SqlParam, StoreReader } from './reader.js';

/**
 * Opens `path` read-only; refuses a file that is not an inrun store or that a newer inrun wrote.
 * Everything is read in one read transaction, begun here and ended by `close`: with WAL a run may
 * keep writing meanwhile, and every query of this reader still sees the store as it was at open
 * (a merge never pairs new `steps` with old `step_scores`). The writer's WAL cannot be checkpointed
 * past that point until the reader closes.
 */
export function openSqliteStore(path: string): StoreReader {
  let db: Database.Database | undefined;
  let version: number;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    // The snapshot is taken at the transaction's first read, the one just below.
    db.exec('BEGIN DEFERRED');
    const row = db.prepare("SELECT value FROM inrun_meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
    version = Number(row?.value ?? NaN);
  } catch (cause) {
    db?.close();
    throw new InrunError(`${path} is not an inrun SQLite store (${(cause as Error).message})`, { field: 'store', code: 'invalid_input', cause });
  }
  const open = db;
  if (!(version <= SQLITE_SCHEMA_VERSION)) {
    open.close();
    throw new InrunError(
      Number.isNaN(version)
        ? `${path} has no schema version: not an inrun SQLite store`
        : `${path} has SQLite schema version ${version}, newer than this inrun's (${SQLITE_SCHEMA_VERSION}): upgrade inrun to read it`,
      { field: 'store', code: Number.isNaN(version) ? 'invalid_input' : 'invalid_state' },
    );
  }
  const failed = (cause: unknown) => new InrunError(`the query failed: ${(cause as Error).message}`, { field: 'sql', code: 'invalid_input', cause });
  // A statement that fails while it steps (a malformed JSON argument, a runaway value) is a failing query too.
  const stepping = <T>(step: () => T): T => {
    try {
      return step();
    } catch (cause) {
      if (cause instanceof InrunError) throw cause;
      // A file damaged past its header fails only when a query reaches the damaged pages.
      if (/^SQLITE_(CORRUPT|NOTADB)/.test(String((cause as { code?: unknown }).code))) {
        throw new InrunError(`${path} is damaged (${(cause as Error).message})`, { field: 'store', code: 'invalid_input', cause });
      }
      throw failed(cause);
    }
  };
  const prepare = (sql: string) => {
    checkReadsOnly(sql);
    let statement: Database.Statement;
    try {
      statement = open.prepare(sql);
    } catch (cause) {
      throw failed(cause);
    }
    // The store is opened read-only: a statement that returns no rows could only fail or do nothing.
    if (!statement.reader) throw new InrunError(READ_ONLY, { field: 'sql', code: 'invalid_input' });
    return statement;
  };
  return {
    path,
    kind: 'sqlite',
    all(sql, params = []) {
      return Promise.resolve(stepping(() => prepare(sql).all(...(params as SqlParam[])) as Row[]));
    },
    iterate(sql, params = []) {
      // better-sqlite3 steps the statement row by row: memory stays flat however large the result.
      const rows = stepping(() => prepare(sql).iterate(...(params as SqlParam[])) as IterableIterator<Row>);
      return {
        [Symbol.asyncIterator]: () => ({
          next: () => Promise.resolve(stepping(() => rows.next())),
          return: () => Promise.resolve(rows.return?.() ?? { done: true as const, value: undefined }),
        }),
      };
    },
    // SQLite keeps each value's type: 0 is an integer, "0" text.
    idType: (alias) => `CASE typeof(${alias}.example_id) WHEN 'text' THEN 'string' ELSE 'number' END`,
    tables() {
      const rows = open.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
      return Promise.resolve(rows.map((r) => r.name));
    },
    close() {
      try {
        if (open.inTransaction) open.exec('COMMIT');
      } catch {
        // A read transaction has nothing to keep; a damaged file must not hide the error that closes it.
      }
      open.close();
      return Promise.resolve();
    },
  };
}
