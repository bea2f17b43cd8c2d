// @inrun/jobs: offline jobs past one process (TracIn shards, UnTrac ascents, TRAK over files) in process or on BullMQ workers; what `inrun tracin|untrac|trak|worker` run.
export { distributedTracin, shardRanges } from './distributed-tracin.js';
export type { DistributedTracInOptions, DistributedTracInResult, TracinQueue } from './distributed-tracin.js';
export { DEFAULT_QUEUE, redisConnection, startWorker } from './queue.js';
export type { WorkerOptions } from './queue.js';
export { serveWorker } from './serve-worker.js';
export type { ServeWorkerOptions, WorkerStop } from './serve-worker.js';
export { distributedUntrac } from './distributed-untrac.js';
export type { DistributedUntracOptions, DistributedUntracResult } from './distributed-untrac.js';
export type { JobProgress, JobQueue } from './flow.js';
export type { JobMetricsOptions } from './metrics.js';
export type { UntracJobSettings } from './untrac-job.js';
export { trakFiles } from './trak-files.js';
export type { TrakFilesOptions } from './trak-files.js';
// For the `inrun` command (it loads this package for its tf.js commands): not for applications.
export { quietNodeBanner } from 'inrun/internal';
export { distributedTrak } from './distributed-trak.js';
export type { DistributedTrakOptions, DistributedTrakResult } from './distributed-trak.js';
