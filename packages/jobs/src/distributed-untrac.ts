// distributedUntrac(): UnTrac over row files, one ascent per job, in this process or as a BullMQ flow.
import { InrunError } from '@inrun/store';
import { PART_NAME } from './check-job.js';
import { invalid } from '@inrun/store/internal';
import type { UntracRow } from 'inrun/internal';
import { runFlow, type JobProgress, type JobQueue } from './flow.js';
import { jobMetrics, measured, type JobMetricsOptions } from './metrics.js';
import { JOB_NAMES } from './queue.js';
import { claimRunFolder, releaseRunFolder } from './run-folder.js';
import { mergeUntracParts, runUntracJob, runUntracMerge, untracPartPath, type UntracJob, type UntracJobSettings, type UntracMergeJob } from './untrac-job.js';

/** Options of {@link distributedUntrac}. */
export interface DistributedUntracOptions extends UntracJobSettings {
  /** The trained model: an inrun checkpoint folder (or one with a `latest` file), or a tf.js model.json folder saved compiled with its optimizer (as `loadModelFolder` reads it). */
  readonly model: string;
  /**
   * Source name to a row file: JSON lines (`{"id", "xs", "ys"}` per line) or Parquet (name ending in
   * `.parquet`, columns `id`, `xs`, `ys`). Names become folder names: letters, digits, `.`, `_`, `-`.
   */
  readonly sources: Readonly<Record<string, string>>;
  readonly targets: Readonly<Record<string, string>>;
  /** Parts under `run=<runId>/unlearned=<name>/`, then `influence.parquet`. */
  readonly out: string;
  /**
   * This invocation's id, naming its folder `run=<runId>` (1 to 128 of `A-Z a-z 0-9 . _ -`); the
   * folder must not exist yet. @defaultValue a fresh id (time and a random suffix)
   */
  readonly runId?: string;
  /** Run the ascents on a BullMQ queue; without it they run here, one after another. */
  readonly queue?: JobQueue;
  /** Called as ascent jobs finish or fail for good. */
  readonly onProgress?: (progress: JobProgress) => void;
  /** OpenTelemetry metrics, as `distributedTracin`'s (docs/telemetry.md). @defaultValue off */
  readonly metrics?: boolean | JobMetricsOptions;
}

/** What {@link distributedUntrac} returns: `untrac`'s rows, the run's id and the merged file. */
export interface DistributedUntracResult {
  readonly rows: readonly UntracRow[];
  /** The run's id: its parts are under `<out>/run=<runId>/`. */
  readonly runId: string;
  /** `<out>/influence.parquet`. */
  readonly influence: string;
}

/**
 * UnTrac (as `untrac`) with one job per ascent: per source (UnTrac) or per target (UnTrac-Inv). The
 * ascents are independent (each starts from the trained weights, with the same seed), so each job runs
 * `untrac` with the unlearned side reduced to its one name, and the rows equal one `untrac` call's.
 * Returns the rows in `untrac`'s order and the merged file.
 */
export async function distributedUntrac(options: DistributedUntracOptions): Promise<DistributedUntracResult> {
  for (const side of ['sources', 'targets'] as const) {
    const names = Object.keys(options[side] ?? {});
    if (names.length === 0) invalid(side, 'at least one name=rows', options[side]);
    for (const n of names) if (!PART_NAME.test(n) || n === '.' || n === '..') throw new InrunError(`name ${n} must be letters, digits, '.', '_' or '-' (it names a folder)`, { code: 'invalid_option', field: `${side}.${n}` });
  }
  const method = options.method;
  if (method !== 'untrac' && method !== 'untrac-inv') invalid('method', "'untrac' or 'untrac-inv'", method);
  if (options.learningRate !== undefined && !(Number.isFinite(options.learningRate) && options.learningRate > 0)) invalid('learningRate', 'a positive number', options.learningRate);
  const { queue, onProgress, runId: chosen, metrics: metricsOption, ...rest } = options;
  const claim = claimRunFolder(options.out, chosen);
  const runId = claim.id;
  const metrics = jobMetrics(metricsOption);
  const unlearned = Object.keys(method === 'untrac' ? options.sources : options.targets);
  const jobs: UntracJob[] = unlearned.map((unlearn) => ({ ...rest, unlearn, runId }));
  const merge: UntracMergeJob = { parts: unlearned.map((n) => untracPartPath(options.out, runId, n)), targets: Object.keys(options.targets), sources: Object.keys(options.sources), out: options.out };
  try {
    let influence: string;
    if (queue === undefined) {
      for (const [i, job] of jobs.entries()) {
        await measured(metrics, JOB_NAMES.untrac, () => runUntracJob(job));
        onProgress?.({ done: i + 1, failed: 0, total: jobs.length });
      }
      influence = await measured(metrics, JOB_NAMES.untracMerge, () => runUntracMerge(merge));
    } else {
      influence = (await runFlow(queue, { name: JOB_NAMES.untracMerge, data: merge }, jobs.map((data) => ({ name: JOB_NAMES.untrac, data })), onProgress, metrics)) as string;
    }
    return { rows: await mergeUntracParts(merge), runId, influence };
  } catch (error) {
    // As distributedTracin: a refused run (a bad row, no Redis) leaves no empty run=<id>/ behind; parts it wrote stay.
    releaseRunFolder(options.out, claim);
    throw error;
  }
}
