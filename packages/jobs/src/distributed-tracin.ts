// distributedTracin(): TracInCP over files, split into training-row shards, in this process or as a BullMQ flow.
import { InrunError } from '@inrun/store';
import { invalid } from '@inrun/store/internal';
import { checkpointFolders, type TracInResult } from 'inrun/internal';
import { runFlow, type JobProgress, type JobQueue } from './flow.js';
import { jobMetrics, measured, type JobMetricsOptions } from './metrics.js';
import { JOB_NAMES } from './queue.js';
import { countRows, readIds, type RowRange } from './row-files.js';
import { claimRunFolder, releaseRunFolder } from './run-folder.js';
import { mergeTracinParts, resultOf, writeTracinOutputs, type TracinMergeJob, type TracinMergeReturn, type TracinOutputs } from './tracin-merge.js';
import { runTracinShard, shardPartPath, type TracinLayers, type TracinShardJob } from './tracin-shard.js';

/** Where the jobs go (see {@link JobQueue}). */
export type TracinQueue = JobQueue;

/** Options of {@link distributedTracin}. */
export interface DistributedTracInOptions {
  /** A checkpoint folder or a folder of `step-*` checkpoints. */
  readonly checkpoints: string;
  /**
   * Training rows: JSON lines (`{"id", "xs", "ys"}` per line, nested arrays in the model's shapes), or a
   * Parquet file (name ending in `.parquet`) with columns `id`, `xs`, `ys` (nested LIST columns).
   */
  readonly train: string;
  /** Queries, same forms. */
  readonly queries: string;
  /** Output folder: parts under `run=<runId>/ckpt=all/shard=<s>/`, then `queries.parquet` and `self_influence.parquet`. */
  readonly out: string;
  /**
   * This invocation's id, naming its folder `run=<runId>` (1 to 128 of `A-Z a-z 0-9 . _ -`); the
   * folder must not exist yet. @defaultValue a fresh id (time and a random suffix)
   */
  readonly runId?: string;
  /** @defaultValue 10 */
  readonly k?: number;
  /** @defaultValue 'all' */
  readonly layers?: TracinLayers;
  /** Training-row shards (one job each, or one per checkpoint with `perCheckpoint`). @defaultValue 1 */
  readonly shards?: number;
  /**
   * One job per (checkpoint, shard) instead of per shard: each job loads one checkpoint's model (a
   * shard job holds them all at once) and there are checkpoints x shards jobs to spread, but each part
   * holds every score of its rows at its checkpoint (rows x queries floats, `ckpt=<c>/`), which the
   * merge sums per shard before ranking. @defaultValue false
   */
  readonly perCheckpoint?: boolean;
  /**
   * Return every training row's self-influence in `result.selfInfluence` (as `tracin()` does). false:
   * `result.selfInfluence` is null and the values are only in `self_influence.parquet`, which the merge
   * streams from the parts: nothing in this process grows with the training rows (the CLI's choice).
   * @defaultValue true
   */
  readonly keepSelfInfluence?: boolean;
  /** Run the shards on a BullMQ queue; without it they run here, one after another. */
  readonly queue?: TracinQueue;
  /** Called as shard jobs finish or fail for good. */
  readonly onProgress?: (progress: JobProgress) => void;
  /**
   * OpenTelemetry metrics (docs/telemetry.md): in process, of the jobs run here; with `queue`, of the
   * flow's jobs as seen on the queue (the workers measure the jobs they run). @defaultValue off
   */
  readonly metrics?: boolean | JobMetricsOptions;
}

/** The merged result (as {@link tracin} returns it) and the files written. */
export interface DistributedTracInResult extends TracinOutputs {
  readonly result: TracInResult;
  /** The run's id: its parts are under `<out>/run=<runId>/`. */
  readonly runId: string;
  readonly parts: readonly string[];
}

/** `shards` contiguous row ranges covering `[0, n)`, none empty. */
export function shardRanges(n: number, shards: number): RowRange[] {
  const s = Math.min(shards, n);
  return Array.from({ length: s }, (_, i) => ({ start: Math.floor((i * n) / s), end: Math.floor(((i + 1) * n) / s) }));
}

/**
 * A shard sees only its rows: an id repeated in two shards would pass each of them, where one
 * `tracin()` call refuses it. Checked once over the ids (Parquet reads only that column).
 */
export async function checkDistinctIds(path: string): Promise<void> {
  const seen = new Map<string, number>();
  for (const [i, id] of (await readIds(path)).entries()) {
    // Typed keys: the number 1 and the string "1" are distinct ids.
    const key = `${typeof id}:${String(id)}`;
    const first = seen.get(key);
    if (first !== undefined) throw new InrunError(`row ${i} of ${path} repeats the id ${JSON.stringify(id)} of row ${first}: ids are distinct`, { code: 'invalid_input', field: `train.ids[${i}]` });
    seen.set(key, i);
  }
}

/**
 * TracInCP (as {@link tracin}) over a training row file (JSON lines or Parquet), split into row shards. Each shard job
 * runs `tracin` on its rows over every checkpoint (so its scores are already summed over checkpoints)
 * and writes its top-k per query and self-influence as a Parquet part; the merge keeps the best k per
 * query among the shards' lists. The result equals single-process `tracin` on all rows. With `queue`,
 * the shards are children of a BullMQ flow whose parent is the merge; only paths and numbers go
 * through Redis, so workers must see the same files.
 */
export async function distributedTracin(options: DistributedTracInOptions): Promise<DistributedTracInResult> {
  const k = options.k ?? 10;
  if (!Number.isInteger(k) || k < 1) invalid('k', 'a positive integer', k);
  const shards = options.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1) invalid('shards', 'a positive integer', shards);
  const layers = options.layers ?? 'all';
  if (!['all', 'last', 'embedding'].includes(layers)) invalid('layers', "'all', 'last' or 'embedding'", layers);
  const rows = await countRows(options.train);
  if (rows === 0) throw new InrunError(`no rows in ${options.train}`, { code: 'invalid_input', field: 'train' });
  await checkDistinctIds(options.train);
  const ranges = shardRanges(rows, shards);
  const keepSelfInfluence = options.keepSelfInfluence ?? true;
  if (typeof keepSelfInfluence !== 'boolean') invalid('keepSelfInfluence', 'true or false', keepSelfInfluence);
  const perCheckpoint = options.perCheckpoint ?? false;
  if (typeof perCheckpoint !== 'boolean') invalid('perCheckpoint', 'true or false', perCheckpoint);
  // Known before any job: a folder without checkpoints fails here, not in every job.
  const checkpoints = perCheckpoint ? checkpointFolders(options.checkpoints).length : 0;
  const claim = claimRunFolder(options.out, options.runId);
  const runId = claim.id;
  try {
    return await runClaimed(options, { runId, ranges, k, layers, perCheckpoint, checkpoints, keepSelfInfluence });
  } catch (error) {
    // A refused run (a bad row, a damaged checkpoint) leaves no empty run=<id>/ behind; parts it wrote stay for a look.
    releaseRunFolder(options.out, claim);
    throw error;
  }
}

interface Claimed {
  readonly runId: string;
  readonly ranges: readonly RowRange[];
  readonly k: number;
  readonly layers: TracinLayers;
  readonly perCheckpoint: boolean;
  readonly checkpoints: number;
  readonly keepSelfInfluence: boolean;
}

async function runClaimed(options: DistributedTracInOptions, { runId, ranges, k, layers, perCheckpoint, checkpoints, keepSelfInfluence }: Claimed): Promise<DistributedTracInResult> {
  const base = { checkpoints: options.checkpoints, train: options.train, queries: options.queries, k, layers, out: options.out, runId };
  // Shard-major: the merge takes each shard's checkpoints together.
  const jobs: TracinShardJob[] = ranges.flatMap((range, shard) => (perCheckpoint ? Array.from({ length: checkpoints }, (_, checkpoint) => ({ ...base, range, shard, checkpoint })) : [{ ...base, range, shard }]));
  const merge: TracinMergeJob = { parts: jobs.map((j) => shardPartPath(j.out, runId, j.shard, j.checkpoint)), checkpoints: options.checkpoints, queries: options.queries, k, out: options.out, perCheckpoint };
  const metrics = jobMetrics(options.metrics);
  if (options.queue === undefined) {
    for (const [i, job] of jobs.entries()) {
      await measured(metrics, JOB_NAMES.tracinShard, () => runTracinShard(job));
      options.onProgress?.({ done: i + 1, failed: 0, total: jobs.length });
    }
    return await measured(metrics, JOB_NAMES.tracinMerge, async () => {
      const result = await mergeTracinParts(merge, keepSelfInfluence);
      return { result, runId, parts: merge.parts, ...(await writeTracinOutputs(result, merge)) };
    });
  }
  const merged = (await runFlow(options.queue, { name: JOB_NAMES.tracinMerge, data: merge }, jobs.map((data) => ({ name: JOB_NAMES.tracinShard, data })), options.onProgress, metrics)) as TracinMergeReturn;
  // The parent wrote the files and returned the lists; self-influence, when kept, is read back from the parts.
  const result = keepSelfInfluence ? await mergeTracinParts(merge, true) : resultOf(merged);
  const outputs: TracinOutputs = { queries: merged.queries, selfInfluence: merged.selfInfluence, bySource: merged.bySource, trainingRows: merged.trainingRows };
  return { result, runId, parts: merge.parts, ...outputs };
}
