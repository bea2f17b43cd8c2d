// sqliteSink: a run in an embedded SQLite file (the default store), with schema versions and resume.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { InrunError, preview, quote } from './errors.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from './records.js';
import { checkRunId } from './run-id.js';
import { ADDED_COLUMNS, SCHEMA, SQL, SQLITE_APPLICATION_ID, SQLITE_SCHEMA_VERSION } from './sqlite-ddl.js';
import type { ResumeState, Sink, TotalsPoint } from './sink.js';

/** Options of {@link sqliteSink}. */
export interface SqliteSinkOptions {
  /** Store per-step scores (table `step_scores`); off keeps steps' metadata and totals only. @defaultValue true */
  readonly steps?: boolean;
}

export { SQLITE_APPLICATION_ID, SQLITE_SCHEMA_VERSION } from './sqlite-ddl.js';

/**
 * Whether an opened file may be written: an empty database, one marked with inrun's application id,
 * or an unmarked file an older inrun wrote (its `inrun_meta` holds a schema version). Anything else
 * belongs to another application and is refused before a single write (no table, no WAL switch).
 */
function checkOwnership(d: Database.Database, path: string): void {
  let id: number;
  let tables: string[];
  try {
    // One read transaction: another process creating the store commits its mark and tables together, so both or neither are seen.
    [id, tables] = d.transaction(() => [d.pragma('application_id', { simple: true }) as number, (d.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name)] as const)();
  } catch (cause) {
    throw new InrunError(`${quote(path)} is not an inrun store (not a SQLite database: ${(cause as Error).message}); nothing was changed. Give sqliteSink a new file`, {
      field: 'sqliteSink.path',
      code: 'invalid_input',
      cause,
    });
  }
  if (id === SQLITE_APPLICATION_ID || tables.length === 0) return;
  const olderInrun =
    id === 0 &&
    tables.includes('inrun_meta') &&
    (d.prepare("SELECT COUNT(*) AS n FROM inrun_meta WHERE key = 'schema_version'").get() as { n: number }).n === 1;
  if (olderInrun) return;
  throw new InrunError(
    `${quote(path)} is not an inrun store (it belongs to another application: application_id ${id}, tables ${preview(tables.slice(0, 8).join(', '))}); nothing was changed. Give sqliteSink a new file`,
    { field: 'sqliteSink.path', code: 'invalid_input' },
  );
}

/** Brings a file written by an older inrun up to this schema; refuses one written by a newer inrun. */
function migrate(d: Database.Database, path: string): void {
  const row = d.prepare("SELECT value FROM inrun_meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  const version = row === undefined ? SQLITE_SCHEMA_VERSION : Number(row.value);
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new InrunError(`${path} has SQLite schema version ${version}, newer than this inrun's (${SQLITE_SCHEMA_VERSION}): upgrade inrun, or write to another file`, { field: 'sqliteSink.path', code: 'invalid_input' });
  }
  // IMMEDIATE: it reads, then writes. A deferred transaction that read first cannot wait for another
  // writer (SQLite answers "database is locked" at once, SQLITE_BUSY_SNAPSHOT); one that takes the
  // write lock at BEGIN waits for it (the busy timeout), as two processes creating one store need.
  d.transaction(() => {
    for (const { table, column, type } of ADDED_COLUMNS) {
      const present = (d.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).some((c) => c.name === column);
      if (!present) d.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
    d.prepare(SQL.setSchemaVersion).run('schema_version', String(SQLITE_SCHEMA_VERSION));
  }).immediate();
}

/** How long connecting waits for another process' write lock (better-sqlite3's busy timeout, also SQLite's). */
const BUSY_MS = 10_000;

/**
 * `work`, run again while SQLite answers "database is locked" without waiting (a journal-mode switch
 * while another connection reads: SQLite does not call the busy handler there), up to {@link BUSY_MS}.
 */
function whileBusy<T>(work: () => T): T {
  const deadline = Date.now() + BUSY_MS;
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    try {
      return work();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() > deadline) throw error;
      // Synchronous like the rest of connecting: the sink's open is one step.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
    }
  }
}

/**
 * Inserts rows `width` values wide, `per` rows per statement: better-sqlite3 spends most of a
 * single-row insert on the statement call (measured 2.8x faster at 64 rows per statement).
 */
function batchedInsert(d: Database.Database, sql: string, width: number, per = 64) {
  const row = `(${Array.from({ length: width }, () => '?').join(', ')})`;
  const many = d.prepare(`${sql} VALUES ${Array.from({ length: per }, () => row).join(', ')}`);
  const one = d.prepare(`${sql} VALUES ${row}`);
  const buffer: unknown[] = [];
  return {
    add(...values: unknown[]): void {
      buffer.push(...values);
      if (buffer.length === per * width) {
        many.run(buffer);
        buffer.length = 0;
      }
    },
    /** Writes what is left (call inside the same transaction). */
    flush(): void {
      for (let i = 0; i < buffer.length; i += width) one.run(buffer.slice(i, i + width));
      buffer.length = 0;
    },
  };
}

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
  let stepInsert: ReturnType<typeof batchedInsert> | null = null;
  let scoreInsert: ReturnType<typeof batchedInsert> | null = null;

  const open = (): Database.Database => {
    if (db === null) throw new InrunError('the SQLite sink is not open', { field: 'sqliteSink', code: 'invalid_state' });
    return db;
  };
  // Example keys are dense per run, assigned on first sight; example_id keeps the user's id.
  const keyOf = (id: ExampleId): number => {
    let key = keys.get(id);
    if (key === undefined) {
      key = keys.size;
      keys.set(id, key);
      open().prepare(SQL.insertExample).run(runId, key, id);
    }
    return key;
  };

  const connect = (): Database.Database => {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const d = new Database(path, { timeout: BUSY_MS });
    try {
      whileBusy(() => checkOwnership(d, path));
    } catch (error) {
      d.close();
      throw error;
    }
    db = d;
    // Two processes may create the same new store at once: each step waits for the other's write lock.
    whileBusy(() => d.pragma('journal_mode = WAL'));
    d.pragma('synchronous = NORMAL');
    whileBusy(() =>
      d
        .transaction(() => {
          d.pragma(`application_id = ${SQLITE_APPLICATION_ID}`);
          d.exec(SCHEMA);
        })
        .immediate(),
    );
    whileBusy(() => migrate(d, path));
    return d;
  };

  const sink: Sink = {
    name: `sqlite:${path}`,
    open(info: RunInfo) {
      checkRunId(info.runId);
      const d = connect();
      runId = info.runId;
      if (d.prepare('SELECT 1 FROM runs WHERE run_id = ?').get(runId) !== undefined) {
        throw new InrunError(`run "${runId}" is already stored in ${path}; choose another runId, or resume it`, { field: 'runId', code: 'invalid_state' });
      }
      d.transaction(() => {
        d.prepare(SQL.insertRun).run(runId, info.startedAt, 'running', info.model.name, info.optimizer.className, JSON.stringify(info));
        const insert = d.prepare(SQL.insertColumn);
        info.columns.forEach((c, i) => insert.run(runId, i, c.name, c.method, c.target));
      })();
      columnIds = new Map(info.columns.map((c, i) => [c.name, i]));
    },
    resume(info: RunInfo, afterStep: number): ResumeState {
      checkRunId(info.runId);
      const d = connect();
      runId = info.runId;
      const run = d.prepare('SELECT totals_step FROM runs WHERE run_id = ?').get(runId) as { totals_step: number | null } | undefined;
      if (run === undefined) throw new InrunError(`run "${runId}" is not stored in ${path}; nothing to resume`, { field: 'runId', code: 'invalid_state' });
      const stored = (d.prepare('SELECT name FROM columns WHERE run_id = ? ORDER BY column_id').all(runId) as { name: string }[]).map((r) => r.name);
      const wanted = info.columns.map((c) => c.name);
      if (stored.join() !== wanted.join()) {
        throw new InrunError(`the stored run has columns [${stored.join(', ')}], this run [${wanted.join(', ')}]; resume with the same methods and targets`, { field: 'methods', code: 'invalid_state' });
      }
      columnIds = new Map(wanted.map((name, i) => [name, i]));
      const last = (d.prepare('SELECT MAX(step) AS s FROM steps WHERE run_id = ?').get(runId) as { s: number | null }).s ?? -1;
      if (afterStep > last) {
        throw new InrunError(`step ${afterStep} is not stored in ${path} (the last stored step is ${last})`, { field: 'afterStep', code: 'invalid_state' });
      }
      const examples = d.prepare('SELECT example_key, example_id FROM examples WHERE run_id = ? ORDER BY example_key').all(runId) as {
        example_key: number;
        example_id: ExampleId;
      }[];
      keys.clear();
      for (const e of examples) keys.set(e.example_id, e.example_key);
      const n = examples.length;
      const columns = wanted.map(() => new Float64Array(n));
      const steps = new Int32Array(n);
      if (run.totals_step === afterStep) {
        // The snapshot taken at this step (run.checkpoint writes one): the device's own sums.
        for (const r of d.prepare('SELECT column_id, example_key, value, steps FROM scores WHERE run_id = ?').iterate(runId) as Iterable<{
          column_id: number;
          example_key: number;
          value: number;
          steps: number;
        }>) {
          columns[r.column_id]![r.example_key] = r.value;
          steps[r.example_key] = r.steps;
        }
      } else {
        const perStep = d.prepare('SELECT COUNT(*) AS n FROM step_scores WHERE run_id = ? AND step <= ?').get(runId, afterStep) as { n: number };
        const stepRows = d.prepare('SELECT SUM(batch_size) AS n FROM steps WHERE run_id = ? AND step <= ?').get(runId, afterStep) as { n: number | null };
        if ((stepRows.n ?? 0) * wanted.length !== perStep.n) {
          throw new InrunError(
            `no totals after step ${afterStep} in ${path}: no snapshot at that step and per-step scores are off; resume from a run.checkpoint() step`,
            { field: 'afterStep', code: 'invalid_state' },
          );
        }
        for (const r of d
          .prepare('SELECT column_id, example_key, SUM(value) AS v, COUNT(*) AS k FROM step_scores WHERE run_id = ? AND step <= ? GROUP BY column_id, example_key')
          .iterate(runId, afterStep) as Iterable<{ column_id: number; example_key: number; v: number; k: number }>) {
          columns[r.column_id]![r.example_key] = r.v;
          if (r.column_id === 0) steps[r.example_key] = r.k;
        }
      }
      d.transaction(() => {
        d.prepare('DELETE FROM step_scores WHERE run_id = ? AND step > ?').run(runId, afterStep);
        d.prepare('DELETE FROM steps WHERE run_id = ? AND step > ?').run(runId, afterStep);
        d.prepare("UPDATE runs SET status = 'running', ended_at = NULL, info = ? WHERE run_id = ?").run(JSON.stringify(info), runId);
      })();
      return {
        ids: examples.map((e) => e.example_id),
        columns: Object.fromEntries(wanted.map((name, i) => [name, columns[i]!])),
        steps,
        step: afterStep,
      };
    },
    writeExamples(examples: readonly ExampleInfo[]) {
      const d = open();
      const update = d.prepare(SQL.describeExample);
      d.transaction(() => {
        // better-sqlite3 binds every JS number as REAL; a whole-number label goes in as an INTEGER.
        const label = (l: string | number | undefined) => (typeof l === 'number' && Number.isSafeInteger(l) ? BigInt(l) : (l ?? null));
        for (const e of examples) update.run(e.source ?? null, label(e.label), e.text ?? null, runId, keyOf(e.id));
      })();
    },
    writeSteps(records: readonly StepRecord[]) {
      const d = open();
      stepInsert ??= batchedInsert(d, SQL.insertSteps, 9, 16);
      scoreInsert ??= batchedInsert(d, SQL.insertStepScores, 5);
      const steps = stepInsert;
      const scores = scoreInsert;
      d.transaction(() => {
        for (const r of records) {
          steps.add(runId, r.step, r.epoch, r.learningRate, r.batchSize, r.loss, JSON.stringify(r.targetLosses), r.attributionMs, r.stepMs);
          const exampleKeys = r.ids.map(keyOf);
          if (!keepSteps) continue;
          for (const [name, values] of Object.entries(r.columns)) {
            const column = columnIds.get(name)!;
            // SQLite stores NaN as NULL, which value's NOT NULL refuses: leave that one row out, never the transaction.
            exampleKeys.forEach((key, i) => {
              if (!Number.isNaN(values[i])) scores.add(runId, r.step, column, key, values[i]!);
            });
          }
        }
        steps.flush();
        scores.flush();
      })();
    },
    writeScores(scores: Scores, info: RunInfo, at: TotalsPoint) {
      const d = open();
      const put = d.prepare(SQL.putScore);
      const token = d.prepare(SQL.putTokenScore);
      d.transaction(() => {
        const exampleKeys = scores.ids.map(keyOf);
        for (const [name, values] of Object.entries(scores.columns)) {
          const column = columnIds.get(name)!;
          exampleKeys.forEach((key, i) => {
            if (!Number.isNaN(values[i])) put.run(runId, column, key, values[i]!, scores.steps[i]!);
          });
        }
        for (const [name, perExample] of Object.entries(scores.tokens)) {
          const column = columnIds.get(name)!;
          perExample.forEach((top, i) =>
            top.forEach((t, rank) => {
              if (!Number.isNaN(t.score)) token.run(runId, column, exampleKeys[i]!, rank, t.token, t.word ?? null, t.score);
            }),
          );
        }
        d.prepare(SQL.finishTotals).run(
          at.step,
          JSON.stringify(info),
          at.final ? 'completed' : 'running',
          at.final ? new Date().toISOString() : null,
          runId,
        );
      })();
    },
    stores(id: string) {
      if (path === ':memory:' || !existsSync(path)) return false;
      const d = new Database(path, { readonly: true, fileMustExist: true });
      try {
        const table = d.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").get();
        return table !== undefined && d.prepare('SELECT 1 FROM runs WHERE run_id = ?').get(id) !== undefined;
      } finally {
        d.close();
      }
    },
    close() {
      db?.close();
      db = null;
      stepInsert = null;
      scoreInsert = null;
    },
  };
  return sink;
}
