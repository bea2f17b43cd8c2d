// The run a report or command reads: picked by id (or the newest), with its info, columns and sizes.
import { type ColumnInfo, InrunError, type RunInfo } from '@inrun/store';
import type { StoreReader } from './reader.js';
import { parseRunInfo } from './run-info.js';

/** A score column as stored: its name, method, target and id within the run. */
export interface StoredColumn extends ColumnInfo {
  readonly id: number;
}

/** What a report needs to know about one stored run before reading its scores. */
export interface StoredRun {
  readonly id: string;
  readonly status: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  /** Last step the totals include, or null before the first snapshot. */
  readonly totalsStep: number | null;
  readonly info: RunInfo;
  readonly columns: readonly StoredColumn[];
  readonly examples: number;
  readonly steps: number;
}

/**
 * Reads run `runId`, or the newest run of the store when none is named. Throws `invalid_option` on
 * `run` for an unknown id (naming the stored ones) and `invalid_input` on `store` for a store without runs.
 */
export async function readRun(store: StoreReader, runId?: string): Promise<StoredRun> {
  const runs = await store.all('SELECT run_id, started_at, ended_at, status, totals_step, info FROM runs ORDER BY started_at DESC');
  if (runs.length === 0) throw new InrunError(`${store.path} holds no run`, { field: 'store', code: 'invalid_input' });
  const row = runId === undefined ? runs[0]! : runs.find((r) => r['run_id'] === runId);
  if (row === undefined) {
    throw new InrunError(`no run "${runId}" in ${store.path}; stored runs: ${runs.map((r) => String(r['run_id'])).join(', ')}`, { field: 'run', code: 'invalid_option' });
  }
  const id = String(row['run_id']);
  const columns = (await store.all('SELECT column_id, name, method, target FROM columns WHERE run_id = ? ORDER BY column_id', [id])).map(
    (c): StoredColumn => ({ id: Number(c['column_id']), name: String(c['name']), method: c['method'] as StoredColumn['method'], target: (c['target'] as string | null) ?? null }),
  );
  const [examples] = await store.all('SELECT COUNT(*) AS n FROM examples WHERE run_id = ?', [id]);
  const [steps] = await store.all('SELECT COUNT(*) AS n FROM steps WHERE run_id = ?', [id]);
  return {
    id,
    status: String(row['status']),
    startedAt: String(row['started_at']),
    endedAt: (row['ended_at'] as string | null) ?? null,
    totalsStep: row['totals_step'] === null ? null : Number(row['totals_step']),
    info: parseRunInfo(String(row['info']), `${store.path} (run ${id})`),
    columns,
    examples: Number(examples?.['n'] ?? 0),
    steps: Number(steps?.['n'] ?? 0),
  };
}

/** The column named `name`; throws `invalid_option` on `field` naming the run's columns when there is none. */
export function findColumn(run: StoredRun, name: string, field = 'column'): StoredColumn {
  const column = run.columns.find((c) => c.name === name);
  if (column === undefined) {
    throw new InrunError(`no column "${name}" in run "${run.id}"; its columns: ${run.columns.map((c) => c.name).join(', ')}`, { field, code: 'invalid_option' });
  }
  return column;
}

/**
 * The column a curation decision reads by default: the first first-order value (`shapley1:*`), else
 * the first target-directed column, else the first column.
 */
export function valueColumn(run: StoredRun): StoredColumn | undefined {
  return run.columns.find((c) => c.method === 'shapley1') ?? run.columns.find((c) => c.target !== null) ?? run.columns[0];
}
