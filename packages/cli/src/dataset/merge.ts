// mergeStores: many runs' stores (SQLite files, Parquet folders, merged datasets) into one Hive-partitioned Parquet dataset.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InrunError } from '@inrun/store';
import { checkRunId, invalid, quote, writeAtomically } from '@inrun/store/internal';
import { checkOutputNotInput } from '../read/output-path.js';
import { DATASET_LAYOUT_VERSION, DATASET_MARKER, DATASET_TABLES, type DatasetMarker, isDataset, partitionDir, partitions } from './layout.js';
import { literal } from '../read/duckdb-reader.js';
import { partWriter } from './part-writer.js';
import { openStore } from '../read/open-store.js';
import { text } from '../read/text.js';
import type { StoreReader } from '../read/reader.js';

/** What to do with a run id that is already in the dataset or in an earlier input. */
export type OnConflict = 'error' | 'skip' | 'replace';

/** Options of {@link mergeStores}. */
export interface MergeOptions {
  /** The dataset folder: a new (or empty) folder, or a dataset an earlier merge wrote, which gains the runs. */
  readonly out: string;
  /**
   * A run id met twice (in the dataset and an input, or in two inputs): `error` refuses the merge
   * before anything is written; `skip` keeps the run met first (the dataset's, then the inputs' in
   * order); `replace` takes the one met last.
   * @defaultValue 'error'
   */
  readonly onConflict?: OnConflict;
  /** Rows per part file, which is also the most rows held in memory at once. @defaultValue 200000 */
  readonly rowsPerFile?: number;
  /** Called after each run is written (before the merge commits). */
  readonly onProgress?: (progress: MergeProgress) => void;
}

/** Where a merge stands. */
export interface MergeProgress {
  /** Runs written so far (to the staging folder). */
  readonly runs: number;
  /** Runs this merge writes. */
  readonly totalRuns: number;
  /** Rows written so far, all tables together. */
  readonly rows: number;
}

/** A run the merge wrote. */
export interface MergedRun {
  readonly runId: string;
  /** The input it came from. */
  readonly store: string;
  /** Rows written per table. */
  readonly rows: Readonly<Record<string, number>>;
  /** Part files written, all tables together. */
  readonly files: number;
  /** Whether it replaced a run of the same id that the dataset held. */
  readonly replaced: boolean;
}

/** What {@link mergeStores} did. */
export interface MergeResult {
  /** The dataset folder (absolute). */
  readonly out: string;
  readonly runs: readonly MergedRun[];
  /** Runs left out by `onConflict: 'skip'`, or replaced by a later input's run of the same id. */
  readonly skipped: readonly { readonly runId: string; readonly store: string }[];
  /** `source_influence` rows whose run is not in their store (they travel with their run): how many per store. */
  readonly unmatchedSourceInfluence: readonly { readonly store: string; readonly rows: number }[];
}

interface Planned {
  readonly runId: string;
  readonly input: number;
  readonly store: string;
  replaced: boolean;
}

const DEFAULT_ROWS_PER_FILE = 200_000;
const STAGING = '.staging-';
const OLD = 'old';
const LOCK = '.merge-lock';

/**
 * Merges the runs of `inputs` (SQLite files and Parquet folders inrun's sinks wrote, or datasets an
 * earlier merge wrote) into one Parquet dataset at `options.out`: every table of every run becomes a
 * partition `<out>/<table>/run=<runId>/part-<n>.parquet` holding the SQLite table's columns, so
 * `openStore(out)` (and `inrun query`) answers the same SQL as one store, and DuckDB reads a table
 * with `read_parquet('<out>/<table>/*\/*.parquet', hive_partitioning = true)`. docs/scale-out.md.
 *
 * Rows stream through in part files of `rowsPerFile` rows. All or nothing: partitions are written
 * to a staging folder inside `out`, then renamed into place (a run's `runs` partition last); a
 * failure removes the staging folder and leaves the dataset as it was. One merge writes a dataset
 * at a time (a lock file refuses a second one).
 *
 * Throws `invalid_input` naming `inputs[i]` (and the run) for a missing or foreign store, a run id
 * met twice under `onConflict: 'error'`, or a run id that cannot name a folder; naming `out` for an
 * output folder that is neither empty nor a dataset, or that another merge is writing;
 * `invalid_option` for bad options.
 */
export async function mergeStores(inputs: readonly string[], options: MergeOptions): Promise<MergeResult> {
  if (!Array.isArray(inputs) || inputs.length === 0) invalid('inputs', 'a non-empty array of store paths', inputs);
  inputs.forEach((p, i) => {
    if (typeof p !== 'string' || p.length === 0) invalid(`inputs[${i}]`, 'a store path', p, 'invalid_input');
  });
  if (options === null || typeof options !== 'object') invalid('options', '{ out, onConflict?, rowsPerFile? }', options);
  if (typeof options.out !== 'string' || options.out.length === 0) invalid('out', 'a folder path', options.out);
  const onConflict = options.onConflict ?? 'error';
  if (!['error', 'skip', 'replace'].includes(onConflict)) invalid('onConflict', "'error', 'skip' or 'replace'", onConflict);
  const rowsPerFile = options.rowsPerFile ?? DEFAULT_ROWS_PER_FILE;
  if (!Number.isInteger(rowsPerFile) || rowsPerFile < 1) invalid('rowsPerFile', 'a positive integer', rowsPerFile);

  const out = resolve(options.out);
  // Before anything else: an output that is an input, inside one or holding one is never touched.
  checkOutputNotInput(options.out, inputs);
  checkOut(out);
  const created = !existsSync(out);
  mkdirSync(out, { recursive: true });
  const unlock = lock(out);
  try {
    recover(out);
    const { plan, skipped, unmatched } = await planMerge(inputs, out, onConflict);
    const staging = join(out, `${STAGING}${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const runs = await stage(inputs, plan, staging, rowsPerFile, options.onProgress);
      commit(out, staging, plan);
      return { out, runs, skipped, unmatchedSourceInfluence: unmatched };
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  } finally {
    unlock();
    // A first merge that failed leaves no empty folder behind.
    if (created && readdirSync(out).length === 0) rmSync(out, { recursive: true, force: true });
  }
}

/** The output folder must be new, empty, or a dataset: never someone's other folder. */
function checkOut(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new InrunError(`${quote(out)} is a file; name a folder for the dataset`, { field: 'out', code: 'invalid_input' });
  const entries = readdirSync(out).filter((f) => f !== LOCK);
  if (entries.length > 0 && !isDataset(out)) {
    throw new InrunError(`${quote(out)} is neither empty nor a dataset inrun merged (no ${DATASET_MARKER}); name a new folder`, { field: 'out', code: 'invalid_input' });
  }
}

/** Takes the dataset's lock (a file holding our pid); a lock whose process is gone is taken over. */
function lock(out: string): () => void {
  const path = join(out, LOCK);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const pid = Number(readFileSync(path, 'utf8'));
      if (alive(pid)) throw new InrunError(`another merge (process ${pid}) is writing ${quote(out)}; wait for it (or remove ${LOCK} if that process is not a merge)`, { field: 'out', code: 'invalid_input' });
      rmSync(path, { force: true });
    }
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Repairs what a merge killed mid-way left (we hold the lock, so every staging folder is stale):
 * a run whose old partitions were moved aside but whose new `runs` partition never arrived gets its
 * old partitions back; then partitions of runs not listed in `runs` and the staging folders go.
 */
function recover(out: string): void {
  for (const name of readdirSync(out).filter((f) => f.startsWith(STAGING))) {
    const old = join(out, name, OLD);
    for (const id of existsSync(old) ? partitions(old, 'runs') : []) {
      if (existsSync(partitionDir(out, 'runs', id))) continue;
      for (const table of DATASET_TABLES) {
        const from = partitionDir(old, table.name, id);
        if (!existsSync(from)) continue;
        const to = partitionDir(out, table.name, id);
        rmSync(to, { recursive: true, force: true });
        mkdirSync(dirname(to), { recursive: true });
        renameSync(from, to);
      }
    }
    rmSync(join(out, name), { recursive: true, force: true });
  }
  const runs = new Set(partitions(out, 'runs'));
  for (const table of DATASET_TABLES) {
    for (const id of partitions(out, table.name)) if (!runs.has(id)) rmSync(partitionDir(out, table.name, id), { recursive: true, force: true });
  }
}

/** Opens input `i`, naming it in any error. */
async function open(path: string, i: number): Promise<StoreReader> {
  try {
    return await openStore(path);
  } catch (error) {
    if (error instanceof InrunError && error.field === 'store') {
      throw new InrunError(error.message.replace(/^inrun: store: /, ''), { field: `inputs[${i}]`, code: error.code, cause: error });
    }
    throw error;
  }
}

/** Which run of which input goes in, by the conflict rule; nothing is written yet. */
async function planMerge(inputs: readonly string[], out: string, onConflict: OnConflict) {
  const plan: Planned[] = [];
  const skipped: { runId: string; store: string }[] = [];
  const unmatched: { store: string; rows: number }[] = [];
  const first = new Map<string, Planned | 'dataset'>(partitions(out, 'runs').map((id) => [id, 'dataset']));
  for (const [i, store] of inputs.entries()) {
    const reader = await open(store, i);
    try {
      const ids = (await reader.all('SELECT run_id FROM runs ORDER BY run_id')).map((r) => text(r['run_id']));
      for (const id of ids) {
        const field = `inputs[${i}].runs.${id}`;
        try {
          checkRunId(id, field);
        } catch (cause) {
          throw new InrunError(`run id ${quote(id)} of ${quote(store)} cannot name a partition folder (1 to 128 characters of A-Z a-z 0-9 . _ -)`, { field, code: 'invalid_input', cause });
        }
        const prior = first.get(id);
        const next: Planned = { runId: id, input: i, store, replaced: prior !== undefined };
        if (prior !== undefined) {
          const where = prior === 'dataset' ? `the dataset ${quote(out)}` : quote(prior.store);
          if (onConflict === 'error') {
            throw new InrunError(`run ${quote(id)} of ${quote(store)} is already in ${where}; nothing was written. Pass onConflict 'skip' (--on-conflict skip) to keep the first, or 'replace' to take the last`, {
              field,
              code: 'invalid_input',
            });
          }
          if (onConflict === 'skip') {
            skipped.push({ runId: id, store });
            continue;
          }
          if (prior !== 'dataset') {
            plan.splice(plan.indexOf(prior), 1);
            skipped.push({ runId: id, store: prior.store });
            // It replaces the dataset's run only if the one it displaces did.
            next.replaced = prior.replaced;
          }
        }
        plan.push(next);
        first.set(id, next);
      }
      if ((await reader.tables()).includes('source_influence')) {
        const list = ids.length === 0 ? "''" : ids.map(literal).join(', ');
        const [row] = await reader.all(`SELECT COUNT(*) AS n FROM source_influence WHERE run_id NOT IN (${list})`);
        const n = Number(row?.['n'] ?? 0);
        if (n > 0) unmatched.push({ store, rows: n });
      }
    } finally {
      await reader.close();
    }
  }
  return { plan, skipped, unmatched };
}

/** Writes every planned run's partitions under `staging`, one input open at a time. */
async function stage(inputs: readonly string[], plan: readonly Planned[], staging: string, rowsPerFile: number, onProgress: MergeOptions['onProgress']): Promise<MergedRun[]> {
  const merged: MergedRun[] = [];
  let total = 0;
  const writer = await partWriter();
  try {
    for (const [i, store] of inputs.entries()) {
      const runs = plan.filter((p) => p.input === i);
      if (runs.length === 0) continue;
      const reader = await open(store, i);
      try {
        const tables = new Set(await reader.tables());
        for (const run of runs) {
          const rows: Record<string, number> = {};
          let files = 0;
          for (const table of DATASET_TABLES.filter((t) => t.always || tables.has(t.name))) {
            // The run id is a literal, not a parameter: DuckDB then drops the other runs' branches
            // of a Parquet store's views when it plans the query, instead of scanning them.
            const typed = table.name === 'examples' ? `, ${reader.idType('examples')} AS id_type` : '';
            const source = reader.iterate(`SELECT ${table.name}.*${typed} FROM ${table.name} WHERE run_id = ${literal(run.runId)} ORDER BY ${['run_id', ...table.orderBy].join(', ')}`);
            const written = await writer.write(table, source, partitionDir(staging, table.name, run.runId), rowsPerFile);
            rows[table.name] = written.rows;
            files += written.files;
            total += written.rows;
          }
          merged.push({ runId: run.runId, store, rows, files, replaced: run.replaced });
          onProgress?.({ runs: merged.length, totalRuns: plan.length, rows: total });
        }
      } finally {
        await reader.close();
      }
    }
  } finally {
    writer.close();
  }
  return merged;
}

/**
 * Renames the staged partitions into the dataset, run by run: a run being replaced first has its
 * `runs` partition, then the others, moved aside (into the staging folder); the new run's
 * partitions come in with `runs` last. Every step is a rename, so a failure undoes the steps taken
 * in reverse; a process killed mid-way is repaired by the next merge ({@link recover}).
 */
function commit(out: string, staging: string, plan: readonly Planned[]): void {
  const moves: { from: string; to: string }[] = [];
  const move = (from: string, to: string) => {
    mkdirSync(dirname(to), { recursive: true });
    renameSync(from, to);
    moves.push({ from, to });
  };
  const marker = join(out, DATASET_MARKER);
  if (!existsSync(marker)) writeAtomically(marker, `${JSON.stringify({ kind: 'inrun-merged', layoutVersion: DATASET_LAYOUT_VERSION } satisfies DatasetMarker)}\n`);
  const old = join(staging, OLD);
  const aside = [...DATASET_TABLES].reverse(); // runs first
  try {
    for (const { runId } of plan) {
      for (const table of aside) {
        const there = partitionDir(out, table.name, runId);
        if (existsSync(there)) move(there, partitionDir(old, table.name, runId));
      }
      for (const table of DATASET_TABLES) {
        const staged = partitionDir(staging, table.name, runId);
        if (existsSync(staged)) move(staged, partitionDir(out, table.name, runId));
      }
    }
  } catch (error) {
    for (const { from, to } of moves.reverse()) renameSync(to, from);
    throw error;
  }
}
