// `inrun tracin` and `inrun worker`: offline jobs, with tf.js and BullMQ loaded only when one of them runs.
import { type Command, Option } from 'commander';
import type { CliIo } from './program.js';

/** The jobs module, loaded on demand: `inrun report`/`query` never load tf.js (docs/architecture.md). */
const loadJobs = () => import('../jobs/index.js');

interface TracinFlags {
  checkpoints: string;
  train: string;
  queries: string;
  k: number;
  layers: 'all' | 'last' | 'embedding';
  out: string;
  redis?: string;
  shards: number;
  queue: string;
}

/** Adds the job commands to the program (`positiveInt`: the program's parser of counts). */
export function addJobCommands(cli: Command, io: CliIo, positiveInt: (name: string) => (v: string) => number): void {
  cli
    .command('tracin')
    .description('TracIn from checkpoints over JSON-lines rows: top-k proponents and opponents per query, and self-influence, as Parquet.')
    .requiredOption('--checkpoints <dir>', 'a checkpoint folder or a folder of step-* checkpoints')
    .requiredOption('--train <rows>', 'training rows: JSON lines of {"id", "xs", "ys"}')
    .requiredOption('--queries <rows>', 'the examples to explain, same form')
    .requiredOption('--out <dir>', 'writes queries.parquet, self_influence.parquet and the shards under ckpt=all/')
    .option('--k <n>', 'proponents and opponents per query', positiveInt('--k'), 10)
    .addOption(new Option('--layers <which>', 'parameters the scores cover').choices(['all', 'last', 'embedding']).default('all'))
    .option('--redis <url>', 'run the shards on workers through this Redis (redis://host:port); without it, here')
    .option('--shards <n>', 'training-row shards, one job each', positiveInt('--shards'), 1)
    .option('--queue <name>', 'the BullMQ queue', 'inrun')
    .action(async (o: TracinFlags) => {
      const jobs = await loadJobs();
      const queue = o.redis === undefined ? undefined : { connection: jobs.redisConnection(o.redis), queueName: o.queue };
      const r = await jobs.distributedTracin({ checkpoints: o.checkpoints, train: o.train, queries: o.queries, out: o.out, k: o.k, layers: o.layers, shards: o.shards, ...(queue === undefined ? {} : { queue }) });
      io.out(`Wrote ${r.queries} (${r.result.queries.length} queries) and ${r.selfInfluence} (${r.result.selfInfluence?.ids.length ?? 0} training rows) from ${r.parts.length} shard(s) over ${r.result.checkpoints.length} checkpoint(s).\n`);
    });

  cli
    .command('worker')
    .description('Run inrun jobs from a BullMQ queue on Redis until interrupted (SIGINT or SIGTERM).')
    .requiredOption('--redis <url>', 'redis://host:port')
    .option('--concurrency <n>', 'jobs at once in this process', positiveInt('--concurrency'), 1)
    .option('--queue <name>', 'the BullMQ queue', 'inrun')
    .option('--lock-ms <n>', "a job's lock lifetime, and how often to look for dead workers' jobs: if this worker dies, another takes its job back after about this long", positiveInt('--lock-ms'), 30_000)
    .action(async (o: { redis: string; concurrency: number; queue: string; lockMs: number }) => {
      const jobs = await loadJobs();
      const worker = jobs.startWorker({ connection: jobs.redisConnection(o.redis), concurrency: o.concurrency, queueName: o.queue, lockDuration: o.lockMs });
      worker.on('failed', (job, error) => io.err(`job ${job?.name ?? ''} ${job?.id ?? ''} failed: ${error.message}\n`));
      await worker.waitUntilReady();
      io.out(`inrun worker on ${o.redis}, queue ${o.queue}, concurrency ${o.concurrency}.\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await worker.close();
    });
}
