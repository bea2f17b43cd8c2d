// Which SQL `inrun query` runs: one statement that reads, refused alike on every kind of store before it is prepared.
import { InrunError } from '@inrun/store';

/** The message of a statement that does not only read, the same on every kind of store. */
export const READ_ONLY = 'expected a query that returns rows (the store is read-only)';
/** The message of SQL with several statements (better-sqlite3's own words, so that both kinds say the same). */
export const ONE_STATEMENT = 'The supplied SQL string contains more than one statement';

/** Statements that can only read, by their first word (DuckDB's and SQLite's). */
const READS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE', 'FROM', 'EXPLAIN', 'DESCRIBE', 'SHOW', 'SUMMARIZE', 'PIVOT', 'UNPIVOT']);

/**
 * Refuses (`invalid_input` on `sql`, message `READ_ONLY`) SQL whose first word is not that of a
 * statement that reads. It runs before the engine prepares the SQL, because preparing already
 * resolves files in DuckDB (a COPY would fail on access, not as a write), so both kinds of store say
 * the same; the readers still check what the engine prepared. PRAGMA is refused (some assign, and
 * which ones is not lexical): `SELECT * FROM pragma_table_info('examples')` reads the same in both.
 */
export function checkReadsOnly(sql: string): void {
  const body = sql.replace(/^(\s+|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/|\()*/, '');
  const word = /^[A-Za-z]+/.exec(body)?.[0]?.toUpperCase();
  if (word === undefined || !READS.has(word)) throw new InrunError(READ_ONLY, { field: 'sql', code: 'invalid_input' });
}
