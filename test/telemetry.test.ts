import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  MetricReader,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import * as tf from '@tensorflow/tfjs';
import { attach, type ExampleId, type Sink, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Collects on demand, in process. */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

function model() {
  const m = tf.sequential({ layers: [tf.layers.dense({ units: 4, activation: 'relu', inputShape: [3] }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
  m.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return m;
}

const val = () => ({ xs: tf.randomNormal([4, 3], 0, 1, 'float32', 9), ys: tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2) });

async function train(m: tf.LayersModel, run: ReturnType<typeof attach>, ids: (i: number) => ExampleId, steps: number, batch: number) {
  const x = tf.randomNormal([batch, 3], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 2), 'int32'), 2);
  for (let s = 0; s < steps; s++) {
    await run.step(Array.from({ length: batch }, (_, i) => ids(s * batch + i)), () => m.trainOnBatch(x, y));
  }
}

function points(collected: ResourceMetrics, name: string): DataPoint<unknown>[] {
  return collected.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as DataPoint<unknown>[]);
}

describe('OpenTelemetry metrics', () => {
  it("uses the app's SDK registered after attach, and the exported values equal the run's own numbers", async () => {
    const m = model();
    const sources = ['web', 'books', 'forum'];
    const ids = Array.from({ length: 30 }, (_, i) => `ex-${i}`);
    const run = attach(m, {
      targets: { val: val() },
      metrics: { attributes: { job: 'test' } },
      examples: ids.map((id, i) => ({ id, source: sources[i % 3]! })),
      flushEvery: 4,
    });
    // The app registers its SDK after attach: the run still finds it, as it asks when training starts.
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const records: StepRecord[] = [];
    run.records$.subscribe((r) => records.push(r));
    await train(m, run, (i) => ids[i % 30]!, 12, 10);
    await run.flush();
    await reader.forceFlush();
    const collected = exporter.getMetrics().at(-1)!;
    await run.close();

    expect(points(collected, 'inrun.steps').map((p) => p.value)).toEqual([12]);
    expect(points(collected, 'inrun.steps')[0]!.attributes).toEqual({ job: 'test' });
    const examples = Object.fromEntries(points(collected, 'inrun.examples').map((p) => [String(p.attributes['source']), p.value as number]));
    expect(examples).toEqual({ web: 40, books: 40, forum: 40 });

    // Sums of scores per source, recomputed from the records.
    const expected = new Map<string, number>();
    for (const r of records) r.ids.forEach((id, k) => {
      const s = sources[ids.indexOf(id as string) % 3]!;
      expected.set(s, (expected.get(s) ?? 0) + r.columns['shapley1:val']![k]!);
    });
    const byValue = points(collected, 'inrun.source.value').filter((p) => p.attributes['method'] === 'shapley1');
    expect(byValue).toHaveLength(3);
    for (const p of byValue) expect(p.value as number).toBeCloseTo(expected.get(p.attributes['source'] as string)!, 6);

    // Signed scores: magnitudes in two series by sign, which together give back the count and the sum.
    const hist = points(collected, 'inrun.score').filter((p) => p.attributes['method'] === 'shapley1') as DataPoint<Histogram>[];
    const bySign: Record<string, Histogram> = Object.fromEntries(hist.map((p) => [String(p.attributes['sign']), p.value]));
    expect(Object.keys(bySign).sort()).toEqual(['negative', 'positive']);
    expect(bySign['positive']!.count + bySign['negative']!.count).toBe(120);
    const negatives = records.reduce((n, r) => n + r.columns['shapley1:val']!.filter((v) => v < 0).length, 0);
    expect(bySign['negative']!.count).toBe(negatives);
    expect(bySign['positive']!.sum! - bySign['negative']!.sum!).toBeCloseTo([...expected.values()].reduce((a, b) => a + b, 0), 6);
    expect(hist[0]!.attributes).toMatchObject({ job: 'test', method: 'shapley1', target: 'val' });
    const ratios = points(collected, 'inrun.score.negative_ratio') as DataPoint<Histogram>[];
    expect(ratios.every((p) => p.value.count === 12)).toBe(true);
    expect(points(collected, 'inrun.target.loss')[0]!.value).toBeCloseTo(records.at(-1)!.targetLosses['val']!, 6);
    expect((points(collected, 'inrun.attribution.duration')[0] as DataPoint<Histogram>).value.count).toBe(12);
    expect(points(collected, 'inrun.sink.queue')[0]!.value).toBe(0);
  });

  it('a run with 10,000 distinct example ids (and as many sources) makes fewer than 100 series; ids never become attributes', async () => {
    const reader = new TestReader();
    const m = model();
    const n = 10_000;
    const run = attach(m, {
      targets: { val: val() },
      metrics: { meterProvider: new MeterProvider({ readers: [reader] }) },
      examples: Array.from({ length: n }, (_, i) => ({ id: i, source: `source-${i}` })),
      flushEvery: 20,
    });
    await train(m, run, (i) => i, 100, 100);
    await run.flush();
    const { resourceMetrics: collected } = await reader.collect();
    await run.close();
    const series = collected.scopeMetrics.flatMap((s) => s.metrics).flatMap((metric) => metric.dataPoints.map((p) => `${metric.descriptor.name}${JSON.stringify(p.attributes)}`));
    expect(new Set(series).size).toBe(series.length);
    expect(series.length).toBeLessThan(100);
    const sourcesSeen = new Set(points(collected, 'inrun.examples').map((p) => p.attributes['source']));
    expect(sourcesSeen.size).toBe(11); // 10 named + other
    expect(sourcesSeen.has('other')).toBe(true);
    expect(points(collected, 'inrun.examples').reduce((s, p) => s + (p.value as number), 0)).toBe(n);
    expect(series.some((s) => /"(id|example_id|step)"/.test(s))).toBe(false);
  });

  it('the real Prometheus exporter, scraped over loopback while a short training runs, shows the inrun metrics', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const p = (server.address() as { port: number }).port;
        server.close(() => resolve(p));
      });
    });
    const exporter = new PrometheusExporter({ host: '127.0.0.1', port });
    const provider = new MeterProvider({ readers: [exporter] });
    const m = model();
    const ok: Sink = { name: 'ok', open: () => undefined, writeSteps: () => undefined, close: () => undefined };
    const broken: Sink = { name: 'broken', open: () => undefined, writeSteps: () => Promise.reject(new Error('full')), close: () => undefined };
    const run = attach(m, { targets: { val: val() }, metrics: { meterProvider: provider }, flushEvery: 2, sinks: [ok, broken], sinkErrors: 'continue' });
    await train(m, run, (i) => i, 6, 8);
    await run.flush();
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    await run.close();
    await exporter.shutdown();
    expect(body).toMatch(/^inrun_steps_total(\{[^}]*\})? 6$/m);
    expect(body).toMatch(/^inrun_examples_total\{[^}]*source="none"[^}]*\} 48$/m);
    expect(body).toMatch(/^inrun_score_bucket\{[^}]*method="shapley1"[^}]*sign="(positive|negative)"/m);
    expect(body).toMatch(/^inrun_attribution_duration_bucket\{[^}]*le="0.001"/m);
    expect(body).toMatch(/^inrun_target_loss\{[^}]*target="val"/m);
    expect(body).toMatch(/^inrun_sink_records_total\{[^}]*sink="ok"[^}]*\} 6$/m);
    expect(body).toMatch(/^inrun_sink_failures_total\{[^}]*sink="broken"[^}]*\} 1$/m);

    // Every metric the checked-in Grafana dashboard queries exists in the scrape.
    const dashboard = readFileSync('docs/grafana-dashboard.json', 'utf8');
    const queried = new Set(dashboard.match(/inrun_[a-z_]+/g));
    expect(queried.size).toBeGreaterThan(8);
    for (const name of queried) expect(body, name).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
  });
});
