// The store schema, written once: every table and view a store answers, its columns, types and meaning.

/** The kinds of store a reader opens: a SQLite file, a Parquet folder, a merged dataset (`mergeStores`). */
export type StoreKind = 'sqlite' | 'parquet' | 'merged';

/**
 * A column's type, as each kind of store spells it (see {@link COLUMN_TYPES}). `value` is a value
 * kept as the user gave it (example ids and labels: a number or text): untyped in SQLite, text in
 * Parquet and DuckDB, where one column has one type.
 */
export type ColumnType = 'text' | 'integer' | 'real' | 'value';

/** How each kind of store spells a {@link ColumnType}: SQLite's declared type, DuckDB's, Parquet's. */
export const COLUMN_TYPES: Readonly<Record<ColumnType, { readonly sqlite: string; readonly duckdb: string; readonly parquet: 'STRING' | 'INT32' | 'DOUBLE' }>> = {
  text: { sqlite: 'TEXT', duckdb: 'VARCHAR', parquet: 'STRING' },
  integer: { sqlite: 'INTEGER', duckdb: 'INTEGER', parquet: 'INT32' },
  real: { sqlite: 'REAL', duckdb: 'DOUBLE', parquet: 'DOUBLE' },
  value: { sqlite: '', duckdb: 'VARCHAR', parquet: 'STRING' },
};

/** One column of a store table or view. */
export interface StoreColumn {
  readonly name: string;
  readonly type: ColumnType;
  /** What it holds, in one line. */
  readonly description: string;
  /** `NOT NULL` in the SQLite table (the other kinds declare no constraints). @defaultValue false */
  readonly notNull?: boolean;
  /** The SQLite table whose `run_id` it references (a foreign key in the SQLite file only). */
  readonly references?: string;
  /** SQLite schema version that added it; a file of an older version gets it (null) on open. @defaultValue 1 */
  readonly since?: number;
}

/** One table of a store. */
export interface StoreTable {
  readonly name: string;
  /** What one row stands for ("run", "example x column"). */
  readonly rowPer: string;
  readonly columns: readonly StoreColumn[];
  /** The SQLite primary key; after `run_id`, also the order a merged dataset writes rows in. */
  readonly primaryKey?: readonly string[];
  /** The row order of a table without a primary key. */
  readonly orderBy?: readonly string[];
  /** SQLite only: a `WITHOUT ROWID` table. @defaultValue false */
  readonly withoutRowid?: boolean;
  /** SQLite only: indexes beside the primary key. */
  readonly indexes?: readonly { readonly name: string; readonly unique: boolean; readonly columns: readonly string[] }[];
  /** The one kind of store that has it; absent: every kind. */
  readonly only?: StoreKind;
  /** There only once rows were written to it (not by the sink); absent elsewhere, read as no rows. @defaultValue false */
  readonly optional?: boolean;
}

/** One view of a store. */
export interface StoreView {
  readonly name: string;
  /** What it answers, in one line. */
  readonly description: string;
  /** Its columns; with {@link StoreView.moreColumns}, the leading ones. */
  readonly columns: readonly StoreColumn[];
  /** Columns after those listed that vary by run, in words. */
  readonly moreColumns?: string;
  /** Its `SELECT`, the same in SQLite and DuckDB; absent where a reader builds it itself. */
  readonly sql?: string;
  /** SQLite's `SELECT` where it differs from {@link StoreView.sql}. */
  readonly sqliteSql?: string;
  /** The one kind of store that has it; absent: every kind. */
  readonly only?: StoreKind;
}

const runId = (description = 'the run', references?: string): StoreColumn => ({ name: 'run_id', type: 'text', description, notNull: true, ...(references === undefined ? {} : { references }) });

const RUNS: StoreTable = {
  name: 'runs',
  rowPer: 'run',
  columns: [
    { name: 'run_id', type: 'text', description: 'the run id (`attach({ runId })`)' },
    { name: 'started_at', type: 'text', description: 'ISO start time', notNull: true },
    { name: 'ended_at', type: 'text', description: 'ISO end time (null while running)' },
    { name: 'status', type: 'text', description: '`running` or `completed`', notNull: true },
    { name: 'totals_step', type: 'integer', description: 'last step the `scores` rows include', since: 2 },
    { name: 'model', type: 'text', description: "the model's name", notNull: true },
    { name: 'optimizer', type: 'text', description: "the optimizer's class", notNull: true },
    { name: 'info', type: 'text', description: 'the full `RunInfo` as JSON', notNull: true },
  ],
  primaryKey: ['run_id'],
};

/**
 * The tables of a store, in the order the SQLite file creates them. `inrun_meta` is the SQLite
 * file's own; `source_influence` (untrac's rows, `writeSourceInfluence`) is there once written.
 */
export const STORE_TABLES: readonly StoreTable[] = [
  {
    name: 'inrun_meta',
    rowPer: 'setting',
    columns: [
      { name: 'key', type: 'text', description: 'the setting (`schema_version`)' },
      { name: 'value', type: 'text', description: 'its value', notNull: true },
    ],
    primaryKey: ['key'],
    only: 'sqlite',
  },
  RUNS,
  {
    name: 'columns',
    rowPer: 'score column',
    columns: [
      runId('the run', 'runs'),
      { name: 'column_id', type: 'integer', description: 'the column within the run (from 0)', notNull: true },
      { name: 'name', type: 'text', description: 'the column name (`shapley1:val`)', notNull: true },
      { name: 'method', type: 'text', description: 'the method (`shapley1`, `tracin_self`, ...)', notNull: true },
      { name: 'target', type: 'text', description: 'the target (null for `tracin_self`)' },
    ],
    primaryKey: ['run_id', 'column_id'],
    withoutRowid: true,
  },
  {
    name: 'examples',
    rowPer: 'example',
    columns: [
      runId('the run', 'runs'),
      { name: 'example_key', type: 'integer', description: 'dense per run, in order of first sight', notNull: true },
      { name: 'example_id', type: 'value', description: "the user's id (number or text as given)", notNull: true },
      { name: 'source', type: 'text', description: 'where the example came from' },
      { name: 'label', type: 'value', description: 'its label (number or text as given)' },
      { name: 'text', type: 'text', description: 'its text' },
    ],
    primaryKey: ['run_id', 'example_key'],
    withoutRowid: true,
    indexes: [{ name: 'examples_by_id', unique: true, columns: ['run_id', 'example_id'] }],
  },
  {
    name: 'steps',
    rowPer: 'optimizer step',
    columns: [
      runId('the run', 'runs'),
      { name: 'step', type: 'integer', description: 'the step (from 0)', notNull: true },
      { name: 'epoch', type: 'integer', description: 'the epoch (null in custom loops)' },
      { name: 'learning_rate', type: 'real', description: 'the learning rate', notNull: true },
      { name: 'batch_size', type: 'integer', description: 'rows in the batch', notNull: true },
      { name: 'loss', type: 'real', description: 'the training loss' },
      { name: 'target_losses', type: 'text', description: "JSON: summed loss per target at the step's weights", notNull: true },
      { name: 'attribution_ms', type: 'real', description: 'wall time inrun added to the step', since: 2 },
      { name: 'step_ms', type: 'real', description: "from this step's start to the next's", since: 2 },
    ],
    primaryKey: ['run_id', 'step'],
    withoutRowid: true,
  },
  {
    name: 'step_scores',
    rowPer: 'example x step x column',
    columns: [
      runId(),
      { name: 'step', type: 'integer', description: 'the step', notNull: true },
      { name: 'column_id', type: 'integer', description: 'the score column', notNull: true },
      { name: 'example_key', type: 'integer', description: 'the example', notNull: true },
      { name: 'value', type: 'real', description: "the example's score at the step (off with `{ steps: false }`)", notNull: true },
    ],
    primaryKey: ['run_id', 'step', 'column_id', 'example_key'],
    withoutRowid: true,
  },
  {
    name: 'scores',
    rowPer: 'example x column',
    columns: [
      runId(),
      { name: 'column_id', type: 'integer', description: 'the score column', notNull: true },
      { name: 'example_key', type: 'integer', description: 'the example', notNull: true },
      { name: 'value', type: 'real', description: 'total after step `runs.totals_step`', notNull: true },
      { name: 'steps', type: 'integer', description: 'steps the example took part in', notNull: true },
    ],
    primaryKey: ['run_id', 'column_id', 'example_key'],
    withoutRowid: true,
  },
  {
    name: 'token_scores',
    rowPer: 'example x column x rank',
    columns: [
      runId(),
      { name: 'column_id', type: 'integer', description: 'the score column', notNull: true },
      { name: 'example_key', type: 'integer', description: 'the example', notNull: true },
      { name: 'rank', type: 'integer', description: 'rank among its top tokens (from 0)', notNull: true },
      { name: 'token', type: 'integer', description: 'the token id', notNull: true },
      { name: 'word', type: 'text', description: 'the word' },
      { name: 'value', type: 'real', description: 'TracIn-WE word-level score', notNull: true },
    ],
    primaryKey: ['run_id', 'column_id', 'example_key', 'rank'],
    withoutRowid: true,
  },
  {
    name: 'source_influence',
    rowPer: 'target x source x write',
    columns: [
      runId('the run the unlearned model came from (not a foreign key: the run may live elsewhere)'),
      { name: 'written_at', type: 'text', description: "ISO time; one `untrac` call's rows share it", notNull: true },
      { name: 'target', type: 'text', description: 'the target', notNull: true },
      { name: 'source', type: 'text', description: 'the source unlearned', notNull: true },
      { name: 'method', type: 'text', description: '`untrac` or `untrac-inv`', notNull: true },
      { name: 'influence', type: 'real', description: 'loss after unlearning minus before (positive = the source lowered the loss)' },
      { name: 'loss_before', type: 'real', description: 'mean loss before (null when not finite)' },
      { name: 'loss_after', type: 'real', description: 'mean loss after (null when not finite)' },
      { name: 'steps', type: 'integer', description: 'ascent steps taken', notNull: true },
      { name: 'seconds', type: 'real', description: 'time the call took', notNull: true },
      { name: 'stopped', type: 'text', description: "null, `non-finite` or `loss-ceiling`: the ascent's guard stopped it" },
    ],
    orderBy: ['run_id', 'written_at', 'target', 'source', 'method'],
    optional: true,
  },
];

/** The views of a store: `example_scores` and `latest_run` everywhere, `step_rows` in a Parquet folder. */
export const STORE_VIEWS: readonly StoreView[] = [
  {
    name: 'example_scores',
    description: 'totals joined with example metadata and column names',
    columns: [
      runId(),
      { name: 'example_id', type: 'value', description: "the user's id" },
      { name: 'source', type: 'text', description: "the example's source" },
      { name: 'label', type: 'value', description: "the example's label" },
      { name: 'column_name', type: 'text', description: 'the score column (`shapley1:val`)' },
      { name: 'method', type: 'text', description: "the column's method" },
      { name: 'target', type: 'text', description: "the column's target" },
      { name: 'value', type: 'real', description: 'the total' },
      { name: 'steps', type: 'integer', description: 'steps the example took part in' },
    ],
    sql: [
      'SELECT s.run_id, e.example_id, e.source, e.label, c.name AS column_name, c.method, c.target, s.value, s.steps',
      'FROM scores s',
      'JOIN examples e ON e.run_id = s.run_id AND e.example_key = s.example_key',
      'JOIN columns c ON c.run_id = s.run_id AND c.column_id = s.column_id',
    ].join('\n  '),
  },
  {
    name: 'latest_run',
    description: 'the row of `runs` started last',
    columns: RUNS.columns,
    sql: 'SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1',
    // SQLite breaks a tie by the order runs were written in (rowid), which a DuckDB view has not.
    sqliteSql: 'SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1',
  },
  {
    name: 'step_rows',
    description: 'the per-step files as written, one column per score column',
    columns: [runId()],
    moreColumns: "the steps/ files' columns: step, epoch, example_key, learning_rate, batch_size, loss, attribution_ms, step_ms, target_loss:<target>, one per score column",
    only: 'parquet',
  },
];

/** The table named `name` (throws on an unknown one: a reader and the schema disagree). */
export function storeTable(name: string): StoreTable {
  const table = STORE_TABLES.find((t) => t.name === name);
  if (table === undefined) throw new Error(`no store table "${name}" in the schema`);
  return table;
}

/** Whether a store of `kind` has the table or view (an optional table: once written). */
export const storeHas = (entry: StoreTable | StoreView, kind: StoreKind): boolean => entry.only === undefined || entry.only === kind;

/** `CREATE TABLE IF NOT EXISTS` (and its indexes) for a table, as the SQLite file declares it. */
export function sqliteTableSql(table: StoreTable): string {
  const single = table.primaryKey?.length === 1 ? table.primaryKey[0] : undefined;
  const lines = table.columns.map((c) =>
    [c.name, COLUMN_TYPES[c.type].sqlite, c.name === single ? 'PRIMARY KEY' : '', c.notNull === true ? 'NOT NULL' : '', c.references === undefined ? '' : `REFERENCES ${c.references}(run_id)`]
      .filter((part) => part.length > 0)
      .join(' '),
  );
  if (table.primaryKey !== undefined && single === undefined) lines.push(`PRIMARY KEY (${table.primaryKey.join(', ')})`);
  const create = `CREATE TABLE IF NOT EXISTS ${table.name} (\n  ${lines.join(',\n  ')}\n)${table.withoutRowid === true ? ' WITHOUT ROWID' : ''};`;
  const indexes = (table.indexes ?? []).map((i) => `\nCREATE ${i.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${i.name} ON ${table.name} (${i.columns.join(', ')});`);
  return create + indexes.join('');
}

/** `CREATE VIEW IF NOT EXISTS` for a view, in SQLite's SQL. */
export function sqliteViewSql(view: StoreView): string {
  const select = view.sqliteSql ?? view.sql;
  if (select === undefined) throw new Error(`view "${view.name}" has no SQL: a reader builds it`);
  return `CREATE VIEW IF NOT EXISTS ${view.name} AS\n  ${select};`;
}
