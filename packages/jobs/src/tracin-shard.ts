// One TracIn shard job: one row range of the training file over every checkpoint (top-k and self-influence) or over one checkpoint (every score), to one Parquet part.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '@inrun/store';
import { checkpointFolders, tracin } from 'inrun/internal';
import { writeParquetFile } from '@inrun/store/internal';
import { readRows, type FileRows, type RowRange } from './row-files.js';

/** Parameters TracIn covers, as the CLI names them. */
export type TracinLayers = 'all' | 'last' | 'embedding';

/**
 * A TracIn shard job. Only paths and numbers: it travels through Redis as is. The job covers every
 * checkpoint for its rows, so its scores are already the TracInCP sums over checkpoints and its top-k
 * lists hold the shard's true best and worst (the merge only has to pick among shards' lists).
 */
export interface TracinShardJob {
  /** A checkpoint folder or a folder of `step-*` checkpoints (as {@link tracin} takes). */
  readonly checkpoints: string;
  /** Training rows: JSON lines, or Parquet when the name ends in `.parquet`. */
  readonly train: string;
  /** Queries, same forms. */
  readonly queries: string;
  /** The shard's training rows. */
  readonly range: RowRange;
  readonly shard: number;
  readonly k: number;
  readonly layers: TracinLayers;
  /** Output folder shared by every shard of the run. */
  readonly out: string;
  /** The run (the invocation of `distributedTracin`) the part belongs to: its folder is `run=<runId>`. */
  readonly runId: string;
  /**
   * Only this checkpoint (its index among the checkpoint folders, in step order): the part then holds
   * every score of the shard's rows at that checkpoint, for the merge to sum. Absent: every checkpoint, top-k.
   */
  readonly checkpoint?: number;
}

/**
 * Where shard `shard` of run `runId` writes: Hive-style partitions, the run first (so a second run into
 * the same folder never mixes with the first), one part per shard over all checkpoints (`ckpt=all`).
 */
export function shardPartPath(out: string, runId: string, shard: number, checkpoint?: number): string {
  return join(out, `run=${runId}`, `ckpt=${checkpoint ?? 'all'}`, `shard=${shard}`, 'part.parquet');
}

/**
 * Runs one shard with {@link tracin} on the shard's rows and writes its part atomically (temp + rename:
 * a retried or duplicated job replaces the whole file, never leaves a partial one). Rows of the part:
 * `kind` proponent | opponent | self | source, `query` (query index; -1 for self), `rank` (row index in
 * the shard for self; the source's rows in the shard for source), `train_id` (JSON of the id, so numbers
 * stay numbers; JSON of the source's name for source), `score`. Source rows exist when the training
 * file gives each row a `source`: the shard's summed scores per source and query ({@link tracin}'s `sources`).
 */
export async function runTracinShard(job: TracinShardJob): Promise<string> {
  try {
    return await scoreShard(job);
  } catch (e) {
    // The flow's caller sees only this message: name the shard and its rows.
    const at = job.checkpoint === undefined ? '' : `, checkpoint ${job.checkpoint}`;
    const message = `shard ${job.shard}${at} (rows ${job.range.start} to ${job.range.end - 1} of ${job.train}): ${e instanceof Error ? e.message : String(e)}`;
    throw new InrunError(message, { code: e instanceof InrunError ? e.code : 'internal', field: `shards[${job.shard}]` });
  }
}

async function scoreShard(job: TracinShardJob): Promise<string> {
  const train = await readRows(job.train, job.range);
  try {
    const queries = await readRows(job.queries);
    try {
      if (job.checkpoint !== undefined) return await scoreCheckpoint(job, job.checkpoint, train, queries);
      const result = await tracin({ checkpoints: job.checkpoints, train, queries, k: job.k, layers: job.layers, ...(train.sources === null ? {} : { sources: train.sources }) });
      const kind: string[] = [];
      const query: number[] = [];
      const rank: number[] = [];
      const id: string[] = [];
      const score: number[] = [];
      const push = (k: string, q: number, r: number, i: unknown, s: number): void => {
        kind.push(k);
        query.push(q);
        rank.push(r);
        id.push(JSON.stringify(i));
        score.push(s);
      };
      result.queries.forEach((q, j) => {
        q.proponents.forEach((p, r) => push('proponent', j, r, p.id, p.score));
        q.opponents.forEach((p, r) => push('opponent', j, r, p.id, p.score));
      });
      const self = result.selfInfluence!;
      self.ids.forEach((i, r) => push('self', -1, r, i, self.values[r]!));
      // Per source and query: the shard's sum (rank holds the source's rows in the shard); the merge adds shards' sums.
      for (const s of result.sources ?? []) s.scores.forEach((v, j) => push('source', j, s.examples, s.source, v));
      const path = shardPartPath(job.out, job.runId, job.shard);
      mkdirSync(dirname(path), { recursive: true });
      writeParquetFile(path, [
        { name: 'kind', type: 'STRING', data: kind },
        { name: 'query', type: 'INT32', data: query },
        { name: 'rank', type: 'INT32', data: rank },
        { name: 'train_id', type: 'STRING', data: id },
        { name: 'score', type: 'DOUBLE', data: score },
      ]);
      return path;
    } finally {
      tf.dispose([queries.xs, queries.ys]);
    }
  } finally {
    tf.dispose([train.xs, train.ys]);
  }
}

/**
 * One checkpoint over the shard's rows, every score kept: columns `train_id` (JSON), `self`, `source`
 * (when the rows have one) and `query_<j>` per query (float32, as computed). Rows x queries numbers:
 * the price of splitting checkpoints across jobs, since TracInCP ranks sums over checkpoints.
 */
async function scoreCheckpoint(job: TracinShardJob, checkpoint: number, train: FileRows, queries: FileRows): Promise<string> {
  const folder = checkpointFolders(job.checkpoints)[checkpoint];
  if (folder === undefined) throw new InrunError(`no checkpoint ${checkpoint} in ${job.checkpoints}`, { code: 'bad_checkpoint', field: 'checkpoints' });
  const result = await tracin({ checkpoints: [folder], train, queries, k: 1, layers: job.layers, matrix: true });
  const matrix = result.matrix!;
  const n = train.ids.length;
  const q = queries.ids.length;
  const self = result.selfInfluence!.values;
  const path = shardPartPath(job.out, job.runId, job.shard, checkpoint);
  mkdirSync(dirname(path), { recursive: true });
  writeParquetFile(path, [
    { name: 'train_id', type: 'STRING', data: train.ids.map((id) => JSON.stringify(id)) },
    { name: 'self', type: 'DOUBLE', data: self },
    ...(train.sources === null ? [] : [{ name: 'source', type: 'STRING' as const, data: train.sources }]),
    ...Array.from({ length: q }, (_, j) => ({ name: `query_${j}`, type: 'FLOAT' as const, data: Float32Array.from({ length: n }, (_, r) => matrix[r * q + j]!) })),
  ]);
  return path;
}
