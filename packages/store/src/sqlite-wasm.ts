// sqliteWasmSink: the SQLite store in a browser through the official sqlite-wasm build, on OPFS where it exists, else in memory; the file's bytes for a download.
import { InrunError, preview } from './errors.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from './records.js';
import { checkRunId } from './run-id.js';
import type { Sink, TotalsPoint } from './sink.js';
import { ADDED_COLUMNS, SCHEMA, SQL, SQLITE_APPLICATION_ID, SQLITE_SCHEMA_VERSION } from './sqlite-ddl.js';

/** Where {@link sqliteWasmSink} keeps the database. */
export type SqliteWasmStorage = 'auto' | 'opfs' | 'memory';

/** Options of {@link sqliteWasmSink}. */
export interface SqliteWasmSinkOptions {
  /** File name in the origin private file system (OPFS). @defaultValue 'inrun.sqlite' */
  readonly file?: string;
  /**
   * 'opfs' needs sqlite-wasm's OPFS VFS (a Worker in a cross-origin isolated page), 'memory' keeps
   * the database in the page until it is downloaded, 'auto' takes OPFS where it is there.
   * @defaultValue 'auto'
   */
  readonly storage?: SqliteWasmStorage;
  /** Store per-step scores (table `step_scores`), as `sqliteSink`'s option. @defaultValue true */
  readonly steps?: boolean;
  /**
   * The sqlite-wasm module's init function, for pages that load it themselves (e.g. from another
   * URL). @defaultValue the default export of '@sqlite.org/sqlite-wasm'
   */
  readonly sqlite3InitModule?: () => Promise<unknown>;
}

/** A browser SQLite sink: a {@link Sink} whose database can be handed out as a file. */
export interface SqliteWasmSink extends Sink {
  /** Where the database lives once opened (`null` before `open`). */
  readonly storage: 'opfs' | 'memory' | null;
  /**
   * The database as the bytes of a SQLite file, the same schema as `sqliteSink` writes: it opens in
   * `inrun report`, `inrun query`, DuckDB and `sqlite3`. After `close()`, the bytes as closed.
   */
  bytes(): Promise<Uint8Array>;
  /** {@link SqliteWasmSink.bytes} as a `Blob` (type application/vnd.sqlite3), for a download link. */
  blob(): Promise<Blob>;
}

// The slice of sqlite-wasm's oo1 API this sink uses (the package ships no types).
interface Stmt {
  bind(values: readonly unknown[]): Stmt;
  step(): boolean;
  get(index: number): unknown;
  stepReset(): Stmt;
  reset(): Stmt;
  finalize(): void;
}
interface Db {
  readonly pointer: number;
  exec(sql: string | { sql: string; bind?: readonly unknown[]; rowMode?: 'array'; returnValue?: 'resultRows' }): unknown;
  selectValue(sql: string, bind?: readonly unknown[]): unknown;
  prepare(sql: string): Stmt;
  transaction<T>(fn: () => T): T;
  close(): void;
}
interface Sqlite3 {
  oo1: { DB: new (file: string, mode: string) => Db; OpfsDb?: new (file: string, mode: string) => Db };
  capi: { sqlite3_js_db_export(pointer: number): Uint8Array };
}

async function loadSqlite(init: (() => Promise<unknown>) | undefined): Promise<Sqlite3> {
  if (init !== undefined) return (await init()) as Sqlite3;
  const { default: initModule } = await import('@sqlite.org/sqlite-wasm');
  // sqlite-wasm prints every warning; a sink says nothing unless something fails.
  return (await initModule({ print: () => undefined, printErr: () => undefined })) as Sqlite3;
}

const column = (d: Db, sql: string, bind: readonly unknown[] = []): unknown[] =>
  (d.exec({ sql, bind, rowMode: 'array', returnValue: 'resultRows' }) as unknown[][]).map((r) => r[0]);

/** The same ownership rule as the Node sink: empty, marked with inrun's application id, or an older inrun's. */
function checkOwnership(d: Db, name: string): void {
  const id = Number(d.selectValue('PRAGMA application_id'));
  const tables = column(d, "SELECT name FROM sqlite_master WHERE type = 'table'") as string[];
  if (id === SQLITE_APPLICATION_ID || tables.length === 0) return;
  if (id === 0 && tables.includes('inrun_meta') && Number(d.selectValue("SELECT COUNT(*) FROM inrun_meta WHERE key = 'schema_version'")) === 1) return;
  throw new InrunError(`${name} is not an inrun store (application_id ${id}, tables ${preview(tables.slice(0, 8).join(', '))}); nothing was changed. Give sqliteWasmSink another file`, {
    field: 'sqliteWasmSink.file',
    code: 'invalid_input',
  });
}

function migrate(d: Db, name: string): void {
  const stored = d.selectValue("SELECT value FROM inrun_meta WHERE key = 'schema_version'");
  const version = stored === undefined ? SQLITE_SCHEMA_VERSION : Number(stored);
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new InrunError(`${name} has SQLite schema version ${version}, newer than this inrun's (${SQLITE_SCHEMA_VERSION}): upgrade inrun, or write to another file`, {
      field: 'sqliteWasmSink.file',
      code: 'invalid_input',
    });
  }
  d.transaction(() => {
    for (const { table, column: name2, type } of ADDED_COLUMNS) {
      if (!column(d, `SELECT name FROM pragma_table_info('${table}')`).includes(name2)) d.exec(`ALTER TABLE ${table} ADD COLUMN ${name2} ${type}`);
    }
    d.exec({ sql: SQL.setSchemaVersion, bind: ['schema_version', String(SQLITE_SCHEMA_VERSION)] });
  });
}

/** Runs one prepared statement per row, then finalizes it. */
function each(d: Db, sql: string, rows: Iterable<readonly unknown[]>): void {
  const stmt = d.prepare(sql);
  try {
    // sqlite-wasm refuses undefined as a value; the Node sink stores it as NULL.
    for (const row of rows) stmt.bind(row.map((v) => (v === undefined ? null : v))).stepReset();
  } finally {
    stmt.finalize();
  }
}

// Whole numbers go in as INTEGER (as the Node sink stores labels); sqlite-wasm binds undefined as NULL only when asked.
const value = (v: string | number | undefined | null): string | number | null => v ?? null;

/**
 * The SQLite store in a browser: the same tables and meaning as `sqliteSink` (docs/schema.md), written
 * through the official `@sqlite.org/sqlite-wasm` build. Each flush is one transaction. The database
 * lives in OPFS where sqlite-wasm offers it, in memory otherwise; {@link SqliteWasmSink.bytes} hands
 * out the file. No Node built-in on its import graph (import it from '@inrun/store/browser').
 */
export function sqliteWasmSink(options: SqliteWasmSinkOptions = {}): SqliteWasmSink {
  const file = options.file ?? 'inrun.sqlite';
  const wanted = options.storage ?? 'auto';
  if (typeof file !== 'string' || file.length === 0) throw new InrunError('expected a file name', { field: 'sqliteWasmSink.file' });
  if (!['auto', 'opfs', 'memory'].includes(wanted)) throw new InrunError(`expected 'auto', 'opfs' or 'memory', got ${preview(wanted)}`, { field: 'sqliteWasmSink.storage' });
  const keepSteps = options.steps ?? true;
  let sqlite: Sqlite3 | null = null;
  let db: Db | null = null;
  let storage: 'opfs' | 'memory' | null = null;
  let closedBytes: Uint8Array | null = null;
  let runId = '';
  let columnIds = new Map<string, number>();
  const keys = new Map<ExampleId, number>();

  const open = (): Db => {
    if (db === null) throw new InrunError('the SQLite sink is not open', { field: 'sqliteWasmSink', code: 'invalid_state' });
    return db;
  };
  const keyOf = (d: Db, id: ExampleId): number => {
    let key = keys.get(id);
    if (key === undefined) {
      key = keys.size;
      keys.set(id, key);
      d.exec({ sql: SQL.insertExample, bind: [runId, key, id] });
    }
    return key;
  };

  const connect = async (): Promise<Db> => {
    sqlite ??= await loadSqlite(options.sqlite3InitModule);
    const Opfs = sqlite.oo1.OpfsDb;
    if (wanted === 'opfs' && Opfs === undefined) {
      throw new InrunError("OPFS is not available to sqlite-wasm here (it needs a Worker in a cross-origin isolated page); use storage: 'memory' or 'auto'", {
        field: 'sqliteWasmSink.storage',
        code: 'invalid_state',
      });
    }
    storage = wanted !== 'memory' && Opfs !== undefined ? 'opfs' : 'memory';
    const d = storage === 'opfs' ? new Opfs!(file, 'c') : new sqlite.oo1.DB(':memory:', 'c');
    try {
      checkOwnership(d, file);
      d.exec(`PRAGMA application_id = ${SQLITE_APPLICATION_ID}`);
      d.exec(SCHEMA);
      migrate(d, file);
    } catch (error) {
      d.close();
      throw error;
    }
    db = d;
    closedBytes = null;
    return d;
  };

  const bytes = (): Promise<Uint8Array> => {
    if (db !== null && sqlite !== null) return Promise.resolve(sqlite.capi.sqlite3_js_db_export(db.pointer));
    if (closedBytes !== null) return Promise.resolve(closedBytes);
    return Promise.reject(new InrunError('nothing to export: the SQLite sink was never opened', { field: 'sqliteWasmSink', code: 'invalid_state' }));
  };

  return {
    name: `sqlite-wasm:${file}`,
    get storage() {
      return storage;
    },
    async open(info: RunInfo) {
      checkRunId(info.runId);
      const d = await connect();
      runId = info.runId;
      if (Number(d.selectValue('SELECT COUNT(*) FROM runs WHERE run_id = ?', [runId])) > 0) {
        throw new InrunError(`run "${runId}" is already stored in ${file}; choose another runId`, { field: 'runId', code: 'invalid_state' });
      }
      d.transaction(() => {
        d.exec({ sql: SQL.insertRun, bind: [runId, info.startedAt, 'running', info.model.name, info.optimizer.className, JSON.stringify(info)] });
        each(d, SQL.insertColumn, info.columns.map((c, i) => [runId, i, c.name, c.method, c.target]));
      });
      columnIds = new Map(info.columns.map((c, i) => [c.name, i]));
    },
    writeExamples(examples: readonly ExampleInfo[]) {
      const d = open();
      d.transaction(() => {
        const rows = examples.map((e) => [value(e.source), value(e.label), value(e.text), runId, keyOf(d, e.id)]);
        each(d, SQL.describeExample, rows);
      });
    },
    writeSteps(records: readonly StepRecord[]) {
      const d = open();
      d.transaction(() => {
        const steps: unknown[][] = [];
        const scores: unknown[][] = [];
        for (const r of records) {
          steps.push([runId, r.step, r.epoch, r.learningRate, r.batchSize, r.loss, JSON.stringify(r.targetLosses), r.attributionMs, r.stepMs]);
          const exampleKeys = r.ids.map((id) => keyOf(d, id));
          if (!keepSteps) continue;
          for (const [name, values] of Object.entries(r.columns)) {
            const c = columnIds.get(name)!;
            // NaN would be NULL, which value's NOT NULL refuses: leave that row out, as the Node sink does.
            exampleKeys.forEach((key, i) => {
              if (!Number.isNaN(values[i])) scores.push([runId, r.step, c, key, values[i]!]);
            });
          }
        }
        each(d, `${SQL.insertSteps} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, steps);
        each(d, `${SQL.insertStepScores} VALUES (?, ?, ?, ?, ?)`, scores);
      });
    },
    writeScores(scores: Scores, info: RunInfo, at: TotalsPoint) {
      const d = open();
      d.transaction(() => {
        const exampleKeys = scores.ids.map((id) => keyOf(d, id));
        const put: unknown[][] = [];
        for (const [name, values] of Object.entries(scores.columns)) {
          const c = columnIds.get(name)!;
          exampleKeys.forEach((key, i) => {
            if (!Number.isNaN(values[i])) put.push([runId, c, key, values[i]!, scores.steps[i]!]);
          });
        }
        each(d, SQL.putScore, put);
        const tokens: unknown[][] = [];
        for (const [name, perExample] of Object.entries(scores.tokens)) {
          const c = columnIds.get(name)!;
          perExample.forEach((top, i) =>
            top.forEach((t, rank) => {
              if (!Number.isNaN(t.score)) tokens.push([runId, c, exampleKeys[i]!, rank, t.token, t.word ?? null, t.score]);
            }),
          );
        }
        each(d, SQL.putTokenScore, tokens);
        d.exec({
          sql: SQL.finishTotals,
          bind: [at.step, JSON.stringify(info), at.final ? 'completed' : 'running', at.final ? new Date().toISOString() : null, runId],
        });
      });
    },
    close() {
      if (db !== null && sqlite !== null) closedBytes = sqlite.capi.sqlite3_js_db_export(db.pointer);
      db?.close();
      db = null;
    },
    bytes,
    async blob() {
      // A copy with its own ArrayBuffer: Blob parts may not view a SharedArrayBuffer.
      return new Blob([new Uint8Array(await bytes())], { type: 'application/vnd.sqlite3' });
    },
  };
}
