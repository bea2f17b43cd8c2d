// The SQLite store's DDL (from schema.ts) and statements, shared by the Node sink (better-sqlite3) and the browser one (sqlite-wasm): no Node built-ins here.
import { COLUMN_TYPES, sqliteTableSql, sqliteViewSql, STORE_TABLES, STORE_VIEWS, storeHas } from './schema.js';

/** Schema version stored in `inrun_meta`; see docs/schema.md. */
export const SQLITE_SCHEMA_VERSION = 2;

/** `PRAGMA application_id` of an inrun store: 'inrn' in ASCII (see docs/schema.md). */
export const SQLITE_APPLICATION_ID = 0x696e726e;

/**
 * Columns added since version 1 (the schema's `since`), all nullable. A file written by an older inrun
 * gets them on open, so new runs append to it and its old runs stay as they were (their new columns read null).
 */
export const ADDED_COLUMNS: readonly { readonly table: string; readonly column: string; readonly type: string }[] = STORE_TABLES.flatMap((t) =>
  t.columns.filter((c) => (c.since ?? 1) > 1).map((c) => ({ table: t.name, column: c.name, type: COLUMN_TYPES[c.type].sqlite })),
);

/**
 * The sinks' tables and views, made from the schema (docs/schema.md): every table but
 * `source_influence` (created by `writeSourceInfluence` on first write), every view with SQL.
 */
export const SCHEMA = [
  ...STORE_TABLES.filter((t) => storeHas(t, 'sqlite') && t.optional !== true).map(sqliteTableSql),
  ...STORE_VIEWS.filter((v) => storeHas(v, 'sqlite') && v.sql !== undefined).map(sqliteViewSql),
].join('\n');

/** The statements both sinks write with (column lists in one place, so the two files stay the same). */
export const SQL = {
  insertRun: 'INSERT INTO runs (run_id, started_at, status, model, optimizer, info) VALUES (?, ?, ?, ?, ?, ?)',
  insertColumn: 'INSERT INTO columns (run_id, column_id, name, method, target) VALUES (?, ?, ?, ?, ?)',
  insertExample: 'INSERT INTO examples (run_id, example_key, example_id) VALUES (?, ?, ?)',
  describeExample: 'UPDATE examples SET source = ?, label = ?, text = ? WHERE run_id = ? AND example_key = ?',
  /** Without VALUES: the Node sink batches rows per statement. */
  insertSteps: 'INSERT INTO steps (run_id, step, epoch, learning_rate, batch_size, loss, target_losses, attribution_ms, step_ms)',
  insertStepScores: 'INSERT INTO step_scores (run_id, step, column_id, example_key, value)',
  putScore: 'INSERT OR REPLACE INTO scores (run_id, column_id, example_key, value, steps) VALUES (?, ?, ?, ?, ?)',
  putTokenScore: 'INSERT OR REPLACE INTO token_scores (run_id, column_id, example_key, rank, token, word, value) VALUES (?, ?, ?, ?, ?, ?, ?)',
  finishTotals: 'UPDATE runs SET totals_step = ?, info = ?, status = ?, ended_at = ? WHERE run_id = ?',
  setSchemaVersion: 'INSERT OR REPLACE INTO inrun_meta (key, value) VALUES (?, ?)',
} as const;
