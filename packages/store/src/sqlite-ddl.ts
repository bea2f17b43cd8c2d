// The SQLite store's schema and statements, shared by the Node sink (better-sqlite3) and the browser one (sqlite-wasm): no Node built-ins here.

/** Schema version stored in `inrun_meta`; see docs/schema.md. */
export const SQLITE_SCHEMA_VERSION = 2;

/** `PRAGMA application_id` of an inrun store: 'inrn' in ASCII (see docs/schema.md). */
export const SQLITE_APPLICATION_ID = 0x696e726e;

/**
 * Columns added since version 1, all nullable. A file written by an older inrun gets them on open, so
 * new runs append to it and its old runs stay as they were (their new columns read null).
 */
export const ADDED_COLUMNS: readonly { readonly table: string; readonly column: string; readonly type: string }[] = [
  { table: 'runs', column: 'totals_step', type: 'INTEGER' },
  { table: 'steps', column: 'attribution_ms', type: 'REAL' },
  { table: 'steps', column: 'step_ms', type: 'REAL' },
];

// Column types are left out where values keep the type the user gave (example ids: numbers or text).
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS inrun_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  status TEXT NOT NULL,
  totals_step INTEGER,
  model TEXT NOT NULL,
  optimizer TEXT NOT NULL,
  info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS columns (
  run_id TEXT NOT NULL REFERENCES runs(run_id),
  column_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  method TEXT NOT NULL,
  target TEXT,
  PRIMARY KEY (run_id, column_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS examples (
  run_id TEXT NOT NULL REFERENCES runs(run_id),
  example_key INTEGER NOT NULL,
  example_id NOT NULL,
  source TEXT,
  label,
  text TEXT,
  PRIMARY KEY (run_id, example_key)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS examples_by_id ON examples (run_id, example_id);
CREATE TABLE IF NOT EXISTS steps (
  run_id TEXT NOT NULL REFERENCES runs(run_id),
  step INTEGER NOT NULL,
  epoch INTEGER,
  learning_rate REAL NOT NULL,
  batch_size INTEGER NOT NULL,
  loss REAL,
  target_losses TEXT NOT NULL,
  attribution_ms REAL,
  step_ms REAL,
  PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_scores (
  run_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  column_id INTEGER NOT NULL,
  example_key INTEGER NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (run_id, step, column_id, example_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
  run_id TEXT NOT NULL,
  column_id INTEGER NOT NULL,
  example_key INTEGER NOT NULL,
  value REAL NOT NULL,
  steps INTEGER NOT NULL,
  PRIMARY KEY (run_id, column_id, example_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS token_scores (
  run_id TEXT NOT NULL,
  column_id INTEGER NOT NULL,
  example_key INTEGER NOT NULL,
  rank INTEGER NOT NULL,
  token INTEGER NOT NULL,
  word TEXT,
  value REAL NOT NULL,
  PRIMARY KEY (run_id, column_id, example_key, rank)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS example_scores AS
  SELECT s.run_id, e.example_id, e.source, e.label, c.name AS column_name, c.method, c.target, s.value, s.steps
  FROM scores s
  JOIN examples e ON e.run_id = s.run_id AND e.example_key = s.example_key
  JOIN columns c ON c.run_id = s.run_id AND c.column_id = s.column_id;
CREATE VIEW IF NOT EXISTS latest_run AS
  SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1;
`;

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
