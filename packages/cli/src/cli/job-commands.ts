// `inrun tracin`, `inrun trak`, `inrun untrac` and `inrun worker`: offline jobs, with tf.js and BullMQ loaded only when one of them runs.
import { type Command, Option } from 'commander';
import { InrunError } from '@inrun/store';
import type * as Jobs from '@inrun/jobs';
import type { CliIo } from './io.js';
import { addQueueFlags, addRowJobFlags, given, numberParser, queueOptions, rowJobOptions, ROWS_HELP, type QueueFlags, type RowJobFlags } from './job-flags.js';
import { prometheusEndpoint } from './metrics-export.js';
import { jobsBar } from './progress.js';

/**
 * The jobs package, loaded on demand: `inrun report`/`query` never load tf.js, and an install without
 * `@inrun/jobs` (an optional peer) keeps every other command (docs/architecture.md#packages).
 */
async function loadJobs(): Promise<typeof Jobs> {
  try {
    const jobs = await import('@inrun/jobs');
    // The command's own process: tf.js' node-backend banner is noise here (the library itself leaves it).
    jobs.quietNodeBanner();
    return jobs;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes("'@inrun/jobs'")) {
      throw new InrunError('this command runs in @inrun/jobs, which is not installed: npm install @inrun/jobs @tensorflow/tfjs', { field: 'command', code: 'invalid_input' });
    }
    throw error;
  }
}

/** Runs a job command's work with the jobs package loaded and a progress bar on stderr (stopped however it ends). */
async function withJobs<T>(work: (jobs: typeof Jobs, onProgress: (p: Jobs.JobProgress) => void) => Promise<T>): Promise<T> {
  const jobs = await loadJobs();
  const bar = jobsBar();
  try {
    return await work(jobs, bar.update);
  } finally {
    bar.stop();
  }
}

interface TracinFlags extends RowJobFlags, QueueFlags {
  checkpoints: string;
  shards: number;
  perCheckpoint: boolean;
}

interface TrakFlags extends RowJobFlags, QueueFlags {
  checkpoints: string[];
  shards: number;
  dim?: number;
  lambda?: number;
  seed: number;
  output: 'margin' | 'loss';
  sqlite?: string;
}

interface UntracFlags extends QueueFlags {
  model: string;
  sources: string[];
  targets: string[];
  out: string;
  method: 'untrac' | 'untrac-inv';
  learningRate: number;
  epochs?: number;
  batchSize?: number;
  maxSteps?: number;
  evalRows?: number;
  evalBatchSize?: number;
  lossCeiling?: number;
  seed: number;
}

/** `name=path` pairs as a record (a repeated name or a pair without `=` is a usage error). */
function named(flag: string, pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at < 1 || at === p.length - 1 || p.slice(0, at) in out) throw new InrunError(`${flag} takes name=rows pairs with distinct names, got ${p}`, { code: 'invalid_option', field: flag });
    out[p.slice(0, at)] = p.slice(at + 1);
  }
  return out;
}

/** Adds the job commands to the program (`positiveInt`: the program's parser of counts). */
export function addJobCommands(cli: Command, io: CliIo, positiveInt: (name: string) => (v: string) => number): void {
  const tracin = cli
    .command('tracin')
    .description('TracIn from checkpoints over row files (JSON lines or Parquet): top-k proponents and opponents per query, and self-influence, as Parquet.');
  addRowJobFlags(tracin, { checkpoints: ['--checkpoints <dir>', 'a checkpoint folder or a folder of step-* checkpoints'], out: 'writes queries.parquet, self_influence.parquet and the shards under run=<id>/ckpt=all/' }, positiveInt);
  addQueueFlags(tracin, 'the shards', positiveInt, 'training-row shards, one job each')
    .option('--per-checkpoint', 'one job per (checkpoint, shard): each loads one checkpoint; parts keep every score (rows x queries) for the merge to sum', false)
    .action(async (o: TracinFlags) => {
      const r = await withJobs((jobs, onProgress) =>
        jobs.distributedTracin({
          ...rowJobOptions(o),
          checkpoints: o.checkpoints,
          shards: o.shards, perCheckpoint: o.perCheckpoint, keepSelfInfluence: false,
          onProgress,
          ...queueOptions(jobs, o),
        }),
      );
      const bySource = r.bySource === null ? '' : ` and ${r.bySource} (${r.result.sources?.length ?? 0} sources)`;
      io.out(`Run ${r.runId}: wrote ${r.queries} (${r.result.queries.length} queries), ${r.selfInfluence} (${r.trainingRows} training rows)${bySource} from ${r.parts.length} part(s) over ${r.result.checkpoints.length} checkpoint(s).\n`);
    });

  const trak = cli
    .command('trak')
    .description("TRAK from checkpoints over row files (JSON lines or Parquet), here or sharded on workers: top-k proponents and opponents per query as queries.parquet (inrun tracin's columns), and each training row's summed score as run <id> of the Parquet store <out> (inrun report <out>).");
  addRowJobFlags(trak, { checkpoints: ['--checkpoints <dir...>', 'one run per folder: a checkpoint folder or a folder of step-* checkpoints; several folders ensemble several runs'], out: 'writes queries.parquet, the scores as a Parquet store (run <id>/, column trak:queries) and the shards under run=<id>/ckpt=all/' }, positiveInt)
    .option('--dim <n>', 'projection width per side of each layer (default: 32)', positiveInt('--dim'))
    .option('--lambda <x>', 'ridge term of the kernel (default: trak()\'s, a multiple of the mean diagonal of Phi^T Phi per checkpoint)', numberParser('--lambda', 'a number >= 0', (n) => Number.isFinite(n) && n >= 0))
    .option('--seed <n>', 'projection seed', numberParser('--seed', 'an integer >= 0', (n) => Number.isSafeInteger(n) && n >= 0), 0)
    .addOption(new Option('--output <f>', 'margin: log p_y - log(1 - p_y) (cross-entropy); loss: minus the loss').choices(['margin', 'loss']).default('margin'))
    .option('--sqlite <file>', 'also store the scores in this SQLite file (new, or one a run wrote)');
  addQueueFlags(trak, 'the shards', positiveInt, "training-row shards, one job each: each sums its rows' Phi^T Phi, the merge solves")
    .action(async (o: TrakFlags) => {
      const r = await withJobs((jobs, onProgress) =>
        jobs.distributedTrak({
          ...rowJobOptions(o),
          runs: o.checkpoints,
          seed: o.seed,
          output: o.output,
          shards: o.shards,
          onProgress,
          ...given({ dim: o.dim, lambda: o.lambda, sqlite: o.sqlite }),
          ...queueOptions(jobs, o),
        }),
      );
      const checkpoints = r.result.runs.reduce((s, run) => s + run.length, 0);
      io.out(`Run ${r.runId}: wrote ${r.queries} (${r.result.queries.length} queries, ${r.trainingRows} training rows) from ${r.result.runs.length} run(s), ${checkpoints} checkpoint(s), ${r.parts.length} part(s); scores stored as run ${r.runId} of ${o.out}${o.sqlite === undefined ? '' : ` and ${o.sqlite}`} (inrun report ${o.out}).\n`);
    });

  const untrac = cli
    .command('untrac')
    .description('UnTrac (or UnTrac-Inv) from a checkpoint over row files (JSON lines or Parquet), one ascent per job: influence.parquet.')
    .requiredOption('--model <dir>', 'the trained model: an inrun checkpoint folder (or one with a latest file), or a tf.js model.json folder saved with its optimizer')
    .requiredOption('--sources <name=rows...>', `training sources: name=rows, one or more (rows: ${ROWS_HELP})`)
    .requiredOption('--targets <name=rows...>', 'targets: name=rows, one or more')
    .requiredOption('--out <dir>', 'writes influence.parquet and one part per ascent under run=<id>/unlearned=<name>/')
    .addOption(new Option('--method <method>', 'untrac: one ascent per source; untrac-inv: one per target').choices(['untrac', 'untrac-inv']).default('untrac'))
    .option('--learning-rate <x>', "Adam's step size", numberParser('--learning-rate', 'a positive number', (n) => Number.isFinite(n) && n > 0), 5e-5)
    .option('--epochs <n>', 'ascent epochs (default: 1 for untrac, 5 for untrac-inv)', positiveInt('--epochs'))
    .option('--batch-size <n>', 'ascent batch size (default: 1 for untrac; for untrac-inv the target rows, at most 256)', positiveInt('--batch-size'))
    .option('--max-steps <n>', 'cap on the steps of one ascent (default: no cap)', positiveInt('--max-steps'))
    .option('--eval-rows <n>', "untrac-inv: rows of each source whose loss is measured, its first ones (default: 256)", positiveInt('--eval-rows'))
    .option('--eval-batch-size <n>', 'rows per forward pass when measuring a mean loss (default: 256)', positiveInt('--eval-batch-size'))
    .option('--loss-ceiling <x>', "stop an ascent when its batch loss exceeds this (default: 10 x (1 + the unlearned data's mean loss before))", numberParser('--loss-ceiling', 'a positive number', (n) => Number.isFinite(n) && n > 0))
    .option('--seed <n>', 'shuffle seed', numberParser('--seed', 'an integer', Number.isSafeInteger), 1);
  addQueueFlags(untrac, 'the ascents', positiveInt)
    .action(async (o: UntracFlags) => {
      const r = await withJobs((jobs, onProgress) =>
        jobs.distributedUntrac({
          model: o.model,
          sources: named('--sources', o.sources),
          targets: named('--targets', o.targets),
          out: o.out,
          method: o.method,
          learningRate: o.learningRate,
          seed: o.seed,
          onProgress,
          ...given({ epochs: o.epochs, batchSize: o.batchSize, maxSteps: o.maxSteps, evalRows: o.evalRows, evalBatchSize: o.evalBatchSize, lossCeiling: o.lossCeiling }),
          ...queueOptions(jobs, o),
        }),
      );
      io.out(`Run ${r.runId}: wrote ${r.influence} (${r.rows.length} target x source rows).\n`);
    });

  cli
    .command('worker')
    .description('Run inrun jobs from a BullMQ queue on Redis until SIGINT or SIGTERM. Says on stderr within seconds when Redis cannot be reached, and keeps retrying. On a signal it stops within 15 s: a running job gets 10 s to finish, then is given back (another worker takes it once its lock expires).')
    .requiredOption('--redis <url>', 'redis://host:port')
    .option('--concurrency <n>', 'jobs at once in this process', positiveInt('--concurrency'), 1)
    .option('--queue <name>', 'the BullMQ queue', 'inrun')
    .option('--lock-ms <n>', "a job's lock lifetime, and how often to look for dead workers' jobs: if this worker dies, another takes its job back after about this long", positiveInt('--lock-ms'), 30_000)
    .option('--metrics-port <n>', 'serve OpenTelemetry job metrics for Prometheus at http://<host>:<n>/metrics (needs @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus)', positiveInt('--metrics-port'))
    .option('--metrics-host <host>', 'the address the metrics endpoint listens on (0.0.0.0 for a scraper on another machine)', '127.0.0.1')
    .action(async (o: { redis: string; concurrency: number; queue: string; lockMs: number; metricsPort?: number; metricsHost: string }) => {
      const jobs = await loadJobs();
      const endpoint = o.metricsPort === undefined ? undefined : await prometheusEndpoint(o.metricsPort, o.metricsHost);
      // Says within seconds when Redis is out of reach and keeps retrying; stops within 15 s of a signal (docs/scale-out.md#stopping-a-worker).
      const stop = await jobs.serveWorker({ connection: jobs.redisConnection(o.redis), concurrency: o.concurrency, queueName: o.queue, lockDuration: o.lockMs, log: io.err, onReady: () => io.out(`inrun worker on ${o.redis}, queue ${o.queue}, concurrency ${o.concurrency}${endpoint === undefined ? '' : `, metrics at ${endpoint.url}`}.\n`), ...(endpoint === undefined ? {} : { metrics: { meterProvider: endpoint.meterProvider } }) });
      await endpoint?.close();
      // A job given back still computes here, and a Redis that is gone still holds sockets: only the end of the process stops them.
      if (!stop.clean) process.exit(0);
    });
}
