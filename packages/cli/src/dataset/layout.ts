// The merged dataset's layout: its marker file, its tables' columns, and where a run's partition lies.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '@inrun/store';

/** The file that marks a folder as a merged dataset (`inrun merge`); docs/scale-out.md. */
export const DATASET_MARKER = 'inrun-dataset.json';

/** Layout version in the marker; a reader refuses a newer one. */
export const DATASET_LAYOUT_VERSION = 1;

/** What the marker holds. */
export interface DatasetMarker {
  readonly kind: 'inrun-merged';
  readonly layoutVersion: number;
}

/** One column of a dataset table and its Parquet type (every column but `run_id` may hold nulls). */
export interface DatasetColumn {
  readonly name: string;
  readonly type: 'INT32' | 'DOUBLE' | 'STRING';
}

/** One table: the SQLite table's name and columns, and the order its rows are written in. */
export interface DatasetTable {
  readonly name: string;
  readonly columns: readonly DatasetColumn[];
  /** Columns after `run_id` that order the rows (the SQLite table's primary key). */
  readonly orderBy: readonly string[];
  /** Written for every run (an empty file when the run has no rows); else only where a store has the table. */
  readonly always: boolean;
}

const col = (name: string, type: DatasetColumn['type']): DatasetColumn => ({ name, type });
const runId = col('run_id', 'STRING');

/**
 * The tables of a merged dataset: the SQLite store's tables with its column names (docs/schema.md).
 * Example ids and labels are text (as a Parquet store gives them: one Parquet column has one type).
 * `runs` is last: a run is renamed into place table by table, `runs` at the end, so a run listed in
 * `runs` has all its partitions.
 */
export const DATASET_TABLES: readonly DatasetTable[] = [
  {
    name: 'columns',
    columns: [runId, col('column_id', 'INT32'), col('name', 'STRING'), col('method', 'STRING'), col('target', 'STRING')],
    orderBy: ['column_id'],
    always: true,
  },
  {
    name: 'examples',
    columns: [runId, col('example_key', 'INT32'), col('example_id', 'STRING'), col('source', 'STRING'), col('label', 'STRING'), col('text', 'STRING')],
    orderBy: ['example_key'],
    always: true,
  },
  {
    name: 'steps',
    columns: [
      runId,
      col('step', 'INT32'),
      col('epoch', 'INT32'),
      col('learning_rate', 'DOUBLE'),
      col('batch_size', 'INT32'),
      col('loss', 'DOUBLE'),
      col('target_losses', 'STRING'),
      col('attribution_ms', 'DOUBLE'),
      col('step_ms', 'DOUBLE'),
    ],
    orderBy: ['step'],
    always: true,
  },
  {
    name: 'step_scores',
    columns: [runId, col('step', 'INT32'), col('column_id', 'INT32'), col('example_key', 'INT32'), col('value', 'DOUBLE')],
    orderBy: ['step', 'column_id', 'example_key'],
    always: true,
  },
  {
    name: 'scores',
    columns: [runId, col('column_id', 'INT32'), col('example_key', 'INT32'), col('value', 'DOUBLE'), col('steps', 'INT32')],
    orderBy: ['column_id', 'example_key'],
    always: true,
  },
  {
    name: 'token_scores',
    columns: [runId, col('column_id', 'INT32'), col('example_key', 'INT32'), col('rank', 'INT32'), col('token', 'INT32'), col('word', 'STRING'), col('value', 'DOUBLE')],
    orderBy: ['column_id', 'example_key', 'rank'],
    always: true,
  },
  {
    name: 'source_influence',
    columns: [
      runId,
      col('written_at', 'STRING'),
      col('target', 'STRING'),
      col('source', 'STRING'),
      col('method', 'STRING'),
      col('influence', 'DOUBLE'),
      col('loss_before', 'DOUBLE'),
      col('loss_after', 'DOUBLE'),
      col('steps', 'INT32'),
      col('seconds', 'DOUBLE'),
      col('stopped', 'STRING'),
    ],
    orderBy: ['written_at', 'target', 'source', 'method'],
    always: false,
  },
  {
    name: 'runs',
    columns: [
      runId,
      col('started_at', 'STRING'),
      col('ended_at', 'STRING'),
      col('status', 'STRING'),
      col('totals_step', 'INT32'),
      col('model', 'STRING'),
      col('optimizer', 'STRING'),
      col('info', 'STRING'),
    ],
    orderBy: [],
    always: true,
  },
];

/** The folder of run `id` in table `table`: `<root>/<table>/run=<id>`. */
export function partitionDir(root: string, table: string, id: string): string {
  return join(root, table, `run=${id}`);
}

/** The run ids that have a partition in `table` (sorted). */
export function partitions(root: string, table: string): string[] {
  const dir = join(root, table);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.startsWith('run='))
    .map((name) => name.slice('run='.length))
    .sort();
}

/**
 * Whether `folder` is a merged dataset: it holds the marker file. Throws `invalid_state` on `store`
 * when a newer inrun wrote it, `invalid_input` when the marker is not one.
 */
export function isDataset(folder: string): boolean {
  const path = join(folder, DATASET_MARKER);
  if (!existsSync(path) || !statSync(path).isFile()) return false;
  let marker: Partial<DatasetMarker>;
  try {
    marker = JSON.parse(readFileSync(path, 'utf8')) as Partial<DatasetMarker>;
  } catch (cause) {
    throw new InrunError(`${path} is not an inrun dataset marker (${(cause as Error).message})`, { field: 'store', code: 'invalid_input', cause });
  }
  if (marker.kind !== 'inrun-merged' || typeof marker.layoutVersion !== 'number') {
    throw new InrunError(`${path} is not an inrun dataset marker (expected kind "inrun-merged" and a layoutVersion)`, { field: 'store', code: 'invalid_input' });
  }
  if (marker.layoutVersion > DATASET_LAYOUT_VERSION) {
    throw new InrunError(`${path} has dataset layout version ${marker.layoutVersion}, newer than this inrun's (${DATASET_LAYOUT_VERSION}): upgrade inrun to read it`, {
      field: 'store',
      code: 'invalid_state',
    });
  }
  return true;
}
