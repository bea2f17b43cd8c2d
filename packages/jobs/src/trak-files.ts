// `inrun trak` in process: TRAK over row files (JSON lines or Parquet), top-k lists written as tracin's queries.parquet.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '@inrun/store';
import { trak, type TrakOptions, type TrakResult } from 'inrun/internal';
import { writeQueriesFile } from './queries-file.js';
import { readRows } from './row-files.js';

/** Options of {@link trakFiles}: {@link TrakOptions} with row files for the rows, and an output folder. */
export interface TrakFilesOptions extends Omit<TrakOptions, 'train' | 'queries' | 'matrix'> {
  /** Training rows: JSON lines of `{"id", "xs", "ys"}`, or a `.parquet` file with columns id, xs, ys. */
  readonly train: string;
  /** The examples to explain, same forms. */
  readonly queries: string;
  /** Writes `queries.parquet` here (the folder must not hold one). */
  readonly out: string;
}

/**
 * Reads both row files, runs {@link trak} and writes `<out>/queries.parquet` with the columns of
 * `inrun tracin`'s (`query_id`, `kind` proponent | opponent, `rank` from 1, `train_id`, `score`; ids
 * as strings). All training rows are read at once (the kernel needs every row per checkpoint).
 */
export async function trakFiles(options: TrakFilesOptions): Promise<{ readonly queries: string; readonly result: TrakResult; readonly trainingRows: number }> {
  const { train: trainFile, queries: queriesFile, out, ...rest } = options;
  const path = join(out, 'queries.parquet');
  if (existsSync(path)) throw new InrunError(`${path} exists: choose another --out`, { field: 'out', code: 'invalid_option' });
  // Said before the work, as tracin's and untrac's run folders say it (a row file given as --out, say).
  if (existsSync(out) && !statSync(out).isDirectory()) throw new InrunError(`cannot create ${out}: a file is there, not a folder`, { field: 'out', code: 'invalid_option' });
  const train = await readRows(trainFile);
  try {
    const queries = await readRows(queriesFile);
    try {
      const result = await trak({ ...rest, train: { xs: train.xs, ys: train.ys, ids: train.ids }, queries: { xs: queries.xs, ys: queries.ys, ids: queries.ids } }).catch((e: unknown) => {
        throw namingFile(e, { train: trainFile, queries: queriesFile });
      });
      mkdirSync(out, { recursive: true });
      writeQueriesFile(path, result.queries);
      return { queries: path, result, trainingRows: train.ids.length };
    } finally {
      tf.dispose([queries.xs, queries.ys]);
    }
  } finally {
    tf.dispose([train.xs, train.ys]);
  }
}

/** An error about the rows (field `train...` or `queries...`: a non-finite row, a wrong shape, a duplicate id), naming the row file they came from. */
function namingFile(e: unknown, files: { readonly train: string; readonly queries: string }): unknown {
  if (!(e instanceof InrunError) || e.field === undefined) return e;
  const side = e.field.split(/[.[]/)[0];
  if (side !== 'train' && side !== 'queries') return e;
  return new InrunError(`${files[side]}: ${e.message.replace(`inrun: ${e.field}: `, '')}`, { field: e.field, code: e.code, cause: e });
}
