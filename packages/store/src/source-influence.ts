// Dataset-level influence (untrac's rows) stored next to runs: a SQLite table and a Parquet segment per call.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { InrunError, invalid } from './errors.js';
import type { SourceInfluenceRow } from './records.js';
import { readParquetFile, writeParquetFile } from './parquet-file.js';
import { sqliteTableSql, storeTable } from './schema.js';

/** Where {@link writeSourceInfluence} and {@link readSourceInfluence} find the store. */
export interface SourceInfluenceStore {
  /** The run the unlearned model comes from (e.g. `run.id`); rows are stored under it. */
  readonly runId: string;
  /** A SQLite file (the one `sqliteSink` writes, or a new one): rows go to its `source_influence` table. */
  readonly sqlite?: string;
  /** A Parquet folder (the one `parquetSink` writes): rows go to `<folder>/<runId>/source_influence/`. */
  readonly parquet?: string;
}

/** A stored row: the result row, its run and when it was written. */
export interface StoredSourceInfluence extends SourceInfluenceRow {
  readonly runId: string;
  /** ISO time of the write that stored it; one `untrac` call's rows share it. */
  readonly writtenAt: string;
}

/** The table's DDL, from the one schema (docs/schema.md). */
const TABLE = sqliteTableSql(storeTable('source_influence'));

function checkStore(store: SourceInfluenceStore): void {
  if (store === null || typeof store !== 'object') invalid('store', '{ runId, sqlite?, parquet? }', store);
  if (typeof store.runId !== 'string' || store.runId.length === 0 || /[/\\]/.test(store.runId)) invalid('store.runId', 'a run id (non-empty, no slashes)', store.runId);
  if (store.sqlite === undefined && store.parquet === undefined) throw new InrunError('name a sqlite file or a parquet folder', { field: 'store' });
}

/**
 * Stores `untrac`'s rows next to the run they explain, in one transaction (SQLite) or one file written
 * aside and renamed (Parquet), so the report can put them beside the run's per-source values. Rows
 * accumulate: each call adds its rows with its own `written_at`. docs/schema.md has the layout.
 */
export function writeSourceInfluence(rows: readonly SourceInfluenceRow[], store: SourceInfluenceStore): void {
  checkStore(store);
  if (!Array.isArray(rows as unknown)) invalid('rows', "an array of rows (untrac's result.rows)", rows, 'invalid_input');
  const writtenAt = new Date().toISOString();
  if (store.sqlite !== undefined) {
    const db = new Database(store.sqlite);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      db.exec(TABLE);
      const insert = db.prepare('INSERT INTO source_influence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      db.transaction(() => {
        for (const r of rows) insert.run(store.runId, writtenAt, r.target, r.source, r.method, finite(r.influence), finite(r.lossBefore), finite(r.lossAfter), r.steps, r.seconds, r.stopped);
      })();
    } finally {
      db.close();
    }
  }
  if (store.parquet !== undefined) {
    const dir = join(store.parquet, store.runId, 'source_influence');
    mkdirSync(dir, { recursive: true });
    const col = <T extends number | string | null>(name: string, type: 'INT32' | 'DOUBLE' | 'STRING', pick: (r: SourceInfluenceRow) => T, nullable = false) => ({ name, type, data: rows.map(pick), nullable });
    writeParquetFile(join(dir, `${writtenAt.replace(/[:.]/g, '-')}.parquet`), [
      col('written_at', 'STRING', () => writtenAt),
      col('target', 'STRING', (r) => r.target),
      col('source', 'STRING', (r) => r.source),
      col('method', 'STRING', (r) => r.method),
      col('influence', 'DOUBLE', (r) => finite(r.influence), true),
      col('loss_before', 'DOUBLE', (r) => finite(r.lossBefore), true),
      col('loss_after', 'DOUBLE', (r) => finite(r.lossAfter), true),
      col('steps', 'INT32', (r) => r.steps),
      col('seconds', 'DOUBLE', (r) => r.seconds),
      col('stopped', 'STRING', (r) => r.stopped, true),
    ]);
  }
}

/** The stored rows of a run (oldest write first), from the SQLite file or else the Parquet folder. */
export async function readSourceInfluence(store: SourceInfluenceStore): Promise<StoredSourceInfluence[]> {
  checkStore(store);
  const make = (runId: string, o: Record<string, unknown>): StoredSourceInfluence => ({
    runId,
    writtenAt: String(o['written_at']),
    target: String(o['target']),
    source: String(o['source']),
    method: o['method'] as SourceInfluenceRow['method'],
    influence: num(o['influence']),
    lossBefore: num(o['loss_before']),
    lossAfter: num(o['loss_after']),
    steps: Number(o['steps']),
    seconds: Number(o['seconds']),
    stopped: (o['stopped'] ?? null) as SourceInfluenceRow['stopped'],
  });
  if (store.sqlite !== undefined) {
    const db = new Database(store.sqlite, { readonly: true, fileMustExist: true });
    try {
      const known = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'source_influence'").get();
      if (known === undefined) return [];
      const rows = db.prepare('SELECT * FROM source_influence WHERE run_id = ? ORDER BY rowid').all(store.runId) as Record<string, unknown>[];
      return rows.map((o) => make(store.runId, o));
    } finally {
      db.close();
    }
  }
  const dir = join(store.parquet!, store.runId, 'source_influence');
  if (!existsSync(dir)) return [];
  const out: StoredSourceInfluence[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort()) {
    for (const o of await readParquetFile(join(dir, file))) out.push(make(store.runId, o));
  }
  return out;
}

/** NaN and infinities are stored as null (SQLite has no NaN; Parquet readers disagree on it). */
function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function num(x: unknown): number {
  return x === null || x === undefined ? Number.NaN : Number(x);
}
