// distributedTracin(): TracInCP over files, split into training-row shards, in this process or as a BullMQ flow.
import { FlowProducer, Job, Queue, QueueEvents, type ConnectionOptions, type JobNode } from 'bullmq';
import { InrunError, invalid } from '../errors.js';
import type { TracInResult } from '../posthoc/tracin.js';
import { DEFAULT_QUEUE, JOB_NAMES } from './queue.js';
import { countRows, type RowRange } from './rows.js';
import { mergeTracinParts, writeTracinOutputs, type TracinMergeJob, type TracinOutputs } from './tracin-merge.js';
import { runTracinShard, shardPartPath, type TracinLayers, type TracinShardJob } from './tracin-shard.js';

/** Where the jobs go: a BullMQ queue on Redis, served by `inrun worker` processes. */
export interface TracinQueue {
  readonly connection: ConnectionOptions;
  /** @defaultValue {@link DEFAULT_QUEUE} */
  readonly queueName?: string;
  /** Tries per job before the flow fails (a killed worker's job counts one). @defaultValue 3 */
  readonly attempts?: number;
  /** Longest wait for the whole flow, in milliseconds. @defaultValue 3 600 000 (one hour) */
  readonly timeoutMs?: number;
}

/** Options of {@link distributedTracin}. */
export interface DistributedTracInOptions {
  /** A checkpoint folder or a folder of `step-*` checkpoints. */
  readonly checkpoints: string;
  /** JSON-lines training rows: `{"id", "xs", "ys"}` per line, nested arrays in the model's shapes. */
  readonly train: string;
  /** JSON-lines queries, same form. */
  readonly queries: string;
  /** Output folder: parts under `ckpt=all/shard=<s>/`, then `queries.parquet` and `self_influence.parquet`. */
  readonly out: string;
  /** @defaultValue 10 */
  readonly k?: number;
  /** @defaultValue 'all' */
  readonly layers?: TracinLayers;
  /** Training-row shards (one job each). @defaultValue 1 */
  readonly shards?: number;
  /** Run the shards on a BullMQ queue; without it they run here, one after another. */
  readonly queue?: TracinQueue;
}

/** The merged result (as {@link tracin} returns it) and the files written. */
export interface DistributedTracInResult extends TracinOutputs {
  readonly result: TracInResult;
  readonly parts: readonly string[];
}

/** `shards` contiguous row ranges covering `[0, n)`, none empty. */
export function shardRanges(n: number, shards: number): RowRange[] {
  const s = Math.min(shards, n);
  return Array.from({ length: s }, (_, i) => ({ start: Math.floor((i * n) / s), end: Math.floor(((i + 1) * n) / s) }));
}

/**
 * TracInCP (as {@link tracin}) over a JSON-lines training file, split into row shards. Each shard job
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
  const ranges = shardRanges(await countRows(options.train), shards);
  const jobs: TracinShardJob[] = ranges.map((range, shard) => ({ checkpoints: options.checkpoints, train: options.train, queries: options.queries, range, shard, k, layers, out: options.out }));
  const merge: TracinMergeJob = { parts: jobs.map((j) => shardPartPath(j.out, j.shard)), checkpoints: options.checkpoints, queries: options.queries, k, out: options.out };
  if (options.queue === undefined) {
    for (const job of jobs) await runTracinShard(job);
    const result = await mergeTracinParts(merge);
    return { result, parts: merge.parts, ...writeTracinOutputs(result, options.out) };
  }
  const outputs = await runFlow(options.queue, jobs, merge);
  // The parent wrote the files; the result is read back from the parts (small: k per query per shard).
  return { result: await mergeTracinParts(merge), parts: merge.parts, ...outputs };
}

/** Enqueues the flow (merge parent, one child per shard) and waits for the parent. */
async function runFlow(queue: TracinQueue, jobs: readonly TracinShardJob[], merge: TracinMergeJob): Promise<TracinOutputs> {
  const queueName = queue.queueName ?? DEFAULT_QUEUE;
  const attempts = queue.attempts ?? 3;
  const opts = { attempts, backoff: { type: 'fixed', delay: 1000 } };
  // Listening starts before the flow exists, so a fast flow's completion is not missed.
  const events = new QueueEvents(queueName, { connection: queue.connection });
  const producer = new FlowProducer({ connection: queue.connection });
  try {
    await events.waitUntilReady();
    const flow = await producer.add({
      name: JOB_NAMES.tracinMerge,
      queueName,
      data: merge,
      opts,
      children: jobs.map((data) => ({ name: JOB_NAMES.tracinShard, queueName, data, opts: { ...opts, failParentOnFailure: true } })),
    });
    try {
      return (await flow.job.waitUntilFinished(events, queue.timeoutMs ?? 3_600_000)) as TracinOutputs;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const reasons = await childFailures(queueName, queue.connection, flow.children ?? []);
      throw new InrunError(`the TracIn flow ${flow.job.id ?? ''} on queue ${queueName} failed, nothing merged: ${[message, ...reasons].join('; ')}`, { code: 'internal', field: 'queue' });
    }
  } finally {
    await producer.close();
    await events.close();
  }
}

/** The failed shards' own messages (the parent's failure only says that a child failed). */
async function childFailures(queueName: string, connection: ConnectionOptions, children: readonly JobNode[]): Promise<string[]> {
  const queue = new Queue(queueName, { connection });
  try {
    const reasons: string[] = [];
    for (const c of children) {
      const job = c.job.id === undefined ? undefined : await Job.fromId(queue, c.job.id);
      if (job?.failedReason) reasons.push(job.failedReason);
    }
    return reasons;
  } finally {
    await queue.close();
  }
}
