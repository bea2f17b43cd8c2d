// The offline jobs (TracIn shards and merges) and their queue: what the CLI loads with a dynamic import.
export { distributedTracin, shardRanges } from './distributed-tracin.js';
export type { DistributedTracInOptions, DistributedTracInResult, TracinQueue } from './distributed-tracin.js';
export { DEFAULT_QUEUE, redisConnection, startWorker } from './queue.js';
export type { WorkerOptions } from './queue.js';
