// The flags the job commands share (tracin, trak, untrac): row files, output, queue, run id and timeout, parsed and checked once here.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { checkRunId } from '@inrun/store/internal';
import type * as Jobs from '@inrun/jobs';

/** Parses a number `ok` accepts, else a usage error (exit code 2) saying what `name` takes. */
export const numberParser = (name: string, what: string, ok: (n: number) => boolean) => (v: string) => {
  const n = v.trim() === '' ? Number.NaN : Number(v);
  if (!ok(n)) throw new InvalidArgumentError(`${name} must be ${what}.`);
  return n;
};

/** `--run-id`: checked as run ids are (they name the run's folder). */
function runIdFlag(v: string): string {
  try {
    return checkRunId(v, '--run-id');
  } catch {
    throw new InvalidArgumentError("--run-id must be 1 to 128 characters of A-Z a-z 0-9 . _ - not starting with '.' or '-'.");
  }
}

export const ROWS_HELP = 'JSON lines of {"id", "xs", "ys"}, or a .parquet file with columns id, xs, ys (nested lists)';
const RUN_ID_HELP = "this run's id: parts go under <out>/run=<id>/, which must not exist (default: a fresh id)";

/** Parameters a row-file job's scores cover. */
export type LayersFlag = 'all' | 'last' | 'embedding';

/** The flags {@link addRowJobFlags} adds, as commander hands them to the action. */
export interface RowJobFlags {
  readonly train: string;
  readonly queries: string;
  readonly out: string;
  readonly k: number;
  readonly layers: LayersFlag;
}

/** What differs between the row-file jobs' common flags. */
export interface RowJobHelp {
  /** `--checkpoints <dir>` or `--checkpoints <dir...>`, and its help. */
  readonly checkpoints: readonly [string, string];
  readonly out: string;
}

/** `--checkpoints --train --queries --out --k --layers` (tracin, trak). `positiveInt`: the program's parser of counts. */
export function addRowJobFlags(cmd: Command, help: RowJobHelp, positiveInt: (name: string) => (v: string) => number): Command {
  return cmd
    .requiredOption(help.checkpoints[0], help.checkpoints[1])
    .requiredOption('--train <rows>', `training rows: ${ROWS_HELP}`)
    .requiredOption('--queries <rows>', 'the examples to explain, same forms')
    .requiredOption('--out <dir>', help.out)
    .option('--k <n>', 'proponents and opponents per query', positiveInt('--k'), 10)
    .addOption(new Option('--layers <which>', 'parameters the scores cover').choices(['all', 'last', 'embedding']).default('all'));
}

/** The flags {@link addQueueFlags} adds. */
export interface QueueFlags {
  readonly redis?: string;
  readonly queue: string;
  readonly runId?: string;
  readonly timeout: number;
}

/**
 * `--redis --queue --run-id --timeout` (every job command), and with `shards` (its help) `--shards`.
 * `work` says what runs on the workers ("the shards", "the ascents").
 */
export function addQueueFlags(cmd: Command, work: string, positiveInt: (name: string) => (v: string) => number, shards?: string): Command {
  cmd.option('--redis <url>', `run ${work} on workers through this Redis (redis://host:port); without it, here`);
  if (shards !== undefined) cmd.option('--shards <n>', shards, positiveInt('--shards'), 1);
  return (
    cmd
      .option('--queue <name>', 'the BullMQ queue', 'inrun')
      .option('--run-id <id>', RUN_ID_HELP, runIdFlag)
      // The caller's whole wait on the queue (docs/scale-out.md#when-redis-cannot-be-reached).
      .addOption(
        new Option('--timeout <s>', 'with --redis: the longest wait for the whole run, in seconds; past it the run fails (exit 2). No Redis answering fails within 5 s')
          .argParser(numberParser('--timeout', 'a number of seconds in (0, 2000000]', (n) => Number.isFinite(n) && n > 0 && n <= 2_000_000))
          .default(3600),
      )
  );
}

/** The job options {@link addQueueFlags}' flags give: the queue (with --redis) and the run id, ready to spread. */
export function queueOptions(jobs: typeof Jobs, o: QueueFlags): { readonly queue?: Jobs.JobQueue; readonly runId?: string } {
  return given({ queue: o.redis === undefined ? undefined : { connection: jobs.redisConnection(o.redis), queueName: o.queue, timeoutMs: o.timeout * 1000 }, runId: o.runId });
}

/** The job options {@link addRowJobFlags}' flags give, but `--checkpoints` (each command names that option its own way). */
export function rowJobOptions(o: RowJobFlags): RowJobFlags {
  return { train: o.train, queries: o.queries, out: o.out, k: o.k, layers: o.layers };
}

/** `flags` without the ones left out (undefined): the job applies its own defaults to those. */
export function given<T extends object>(flags: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
