// distributedTrak(): TRAK over files, split into training-row shards (partial kernels) and one merge (sum, solve, score, store), in this process or as a BullMQ flow.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '@inrun/store';
import { invalid } from '@inrun/store/internal';
import { resolveTrakOptions, trakRuns, type TrakResult } from 'inrun/internal';
import { checkDistinctIds, shardRanges } from './distributed-tracin.js';
import { runFlow, type JobProgress, type JobQueue } from './flow.js';
import { jobMetrics, measured, type JobMetricsOptions } from './metrics.js';
import { JOB_NAMES } from './queue.js';
import { countRows } from './row-files.js';
import { claimRunFolder, releaseRunFolder } from './run-folder.js';
import { runTrakMerge, type TrakMergeJob, type TrakMergeReturn } from './trak-merge.js';
import { runTrakShard, trakPartPath, type TrakLayers, type TrakShardJob } from './trak-shard.js';

/** Options of {@link distributedTrak}: `trak()`'s settings, with row files and an output folder. */
export interface DistributedTrakOptions {
  /** One entry per run (TRAK-k for k runs): a checkpoint folder or a folder of `step-*` checkpoints. */
  readonly runs: readonly string[];
  /** Training rows: JSON lines of `{"id", "xs", "ys"}`, or a `.parquet` file with columns id, xs, ys. */
  readonly train: string;
  /** The examples to explain, same forms. */
  readonly queries: string;
  /**
   * Output folder: parts under `run=<runId>/ckpt=all/shard=<s>/`, then `queries.parquet`, and the
   * scores as run `<runId>/` of a Parquet store (`inrun report <out>`). It must not hold a `queries.parquet`.
   */
  readonly out: string;
  /** Also store the scores' run in this SQLite file (new, or one a run's `sqliteSink` wrote). @defaultValue none */
  readonly sqlite?: string;
  /** This invocation's id (its folder `run=<runId>` must not exist). @defaultValue a fresh id */
  readonly runId?: string;
  /** @defaultValue 10 */
  readonly k?: number;
  /** @defaultValue 32 */
  readonly dim?: number;
  /** @defaultValue `TRAK_LAMBDA_SCALE` x the mean diagonal of Phi^T Phi, per checkpoint (as `trak()`) */
  readonly lambda?: number;
  /** @defaultValue 0 */
  readonly seed?: number;
  /** @defaultValue 'margin' */
  readonly output?: 'margin' | 'loss';
  /** @defaultValue 'all' */
  readonly layers?: TrakLayers;
  /** @defaultValue 'stored' */
  readonly sketches?: 'stored' | 'recompute';
  /** Training rows per pass. @defaultValue 256 */
  readonly batchSize?: number;
  /** Training-row shards, one job each. @defaultValue 1 */
  readonly shards?: number;
  /** Run the shards and the merge on a BullMQ queue; without it they run here, one after another. */
  readonly queue?: JobQueue;
  /** Called as shard jobs finish or fail for good. */
  readonly onProgress?: (progress: JobProgress) => void;
  /** OpenTelemetry metrics, as {@link distributedTracin}'s. @defaultValue off */
  readonly metrics?: boolean | JobMetricsOptions;
}

/** The merged result (as `trak()` returns it, without the matrix) and the files written (the stored run is `<out>/<runId>/`). */
export interface DistributedTrakResult {
  readonly result: TrakResult;
  readonly runId: string;
  readonly parts: readonly string[];
  readonly queries: string;
  readonly trainingRows: number;
}

/**
 * TRAK (as `trak()`) over a training row file split into row shards. Each shard job computes, at every
 * checkpoint of every run, its rows' projected gradients and Q weights, their partial kernel Phi_s^T
 * Phi_s, and the queries' features, into one part; the merge sums the partial kernels, solves each
 * checkpoint's kernel once, scores every part's rows and writes `queries.parquet` (docs/scale-out.md).
 * Equal to `trak()` on all rows up to the order of the kernel's sums. With `queue`, the shards are
 * children of a BullMQ flow whose parent is the merge; workers must see the same files.
 */
export async function distributedTrak(options: DistributedTrakOptions): Promise<DistributedTrakResult> {
  const o = resolveTrakOptions(options);
  const layers = options.layers ?? 'all';
  if (!['all', 'last', 'embedding'].includes(layers)) invalid('layers', "'all', 'last' or 'embedding'", layers);
  if (!o.runs.every((r) => typeof r === 'string')) invalid('runs', 'one folder (a string) per run', o.runs);
  const shards = options.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1) invalid('shards', 'a positive integer', shards);
  if (options.sqlite !== undefined && (typeof options.sqlite !== 'string' || options.sqlite === '')) invalid('sqlite', 'a file path', options.sqlite);
  // One TRAK run per folder: a second would overwrite the first's queries.parquet.
  const listed = join(options.out, 'queries.parquet');
  if (existsSync(listed)) throw new InrunError(`${listed} exists: choose another out folder`, { field: 'out', code: 'invalid_option' });
  // Known before any job: a run without checkpoints fails here, not in every job.
  trakRuns(o.runs);
  const rows = await countRows(options.train);
  if (rows === 0) throw new InrunError(`no rows in ${options.train}`, { code: 'invalid_input', field: 'train' });
  await checkDistinctIds(options.train);
  const claim = claimRunFolder(options.out, options.runId);
  const runId = claim.id;
  try {
    const settings = { dim: o.dim, seed: o.seed, output: o.output, layers, sketches: o.sketches, batchSize: o.batchSize };
    const jobs: TrakShardJob[] = shardRanges(rows, shards).map((range, shard) => ({ ...settings, runs: o.runs as string[], train: options.train, queries: options.queries, range, shard, out: options.out, runId }));
    const merge: TrakMergeJob = { parts: jobs.map((j) => trakPartPath(j.out, runId, j.shard)), k: o.k, out: options.out, runId, ...(o.lambda === null ? {} : { lambda: o.lambda }), ...(options.sqlite === undefined ? {} : { sqlite: options.sqlite }) };
    const metrics = jobMetrics(options.metrics);
    let merged: TrakMergeReturn;
    if (options.queue === undefined) {
      for (const [i, job] of jobs.entries()) {
        await measured(metrics, JOB_NAMES.trakShard, () => runTrakShard(job));
        options.onProgress?.({ done: i + 1, failed: 0, total: jobs.length });
      }
      merged = await measured(metrics, JOB_NAMES.trakMerge, () => runTrakMerge(merge));
    } else {
      merged = (await runFlow(options.queue, { name: JOB_NAMES.trakMerge, data: merge }, jobs.map((data) => ({ name: JOB_NAMES.trakShard, data })), options.onProgress, metrics)) as TrakMergeReturn;
    }
    return { result: merged.result, runId, parts: merge.parts, queries: merged.queries, trainingRows: merged.trainingRows };
  } catch (error) {
    releaseRunFolder(options.out, claim);
    throw error;
  }
}
