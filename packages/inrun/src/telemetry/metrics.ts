// OpenTelemetry metrics of a run, fed from step records.
import {
  metrics,
  type Attributes,
  type BatchObservableCallback,
  type Counter,
  type Gauge,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Observable,
} from '@opentelemetry/api';
import type { Observable as RxObservable, Subscription } from 'rxjs';
import type { DeliveryStats } from '../stream/delivery.js';
import type { ColumnInfo, ExampleId, RunInfo, StepRecord } from '../types.js';
import { VERSION } from '../version.js';

/** Options of the `metrics` option of `attach`. */
export interface MetricsOptions {
  /** Where instruments come from. @defaultValue the global provider, asked when training starts */
  readonly meterProvider?: MeterProvider;
  /**
   * Distinct example sources reported as the `source` attribute (first come, first named); later ones
   * are reported as `other`, examples without a source as `none`. Bounds the number of series.
   * @defaultValue 10
   */
  readonly sourceLimit?: number;
  /** Attributes added to every measurement, e.g. `{ job: 'spam-filter' }`. Keep them to a bounded set. */
  readonly attributes?: Attributes;
}

/** {@link MetricsOptions} resolved. */
export interface ResolvedMetricsOptions {
  /** `null`: the global provider, asked for when training starts (an SDK registered after attach is used). */
  readonly meterProvider: MeterProvider | null;
  readonly sourceLimit: number;
  readonly attributes: Attributes;
}

/** What the metrics read from a run: records and counters, never tensors. */
export interface MetricsInput {
  readonly records$: RxObservable<StepRecord>;
  readonly info: RunInfo;
  sourceOf(id: ExampleId): string | undefined;
  delivery(): DeliveryStats;
}

/**
 * Log-spaced bucket boundaries of `inrun.score`, over the score's magnitude: scores are target-loss
 * changes of either sign, many orders apart. OpenTelemetry histograms take non-negative values only
 * (the JS SDK drops the others), so the sign is the bounded attribute `sign` (`positive` or
 * `negative`) and together the two series are the signed distribution.
 */
export const SCORE_BUCKETS: readonly number[] = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
const RATIO_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];
const SECONDS_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

interface Instruments {
  readonly meter: Meter;
  readonly steps: Counter;
  readonly nonFinite: Counter;
  readonly examples: Counter;
  readonly score: Histogram;
  readonly negative: Histogram;
  readonly targetLoss: Gauge;
  readonly duration: Histogram;
  readonly share: Histogram;
  readonly observables: Observable[];
  readonly callback: BatchObservableCallback;
}

/**
 * OpenTelemetry instruments fed from a run's records (docs/telemetry.md lists them). Uses
 * `@opentelemetry/api` only: the app owns the SDK, exporters and views; inrun never registers a
 * provider. The meter is asked for when the first record arrives (training has started), so an SDK
 * registered after `attach` is still used; with no SDK every instrument is a no-op.
 */
export class RunMetrics {
  private readonly subscription: Subscription;
  private instruments: Instruments | null = null;
  /** Milliseconds spent turning records into measurements. */
  busyMs = 0;
  private readonly sourceNames = new Map<string, string>();
  /** Running value per column name, per source attribute. */
  private readonly sourceTotals = new Map<string, Map<string, number>>();
  private readonly columnAttributes: ReadonlyMap<string, Attributes>;
  /** Per column: attributes of positive and of negative scores. */
  private readonly signed: ReadonlyMap<string, readonly [Attributes, Attributes]>;

  constructor(
    private readonly input: MetricsInput,
    private readonly options: ResolvedMetricsOptions,
  ) {
    const base = options.attributes;
    this.columnAttributes = new Map(input.info.columns.map((c: ColumnInfo) => [c.name, { ...base, method: c.method, ...(c.target === null ? {} : { target: c.target }) }]));
    this.signed = new Map([...this.columnAttributes].map(([c, a]) => [c, [{ ...a, sign: 'positive' }, { ...a, sign: 'negative' }] as const]));
    this.subscription = input.records$.subscribe((record) => this.record(record));
  }

  /** Stops reading records and removes the observable instruments' callback. */
  stop(): void {
    this.subscription.unsubscribe();
    const i = this.instruments;
    if (i !== null) i.meter.removeBatchObservableCallback(i.callback, i.observables);
  }

  /** The `source` attribute of an example: its source, `other` past the limit, `none` without one. */
  private source(id: ExampleId): string {
    const raw = this.input.sourceOf(id);
    if (raw === undefined) return 'none';
    let name = this.sourceNames.get(raw);
    if (name === undefined) {
      name = this.sourceNames.size < this.options.sourceLimit ? raw : 'other';
      this.sourceNames.set(raw, name);
    }
    return name;
  }

  private start(): Instruments {
    // The global provider is asked for only now, so an SDK registered after attach is still used.
    const meter = (this.options.meterProvider ?? metrics.getMeterProvider()).getMeter('inrun', VERSION);
    const base = this.options.attributes;
    const queue = meter.createObservableGauge('inrun.sink.queue', { unit: '{record}', description: 'Step records waiting for the sinks' });
    const written = meter.createObservableCounter('inrun.sink.records', { unit: '{record}', description: 'Step records written, per sink' });
    const dropped = meter.createObservableCounter('inrun.sink.dropped', { unit: '{record}', description: "Step records dropped by the 'drop' policy" });
    const failures = meter.createObservableCounter('inrun.sink.failures', { unit: '{failure}', description: 'Sinks that failed' });
    const sourceValue = meter.createObservableGauge('inrun.source.value', {
      unit: '1',
      description: 'Running value of the examples of each source (sum of scores), per method and target',
    });
    const callback: BatchObservableCallback = (result) => {
      const stats = this.input.delivery();
      result.observe(queue, stats.queued, base);
      result.observe(dropped, stats.dropped, base);
      for (const [sink, n] of Object.entries(stats.written)) result.observe(written, n, { ...base, sink });
      const failed = new Map<string, number>();
      for (const f of stats.failures) failed.set(f.sink, (failed.get(f.sink) ?? 0) + 1);
      for (const [sink, n] of failed) result.observe(failures, n, { ...base, sink });
      for (const [column, bySource] of this.sourceTotals) {
        for (const [source, value] of bySource) result.observe(sourceValue, value, { ...this.columnAttributes.get(column), source });
      }
    };
    const observables = [queue, written, dropped, failures, sourceValue];
    meter.addBatchObservableCallback(callback, observables);
    return {
      meter,
      steps: meter.createCounter('inrun.steps', { unit: '{step}', description: 'Optimizer steps attributed' }),
      nonFinite: meter.createCounter('inrun.steps.non_finite', { unit: '{step}', description: 'Steps whose loss, target losses or scores were NaN or Infinity' }),
      examples: meter.createCounter('inrun.examples', { unit: '{example}', description: 'Examples attributed (once per step they took part in), per source' }),
      score: meter.createHistogram('inrun.score', {
        unit: '1',
        description: "Magnitude of each example's score at each step, per method, target and sign (positive = helps)",
        advice: { explicitBucketBoundaries: [...SCORE_BUCKETS] },
      }),
      negative: meter.createHistogram('inrun.score.negative_ratio', {
        unit: '1',
        description: 'Share of negative (harmful) scores in each step, per method and target',
        advice: { explicitBucketBoundaries: RATIO_BUCKETS },
      }),
      targetLoss: meter.createGauge('inrun.target.loss', { unit: '1', description: "Summed target loss at the last step's weights, per target" }),
      duration: meter.createHistogram('inrun.attribution.duration', {
        unit: 's',
        description: 'Wall time attribution added to each step',
        advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
      }),
      share: meter.createHistogram('inrun.attribution.share', {
        unit: '1',
        description: 'Share of step time spent on attribution',
        advice: { explicitBucketBoundaries: RATIO_BUCKETS },
      }),
      observables,
      callback,
    };
  }

  /** Counts steps found non-finite (`inrun.steps.non_finite`). */
  nonFinite(steps: number): void {
    const i = (this.instruments ??= this.start());
    i.nonFinite.add(steps, this.options.attributes);
  }

  private record(r: StepRecord): void {
    const started = performance.now();
    try {
      this.measure(r);
    } finally {
      this.busyMs += performance.now() - started;
    }
  }

  private measure(r: StepRecord): void {
    const i = (this.instruments ??= this.start());
    const base = this.options.attributes;
    i.steps.add(1, base);
    const sources = r.ids.map((id) => this.source(id));
    const perSource = new Map<string, number>();
    for (const s of sources) perSource.set(s, (perSource.get(s) ?? 0) + 1);
    for (const [source, n] of perSource) i.examples.add(n, { ...base, source });
    for (const [column, values] of Object.entries(r.columns)) {
      const attributes = this.columnAttributes.get(column)!;
      const [positive, negativeSign] = this.signed.get(column)!;
      let totals = this.sourceTotals.get(column);
      if (totals === undefined) this.sourceTotals.set(column, (totals = new Map<string, number>()));
      let negative = 0;
      values.forEach((v, k) => {
        if (v < 0) {
          negative++;
          i.score.record(-v, negativeSign);
        } else {
          i.score.record(v, positive);
        }
        const s = sources[k]!;
        totals.set(s, (totals.get(s) ?? 0) + v);
      });
      if (values.length > 0) i.negative.record(negative / values.length, attributes);
    }
    for (const [target, loss] of Object.entries(r.targetLosses)) i.targetLoss.record(loss, { ...base, target });
    i.duration.record(r.attributionMs / 1000, base);
    if (r.stepMs > 0) i.share.record(Math.min(1, r.attributionMs / r.stepMs), base);
  }
}
