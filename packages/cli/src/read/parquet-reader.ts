// A Parquet store (one folder per run) opened through DuckDB: views that answer the SQLite tables' names.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { COLUMN_TYPES, InrunError, PARQUET_LAYOUT_VERSION, type RunInfo, type StoreTable, storeTable } from '@inrun/store';
import { createViews, duckdbStore, emptyColumns, examplesViews, ident, literal, parquetFiles, pathList, selectList, unionView } from './duckdb-reader.js';
import type { StoreReader } from './reader.js';
import { checkRunInfo } from './run-info.js';

const EXAMPLES = storeTable('examples');
const STEPS = storeTable('steps');
const STEP_SCORES = storeTable('step_scores');
const SCORES = storeTable('scores');
const TOKEN_SCORES = storeTable('token_scores');
const SOURCE_INFLUENCE = storeTable('source_influence');

interface RunFile {
  readonly layoutVersion: number;
  readonly status: string;
  readonly totalsStep: number | null;
  readonly info: RunInfo;
}

/** Reads and checks `<run>/run.json`; a cut-short or foreign file is bad input (`invalid_input` on `store`) naming it. */
function readRunFile(path: string): RunFile {
  let file: unknown;
  try {
    file = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new InrunError(`${path} is not JSON (${(cause as Error).message}): the store is damaged or not written by inrun`, { field: 'store', code: 'invalid_input', cause });
  }
  const f = file as Partial<Record<keyof RunFile, unknown>> | null;
  const bad = (field: string) => new InrunError(`${path}: field ${field} is missing or has the wrong type: the store is damaged or not written by inrun`, { field: 'store', code: 'invalid_input' });
  if (typeof f !== 'object' || f === null || Array.isArray(f)) throw bad('(the whole file)');
  if (typeof f.layoutVersion !== 'number') throw bad('layoutVersion');
  // A newer layout may shape the rest differently: say so before checking it.
  if (f.layoutVersion > PARQUET_LAYOUT_VERSION) {
    throw new InrunError(`${path} has Parquet layout version ${f.layoutVersion}, newer than this inrun's (${PARQUET_LAYOUT_VERSION}): upgrade inrun to read it`, { field: 'store', code: 'invalid_state' });
  }
  if (typeof f.status !== 'string') throw bad('status');
  if (!(f.totalsStep === null || f.totalsStep === undefined || (typeof f.totalsStep === 'number' && Number.isInteger(f.totalsStep)))) throw bad('totalsStep');
  return { layoutVersion: f.layoutVersion, status: f.status, totalsStep: f.totalsStep ?? null, info: checkRunInfo(f.info, path) };
}

/** The last step a totals snapshot `step-<n>.parquet` includes (its name holds the step + 1). */
const stepOfSnapshot = (file: string): number => Number(/step-(\d+)\.parquet$/.exec(file)?.[1] ?? Number.NaN) - 1;

/**
 * Reads the newest totals snapshot of `dir` into table `table` (in memory: examples x columns
 * doubles) and returns it with its step, or undefined when there is none. A run that is still
 * writing replaces snapshots and deletes old ones (`keepSnapshots`): a view bound to the file would
 * fail once the sink deletes it, or change under a reader. Held in memory, the reader keeps one
 * consistent snapshot for as long as it reads. A snapshot deleted between listing and reading is
 * retried with the newer one.
 */
async function holdTotals(db: DuckDBConnection, dir: string, table: string, columns: readonly string[]): Promise<{ table: string; step: number } | undefined> {
  for (let attempt = 0; ; attempt++) {
    const newest = parquetFiles(dir).at(-1);
    if (newest === undefined) return undefined;
    try {
      await db.run(`CREATE TABLE ${table} AS SELECT * FROM read_parquet(${literal(newest)})`);
    } catch (error) {
      if (!existsSync(newest) && attempt < 5) continue;
      throw new InrunError(`${newest} is not a readable totals snapshot (${(error as Error).message}): the store is damaged`, { field: 'store', code: 'invalid_input', cause: error });
    }
    const names = new Set((await db.runAndReadAll(`SELECT * FROM ${table} LIMIT 0`)).columnNames());
    const missing = ['example_key', 'steps', ...columns].filter((c) => !names.has(c));
    if (missing.length > 0) {
      throw new InrunError(`${newest} is not a totals snapshot of this run (no column ${missing.map((m) => JSON.stringify(m)).join(', ')}): the store is damaged`, { field: 'store', code: 'invalid_input' });
    }
    return { table, step: stepOfSnapshot(newest) };
  }
}

/**
 * Opens a Parquet folder (`<folder>/<runId>/run.json` per run) in an in-memory DuckDB: tables `runs`
 * and `columns` from the run files, and views `examples`, `steps`, `step_scores`, `scores`,
 * `token_scores` (and `source_influence` where untrac's rows were written) over the segment files,
 * with the schema's columns (packages/store/src/schema.ts), the views `example_scores` and
 * `latest_run`, plus `step_rows` (the per-step files as written: one column per score column).
 */
export async function openParquetStore(folder: string): Promise<StoreReader> {
  const runs: { id: string; dir: string; file: RunFile }[] = [];
  for (const name of readdirSync(folder).sort()) {
    const runJson = join(folder, name, 'run.json');
    if (!existsSync(runJson)) continue;
    const file = readRunFile(runJson);
    runs.push({ id: file.info.runId, dir: join(folder, name), file });
  }
  if (runs.length === 0) throw new InrunError(`${folder} holds no inrun run (no <runId>/run.json): not a Parquet store`, { field: 'store', code: 'invalid_input' });

  return duckdbStore(folder, 'parquet', async (db) => {
    const table = (t: StoreTable) => db.run(`CREATE TABLE ${t.name} (${t.columns.map((c) => `${ident(c.name)} ${COLUMN_TYPES[c.type].duckdb}`).join(', ')})`);
    await table(storeTable('runs'));
    await table(storeTable('columns'));
    const examples: string[] = [];
    const steps: string[] = [];
    const stepRows: string[] = [];
    const stepScores: string[] = [];
    const scores: string[] = [];
    const tokens: string[] = [];
    const influence: string[] = [];
    await db.run('CREATE SCHEMA snapshot');
    let held = 0;
    for (const { id, dir, file } of runs) {
      const { info } = file;
      await db.run('INSERT INTO runs (run_id, started_at, ended_at, status, totals_step, model, optimizer, info) VALUES (?, ?, NULL, ?, ?, ?, ?, ?)', [
        id,
        info.startedAt,
        file.status,
        file.totalsStep,
        info.model.name,
        info.optimizer.className,
        JSON.stringify(info),
      ]);
      for (const [i, c] of info.columns.entries()) await db.run('INSERT INTO columns (run_id, column_id, name, method, target) VALUES (?, ?, ?, ?, ?)', [id, i, c.name, c.method, c.target]);
      const run = literal(id);
      const exampleFiles = parquetFiles(join(dir, 'examples'));
      if (exampleFiles.length > 0) {
        // An example appears when first seen and again when described: keep its described row.
        examples.push(
          `SELECT ${selectList(EXAMPLES, { run_id: run, example_id: 'any_value(example_id)', source: 'max(source)', label: 'max(label)', text: 'max(text)' })}, any_value(id_type) AS id_type FROM read_parquet(${pathList(exampleFiles)}, union_by_name = true) GROUP BY example_key`,
        );
      }
      const segmentFiles = parquetFiles(join(dir, 'steps'));
      if (segmentFiles.length > 0) {
        const raw = `read_parquet(${pathList(segmentFiles)}, union_by_name = true)`;
        stepRows.push(`SELECT ${run} AS run_id, * FROM ${raw}`);
        const targetJson = info.targets.length === 0
          ? `'{}'`
          : `'{' || ${info.targets.map((t) => `${literal(JSON.stringify(t.name) + ':')} || CASE WHEN isnan(any_value(${ident(`target_loss:${t.name}`)})) THEN 'null' ELSE CAST(any_value(${ident(`target_loss:${t.name}`)}) AS VARCHAR) END`).join(` || ',' || `)} || '}'`;
        steps.push(
          `SELECT ${selectList(STEPS, {
            run_id: run,
            epoch: 'any_value(epoch)',
            learning_rate: 'any_value(learning_rate)',
            batch_size: 'any_value(batch_size)',
            loss: 'any_value(loss)',
            target_losses: targetJson,
            attribution_ms: 'any_value(attribution_ms)',
            step_ms: 'any_value(step_ms)',
          })} FROM ${raw} GROUP BY step`,
        );
        for (const [i, c] of info.columns.entries()) stepScores.push(`SELECT ${selectList(STEP_SCORES, { run_id: run, column_id: String(i), value: `CAST(${ident(c.name)} AS DOUBLE)` })} FROM ${raw}`);
      }
      const totals = await holdTotals(db, join(dir, 'totals'), `snapshot.${ident(`totals_${held++}`)}`, info.columns.map((c) => c.name));
      if (totals !== undefined) {
        await db.run('UPDATE runs SET totals_step = ? WHERE run_id = ?', [totals.step, id]);
        for (const [i, c] of info.columns.entries()) scores.push(`SELECT ${selectList(SCORES, { run_id: run, column_id: String(i), value: `CAST(${ident(c.name)} AS DOUBLE)` })} FROM ${totals.table}`);
      }
      const influenceFiles = parquetFiles(join(dir, 'source_influence'));
      if (influenceFiles.length > 0) influence.push(`SELECT ${selectList(SOURCE_INFLUENCE, { run_id: run })} FROM read_parquet(${pathList(influenceFiles)}, union_by_name = true)`);
      const tokenFile = join(dir, 'tokens', 'final.parquet');
      if (existsSync(tokenFile)) {
        tokens.push(
          `SELECT ${selectList(TOKEN_SCORES, { run_id: run, column_id: 'c.column_id', example_key: 't.example_key', rank: 't.rank', token: 't.token', word: 't.word', value: 'CAST(t.value AS DOUBLE)' })} FROM read_parquet(${literal(tokenFile)}) t JOIN columns c ON c.run_id = ${run} AND c.name = t.column_name`,
        );
      }
    }
    const view = (t: StoreTable, parts: string[]) => unionView(db, t.name, parts, emptyColumns(t));
    await examplesViews(db, examples);
    await view(STEPS, steps);
    await unionView(db, 'step_rows', stepRows, 'NULL::VARCHAR AS run_id, NULL::INTEGER AS step, NULL::INTEGER AS example_key');
    await view(STEP_SCORES, stepScores);
    await view(SCORES, scores);
    await view(TOKEN_SCORES, tokens);
    // Like the SQLite table, source_influence exists only where untrac's rows were written.
    if (influence.length > 0) await view(SOURCE_INFLUENCE, influence);
    await createViews(db);
  });
}
