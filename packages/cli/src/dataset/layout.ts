// The merged dataset's layout: its marker file, its tables' columns, and where a run's partition lies.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COLUMN_TYPES, InrunError, STORE_TABLES, storeHas } from '@inrun/store';

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

/**
 * The tables of a merged dataset, made from the store schema (packages/store/src/schema.ts;
 * docs/schema.md): every table but the SQLite file's own, with its column names. Example ids and
 * labels are text (as a Parquet store gives them: one Parquet column has one type); `examples`
 * also holds `id_type`, the type each id was given as, so that the number 0 and the text "0" stay two ids. `runs` is last:
 * a run is renamed into place table by table, `runs` at the end, so a run listed in `runs` has all
 * its partitions.
 */
export const DATASET_TABLES: readonly DatasetTable[] = STORE_TABLES.filter((t) => storeHas(t, 'merged'))
  .map(
    (t): DatasetTable => ({
      name: t.name,
      // A Parquet column has one type: ids are text, and each id's type ('number' or 'string') is kept beside it.
      columns: [...t.columns.map((c) => ({ name: c.name, type: COLUMN_TYPES[c.type].parquet })), ...(t.name === 'examples' ? [{ name: 'id_type', type: 'STRING' as const }] : [])],
      orderBy: (t.primaryKey ?? t.orderBy ?? []).filter((c) => c !== 'run_id'),
      always: t.optional !== true,
    }),
  )
  .sort((a, b) => Number(a.name === 'runs') - Number(b.name === 'runs'));

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
