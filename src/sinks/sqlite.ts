import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { InrunError } from '../errors.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from '../types.js';
import type { Sink } from './sink.js';

/** Options of {@link sqliteSink}. */
export interface SqliteSinkOptions {
  /** Store per-step scores (table `step_scores`); off keeps steps' metadata and totals only. @defaultValue true */
  readonly steps?: boolean;
}

/** Schema version stored in `inrun_meta`; see docs/schema.md. */
export const SQLITE_SCHEMA_VERSION = 1;

// Column types are left out where values keep the type the user gave (example ids: numbers or text).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS inrun_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  status TEXT NOT NULL,
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
`;

/**
 * The embedded default sink: one SQLite file (WAL mode) holding any number of runs. Each flush is
 * one transaction, so a crash keeps every flushed step and leaves the file readable.
 * Tables and meaning: docs/schema.md.
 */
export function sqliteSink(path: string, options: SqliteSinkOptions = {}): Sink {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InrunError('expected a file path', { field: 'sqliteSink.path' });
  }
  const keepSteps = options.steps ?? true;
  let db: Database.Database | null = null;
  let runId = '';
  let columnIds = new Map<string, number>();
  const keys = new Map<ExampleId, number>();

  const open = (): Database.Database => {
    if (db === null) throw new InrunError('the SQLite sink is not open', { field: 'sqliteSink' });
    return db;
  };
  // Example keys are dense per run, assigned on first sight; example_id keeps the user's id.
  const keyOf = (id: ExampleId): number => {
    let key = keys.get(id);
    if (key === undefined) {
      key = keys.size;
      keys.set(id, key);
      open().prepare('INSERT INTO examples (run_id, example_key, example_id) VALUES (?, ?, ?)').run(runId, key, id);
    }
    return key;
  };

  const sink: Sink = {
    name: `sqlite:${path}`,
    open(info: RunInfo) {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      const d = new Database(path);
      db = d;
      d.pragma('journal_mode = WAL');
      d.pragma('synchronous = NORMAL');
      d.exec(SCHEMA);
      d.prepare('INSERT OR IGNORE INTO inrun_meta (key, value) VALUES (?, ?)').run('schema_version', String(SQLITE_SCHEMA_VERSION));
      runId = info.runId;
      const exists = d.prepare('SELECT 1 FROM runs WHERE run_id = ?').get(runId);
      if (exists !== undefined) {
        throw new InrunError(`run "${runId}" is already stored in ${path}; choose another runId`, { field: 'runId' });
      }
      d.transaction(() => {
        d.prepare(
          'INSERT INTO runs (run_id, started_at, status, model, optimizer, info) VALUES (?, ?, ?, ?, ?, ?)',
        ).run(runId, info.startedAt, 'running', info.model.name, info.optimizer.className, JSON.stringify(info));
        const insert = d.prepare('INSERT INTO columns (run_id, column_id, name, method, target) VALUES (?, ?, ?, ?, ?)');
        info.columns.forEach((c, i) => insert.run(runId, i, c.name, c.method, c.target));
      })();
      columnIds = new Map(info.columns.map((c, i) => [c.name, i]));
    },
    writeExamples(examples: readonly ExampleInfo[]) {
      const d = open();
      const update = d.prepare('UPDATE examples SET source = ?, label = ?, text = ? WHERE run_id = ? AND example_key = ?');
      d.transaction(() => {
        for (const e of examples) update.run(e.source ?? null, e.label ?? null, e.text ?? null, runId, keyOf(e.id));
      })();
    },
    writeSteps(records: readonly StepRecord[]) {
      const d = open();
      const step = d.prepare(
        'INSERT INTO steps (run_id, step, epoch, learning_rate, batch_size, loss, target_losses) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      const score = d.prepare('INSERT INTO step_scores (run_id, step, column_id, example_key, value) VALUES (?, ?, ?, ?, ?)');
      d.transaction(() => {
        for (const r of records) {
          step.run(runId, r.step, r.epoch, r.learningRate, r.batchSize, r.loss, JSON.stringify(r.targetLosses));
          const exampleKeys = r.ids.map(keyOf);
          if (!keepSteps) continue;
          for (const [name, values] of Object.entries(r.columns)) {
            const column = columnIds.get(name)!;
            exampleKeys.forEach((key, i) => score.run(runId, r.step, column, key, values[i]!));
          }
        }
      })();
    },
    writeScores(scores: Scores, info: RunInfo) {
      const d = open();
      const put = d.prepare('INSERT OR REPLACE INTO scores (run_id, column_id, example_key, value, steps) VALUES (?, ?, ?, ?, ?)');
      const token = d.prepare(
        'INSERT OR REPLACE INTO token_scores (run_id, column_id, example_key, rank, token, word, value) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      d.transaction(() => {
        const exampleKeys = scores.ids.map(keyOf);
        for (const [name, values] of Object.entries(scores.columns)) {
          const column = columnIds.get(name)!;
          exampleKeys.forEach((key, i) => put.run(runId, column, key, values[i]!, scores.steps[i]!));
        }
        for (const [name, perExample] of Object.entries(scores.tokens)) {
          const column = columnIds.get(name)!;
          perExample.forEach((top, i) =>
            top.forEach((t, rank) => token.run(runId, column, exampleKeys[i]!, rank, t.token, t.word ?? null, t.score)),
          );
        }
        d.prepare('UPDATE runs SET ended_at = ?, status = ?, info = ? WHERE run_id = ?').run(
          new Date().toISOString(),
          'completed',
          JSON.stringify(info),
          runId,
        );
      })();
    },
    close() {
      db?.close();
      db = null;
    },
  };
  return sink;
}
