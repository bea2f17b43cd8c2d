// BullMQ plumbing of inrun jobs: the Redis URL, the queue's name, a worker that runs every job kind (TracIn shards, UnTrac ascents, merges).
import type { ConnectionOptions, Job, Worker } from 'bullmq';
import { bullmq } from './bullmq.js';
import { checkJob } from './check-job.js';
import { taggedForQueue } from './job-error.js';
import { InrunError } from '@inrun/store';
import { jobMetrics, type JobMetricsOptions } from './metrics.js';
import { runTracinMerge, type TracinMergeJob } from './tracin-merge.js';
import { runTracinShard, type TracinShardJob } from './tracin-shard.js';
import { runTrakMerge, type TrakMergeJob } from './trak-merge.js';
import { runTrakShard, type TrakShardJob } from './trak-shard.js';
import { runUntracJob, runUntracMerge, type UntracJob, type UntracMergeJob } from './untrac-job.js';

/** The queue inrun's jobs go through unless told otherwise. */
export const DEFAULT_QUEUE = 'inrun';

/** Job names (workers of other versions skip none: an unknown name fails the job with a clear message). */
export const JOB_NAMES = { tracinShard: 'tracin-shard', tracinMerge: 'tracin-merge', trakShard: 'trak-shard', trakMerge: 'trak-merge', untrac: 'untrac', untracMerge: 'untrac-merge' } as const;

/** Connection options for BullMQ from `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS). */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InrunError(`not a Redis URL: ${url} (expected redis://host:port)`, { code: 'invalid_option', field: 'redis' });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new InrunError(`not a Redis URL: ${url} (expected redis://host:port)`, { code: 'invalid_option', field: 'redis' });
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new InrunError(`bad Redis database in ${url}`, { code: 'invalid_option', field: 'redis' });
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  readonly connection: ConnectionOptions;
  /** Jobs run at once in this process (tf.js shares one backend: more than 1 helps only while jobs wait on files). @defaultValue 1 */
  readonly concurrency?: number;
  /** @defaultValue {@link DEFAULT_QUEUE} */
  readonly queueName?: string;
  /**
   * How long a job's lock lives without renewal, in milliseconds: a killed worker's job is taken back
   * (retried by another worker) after about this long. @defaultValue 30 000 (BullMQ's)
   */
  readonly lockDuration?: number;
  /**
   * How often this worker looks for jobs whose worker died, in milliseconds. BullMQ runs that check at
   * most once per interval per queue, whichever worker set it, so it follows the lock by default.
   * @defaultValue `lockDuration` when given, else 30 000 (BullMQ's)
   */
  readonly stalledInterval?: number;
  /**
   * OpenTelemetry metrics of the jobs this worker runs (docs/telemetry.md): `true` for the global
   * provider, or `{ meterProvider?, attributes? }`. Off, jobs run exactly as without it. @defaultValue off
   */
  readonly metrics?: boolean | JobMetricsOptions;
}

/** Runs one job by its name. */
export async function processJob(job: Job): Promise<unknown> {
  try {
    return await runByName(job);
  } catch (e) {
    // The caller reports the child's code (bad input exits 3 on the CLI, not 1) and field.
    throw taggedForQueue(e);
  }
}

async function runByName(job: Job): Promise<unknown> {
  // Anyone on the Redis can enqueue: nothing of a job is trusted before it is checked.
  checkJob(job.name, job.data);
  switch (job.name) {
    case JOB_NAMES.tracinShard:
      return await runTracinShard(job.data as TracinShardJob);
    case JOB_NAMES.tracinMerge:
      return await runTracinMerge(job.data as TracinMergeJob);
    case JOB_NAMES.trakShard:
      return await runTrakShard(job.data as TrakShardJob);
    case JOB_NAMES.trakMerge:
      return await runTrakMerge(job.data as TrakMergeJob);
    case JOB_NAMES.untrac:
      return await runUntracJob(job.data as UntracJob);
    case JOB_NAMES.untracMerge:
      return await runUntracMerge(job.data as UntracMergeJob);
    default:
      throw new InrunError(`unknown inrun job ${job.name} (a newer inrun enqueued it?)`, { code: 'invalid_state', field: 'job.name' });
  }
}

/**
 * A BullMQ worker that runs inrun's jobs (TracIn shards and merges) until closed. Any number of them,
 * on any machine that sees the same files (checkpoints, rows, output folder) and the same Redis.
 */
export function startWorker(options: WorkerOptions): Worker {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InrunError(`concurrency must be a positive integer, got ${String(concurrency)}`, { code: 'invalid_option', field: 'concurrency' });
  const metrics = jobMetrics(options.metrics);
  // attemptsStarted counts this attempt: above 1 it is a retry (after a failure, or a dead worker's job taken back).
  const processor = metrics === null ? processJob : (job: Job) => metrics.run(job.name, job.attemptsStarted, () => processJob(job));
  return new (bullmq().Worker)(options.queueName ?? DEFAULT_QUEUE, processor, {
    connection: options.connection,
    concurrency,
    ...(options.lockDuration === undefined ? {} : { lockDuration: options.lockDuration }),
    ...((options.stalledInterval ?? options.lockDuration) === undefined ? {} : { stalledInterval: options.stalledInterval ?? options.lockDuration }),
  });
}
