// One TRAK shard job: a row range of the training file over every checkpoint of every run: its partial kernel Phi^T Phi, its rows' projected gradients and Q weights, and the queries' features, to one part.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '@inrun/store';
import { writeAtomically } from '@inrun/store/internal';
import { addGram, checkRows, readCheckpointInfo, resolveTrakOptions, trakFeatures, trakRuns } from 'inrun/internal';
import { readRows, type RowRange } from './row-files.js';
import { shardPartPath } from './tracin-shard.js';

/** Parameters TRAK covers, as the CLI names them. */
export type TrakLayers = 'all' | 'last' | 'embedding';

/** The projection and output settings every shard of a run shares (as `trak()` takes them). */
export interface TrakShardSettings {
  readonly dim: number;
  readonly seed: number;
  readonly output: 'margin' | 'loss';
  readonly layers: TrakLayers;
  readonly sketches: 'stored' | 'recompute';
  readonly batchSize: number;
}

/** A TRAK shard job. Only paths and numbers: it travels through Redis as is. */
export interface TrakShardJob extends TrakShardSettings {
  /** One entry per run: a checkpoint folder or a folder of `step-*` checkpoints. */
  readonly runs: readonly string[];
  /** Training rows: JSON lines, or Parquet when the name ends in `.parquet`. */
  readonly train: string;
  /** Queries, same forms. */
  readonly queries: string;
  readonly range: RowRange;
  readonly shard: number;
  /** Output folder shared by every shard of the run. */
  readonly out: string;
  readonly runId: string;
}

/** One checkpoint in a part: where its arrays start in `trak-part.f64` (in numbers). */
export interface TrakPartCheckpoint {
  readonly run: number;
  readonly path: string;
  readonly step: number;
  readonly dim: number;
  readonly from: 'sketches' | 'checkpoint';
  /** Offset of its D x D partial kernel; then the queries' q x D features, the rows' n x D Phi, the rows' n Q weights. */
  readonly at: number;
}

/** `trak-part.json`: what the numbers in `trak-part.f64` are. Written last: its presence means the part is whole. */
export interface TrakPartIndex {
  readonly rows: number;
  /** Training ids of the shard's rows, in file order. */
  readonly trainIds: readonly (string | number)[];
  readonly queryIds: readonly (string | number)[];
  /** Each row's source, when the row file has them (stored with the scores); else null. */
  readonly sources: readonly string[] | null;
  /** Each row's label, the argmax of a one-hot `ys` (stored with the scores); null for other `ys`. */
  readonly labels: readonly number[] | null;
  /** The tf.js backend and version the part was computed on. */
  readonly backend: string;
  readonly tfjsVersion: string;
  /** Checkpoints per run, in order. */
  readonly runs: readonly number[];
  readonly checkpoints: readonly TrakPartCheckpoint[];
}

/** The part's index file (beside it, `trak-part.f64`), under the run's shard folder as tracin's parts. */
export function trakPartPath(out: string, runId: string, shard: number): string {
  return join(dirname(shardPartPath(out, runId, shard)), 'trak-part.json');
}

/** Runs one shard and writes its part atomically (a retried job replaces it whole). Returns the index path. */
export async function runTrakShard(job: TrakShardJob): Promise<string> {
  try {
    return await featuresOfShard(job);
  } catch (e) {
    const message = `trak shard ${job.shard} (rows ${job.range.start} to ${job.range.end - 1} of ${job.train}): ${e instanceof Error ? e.message : String(e)}`;
    throw new InrunError(message, { code: e instanceof InrunError ? e.code : 'internal', field: `shards[${job.shard}]` });
  }
}

async function featuresOfShard(job: TrakShardJob): Promise<string> {
  const o = resolveTrakOptions({ runs: job.runs, dim: job.dim, seed: job.seed, output: job.output, layers: job.layers, sketches: job.sketches, batchSize: job.batchSize });
  const runs = trakRuns(o.runs);
  const trainRows = await readRows(job.train, job.range);
  try {
    const queryRows = await readRows(job.queries);
    try {
      const train = checkRows('train', { xs: trainRows.xs, ys: trainRows.ys, ids: trainRows.ids });
      const queries = checkRows('queries', { xs: queryRows.xs, ys: queryRows.ys, ids: queryRows.ids });
      const n = train.ids.length;
      const chunks: Float64Array[] = [];
      const checkpoints: TrakPartCheckpoint[] = [];
      let at = 0;
      for (const [run, paths] of runs.entries()) {
        for (const path of paths) {
          const f = await trakFeatures(path, o, train, queries, run);
          const gram = addGram(f.phi, n, f.dim, new Float64Array(f.dim * f.dim));
          checkpoints.push({ run, path, step: readCheckpointInfo(path).step, dim: f.dim, from: f.from, at });
          chunks.push(gram, f.queries, f.phi, f.weight);
          at += gram.length + f.queries.length + f.phi.length + f.weight.length;
        }
      }
      const numbers = new Float64Array(at);
      let offset = 0;
      for (const c of chunks) {
        numbers.set(c, offset);
        offset += c.length;
      }
      const index = trakPartPath(job.out, job.runId, job.shard);
      mkdirSync(dirname(index), { recursive: true });
      writeAtomically(index.replace(/\.json$/, '.f64'), new Uint8Array(numbers.buffer));
      const meta: TrakPartIndex = { rows: n, trainIds: train.ids, queryIds: queries.ids, sources: trainRows.sources, labels: await labelsOf(trainRows.ys), backend: tf.getBackend(), tfjsVersion: tf.version_core, runs: runs.map((r) => r.length), checkpoints };
      writeAtomically(index, JSON.stringify(meta));
      return index;
    } finally {
      tf.dispose([queryRows.xs, queryRows.ys]);
    }
  } finally {
    tf.dispose([trainRows.xs, trainRows.ys]);
  }
}

/** A one-hot (rows x classes, classes > 1) `ys` gives each row's class; any other shape gives none. */
async function labelsOf(ys: tf.Tensor): Promise<number[] | null> {
  if (ys.rank !== 2 || (ys.shape[1] ?? 0) < 2) return null;
  const argMax = tf.argMax(ys, 1);
  try {
    return Array.from(await argMax.data());
  } finally {
    argMax.dispose();
  }
}
