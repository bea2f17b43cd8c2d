// OpenTelemetry metrics of the offline jobs: attempts per job name and outcome, their seconds, retries, jobs running; and a flow's jobs as its caller sees them on the queue.
import { metrics, type Attributes, type Counter, type Histogram, type UpDownCounter } from '@opentelemetry/api';
import { invalid } from '@inrun/store/internal';
import type { MetricsOptions } from 'inrun/internal';
import { VERSION } from '@inrun/store';

/**
 * The `metrics` option of the offline jobs (`startWorker`, `distributedTracin`, `distributedUntrac`):
 * `true` for the global provider, or attach's options without `sourceLimit` (jobs have no sources).
 */
export type JobMetricsOptions = Pick<MetricsOptions, 'meterProvider' | 'attributes'>;

/** Bucket boundaries of `inrun.job.duration`, in seconds: a merge takes a fraction of a second, a shard up to hours. */
export const JOB_SECONDS_BUCKETS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];

interface Instruments {
  readonly jobs: Counter;
  readonly duration: Histogram;
  readonly retries: Counter;
  readonly active: UpDownCounter;
  readonly flowJobs: Counter;
  readonly flowRetries: Counter;
}

/** What the caller of a queued flow saw of one of its jobs in the queue's events. */
export type FlowJobEvent = 'completed' | 'failed' | 'retried';

/**
 * The instruments of the offline jobs (docs/telemetry.md lists them). Uses `@opentelemetry/api` only,
 * asks for the meter when the first job starts (an SDK registered after `startWorker` is still used),
 * and never lets a failing meter fail a job: every measurement is guarded.
 */
export class JobMetrics {
  private instruments: Instruments | null | undefined;
  private readonly base: Attributes;

  constructor(private readonly options: JobMetricsOptions = {}) {
    this.base = options.attributes ?? {};
  }

  /** Runs one attempt of a job and measures it; `attemptsStarted` counts this one (above 1: a retry). The job's own result or error passes through unchanged. */
  async run<T>(name: string, attemptsStarted: number, work: () => Promise<T>): Promise<T> {
    const attributes = { ...this.base, 'job.name': name };
    this.guard((i) => {
      i.active.add(1, attributes);
      if (attemptsStarted > 1) i.retries.add(1, attributes);
    });
    const started = performance.now();
    let outcome = 'failed';
    try {
      const result = await work();
      outcome = 'completed';
      return result;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.guard((i) => {
        i.active.add(-1, attributes);
        const a = { ...attributes, outcome };
        i.jobs.add(1, a);
        i.duration.record(seconds, a);
      });
    }
  }

  /** Counts one of a queued flow's jobs as its caller saw it: finished, failed for good, or retried (after a failed attempt, or taken back from a dead worker). */
  flowJob(name: string, event: FlowJobEvent): void {
    this.guard((i) => {
      if (event === 'retried') i.flowRetries.add(1, { ...this.base, 'job.name': name });
      else i.flowJobs.add(1, { ...this.base, 'job.name': name, outcome: event });
    });
  }

  /** Measures with the instruments, created on first use; a meter that throws is given up on, never passed to the job. */
  private guard(measure: (i: Instruments) => void): void {
    try {
      if (this.instruments === undefined) this.instruments = this.start();
      if (this.instruments !== null) measure(this.instruments);
    } catch {
      // Metrics are a side channel: a broken SDK or exporter must not fail, retry or slow the job.
      this.instruments = null;
    }
  }

  private start(): Instruments {
    const meter = (this.options.meterProvider ?? metrics.getMeterProvider()).getMeter('inrun', VERSION);
    return {
      jobs: meter.createCounter('inrun.jobs', { unit: '{job}', description: 'Job attempts finished in this process, per job name and outcome (completed or failed)' }),
      duration: meter.createHistogram('inrun.job.duration', {
        unit: 's',
        description: 'Wall time of each job attempt, per job name and outcome',
        advice: { explicitBucketBoundaries: [...JOB_SECONDS_BUCKETS] },
      }),
      retries: meter.createCounter('inrun.job.retries', { unit: '{job}', description: 'Job attempts started after an earlier attempt failed or its worker died, per job name' }),
      active: meter.createUpDownCounter('inrun.jobs.active', { unit: '{job}', description: 'Jobs running in this process now, per job name' }),
      flowJobs: meter.createCounter('inrun.flow.jobs', { unit: '{job}', description: "A queued flow's jobs as its caller saw them: completed, or failed after every attempt" }),
      flowRetries: meter.createCounter('inrun.flow.retries', { unit: '{job}', description: "A queued flow's jobs retried, as its caller saw them" }),
    };
  }
}

/** The measurements of a `metrics` option: `undefined` or `false` measure nothing (the jobs run exactly as without the option). */
export function jobMetrics(option: boolean | JobMetricsOptions | undefined): JobMetrics | null {
  if (option === undefined || option === false) return null;
  if (option === true) return new JobMetrics();
  if (option === null || typeof option !== 'object') invalid('metrics', 'true, false or { meterProvider?, attributes? }', option);
  return new JobMetrics(option);
}

/** `work` measured as the one attempt of the job `name` (run in process: no retries) when metrics are on, else just `work`. */
export function measured<T>(metrics: JobMetrics | null, name: string, work: () => Promise<T>): Promise<T> {
  return metrics === null ? work() : metrics.run(name, 1, work);
}
