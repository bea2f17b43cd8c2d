// `inrun tracin`, `inrun untrac` and `inrun worker`: offline jobs, with tf.js and BullMQ loaded only when one of them runs.
import { type Command, Option } from 'commander';
import { InrunError } from '../errors.js';
import type { CliIo } from './program.js';
import { prometheusEndpoint } from './metrics-export.js';
import { jobsBar } from './progress.js';

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

interface UntracFlags {
  model: string;
  sources: string[];
  targets: string[];
  out: string;
  method: 'untrac' | 'untrac-inv';
  learningRate: number;
  epochs?: number;
  batchSize?: number;
  seed: number;
  redis?: string;
  queue: string;
}

/** `name=path` pairs as a record (a repeated name or a pair without `=` is a usage error). */
function named(flag: string, pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at < 1 || at === p.length - 1 || p.slice(0, at) in out) throw new InrunError(`${flag} takes name=rows.jsonl pairs with distinct names, got ${p}`, { code: 'invalid_option', field: flag });
    out[p.slice(0, at)] = p.slice(at + 1);
  }
  return out;
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
      const bar = jobsBar();
      const r = await jobs
        .distributedTracin({ checkpoints: o.checkpoints, train: o.train, queries: o.queries, out: o.out, k: o.k, layers: o.layers, shards: o.shards, onProgress: bar.update, ...(queue === undefined ? {} : { queue }) })
        .finally(bar.stop);
      io.out(`Wrote ${r.queries} (${r.result.queries.length} queries) and ${r.selfInfluence} (${r.result.selfInfluence?.ids.length ?? 0} training rows) from ${r.parts.length} shard(s) over ${r.result.checkpoints.length} checkpoint(s).\n`);
    });

  cli
    .command('untrac')
    .description('UnTrac (or UnTrac-Inv) from a checkpoint over JSON-lines rows, one ascent per job: influence.parquet.')
    .requiredOption('--model <dir>', 'the trained model: a checkpoint folder, or one with a latest file')
    .requiredOption('--sources <name=rows...>', 'training sources: name=rows.jsonl, one or more')
    .requiredOption('--targets <name=rows...>', 'targets: name=rows.jsonl, one or more')
    .requiredOption('--out <dir>', 'writes influence.parquet and one part per ascent under unlearned=<name>/')
    .addOption(new Option('--method <method>', 'untrac: one ascent per source; untrac-inv: one per target').choices(['untrac', 'untrac-inv']).default('untrac'))
    .option('--learning-rate <x>', "Adam's step size", (v: string) => Number(v), 5e-5)
    .option('--epochs <n>', 'ascent epochs (default: 1 for untrac, 5 for untrac-inv)', positiveInt('--epochs'))
    .option('--batch-size <n>', 'ascent batch size (default: the rows, at most 256)', positiveInt('--batch-size'))
    .option('--seed <n>', 'shuffle seed', (v: string) => Number(v), 1)
    .option('--redis <url>', 'run the ascents on workers through this Redis (redis://host:port); without it, here')
    .option('--queue <name>', 'the BullMQ queue', 'inrun')
    .action(async (o: UntracFlags) => {
      const jobs = await loadJobs();
      const queue = o.redis === undefined ? undefined : { connection: jobs.redisConnection(o.redis), queueName: o.queue };
      const bar = jobsBar();
      const r = await jobs
        .distributedUntrac({
          model: o.model,
          sources: named('--sources', o.sources),
          targets: named('--targets', o.targets),
          out: o.out,
          method: o.method,
          learningRate: o.learningRate,
          seed: o.seed,
          onProgress: bar.update,
          ...(o.epochs === undefined ? {} : { epochs: o.epochs }),
          ...(o.batchSize === undefined ? {} : { batchSize: o.batchSize }),
          ...(queue === undefined ? {} : { queue }),
        })
        .finally(bar.stop);
      io.out(`Wrote ${r.influence} (${r.rows.length} target x source rows).\n`);
    });

  cli
    .command('worker')
    .description('Run inrun jobs from a BullMQ queue on Redis until interrupted (SIGINT or SIGTERM).')
    .requiredOption('--redis <url>', 'redis://host:port')
    .option('--concurrency <n>', 'jobs at once in this process', positiveInt('--concurrency'), 1)
    .option('--queue <name>', 'the BullMQ queue', 'inrun')
    .option('--lock-ms <n>', "a job's lock lifetime, and how often to look for dead workers' jobs: if this worker dies, another takes its job back after about this long", positiveInt('--lock-ms'), 30_000)
    .option('--metrics-port <n>', 'serve OpenTelemetry job metrics for Prometheus at http://<host>:<n>/metrics (needs @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus)', positiveInt('--metrics-port'))
    .option('--metrics-host <host>', 'the address the metrics endpoint listens on (0.0.0.0 for a scraper on another machine)', '127.0.0.1')
    .action(async (o: { redis: string; concurrency: number; queue: string; lockMs: number; metricsPort?: number; metricsHost: string }) => {
      const jobs = await loadJobs();
      const endpoint = o.metricsPort === undefined ? undefined : await prometheusEndpoint(o.metricsPort, o.metricsHost);
      const worker = jobs.startWorker({ connection: jobs.redisConnection(o.redis), concurrency: o.concurrency, queueName: o.queue, lockDuration: o.lockMs, ...(endpoint === undefined ? {} : { metrics: { meterProvider: endpoint.meterProvider } }) });
      worker.on('failed', (job, error) => io.err(`job ${job?.name ?? ''} ${job?.id ?? ''} failed: ${error.message}\n`));
      await worker.waitUntilReady();
      io.out(`inrun worker on ${o.redis}, queue ${o.queue}, concurrency ${o.concurrency}${endpoint === undefined ? '' : `, metrics at ${endpoint.url}`}.\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await worker.close();
      await endpoint?.close();
    });
}
