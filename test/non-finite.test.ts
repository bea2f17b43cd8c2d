import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemoryMetricExporter, AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type DataPoint } from '@opentelemetry/sdk-metrics';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, InrunError, sqliteSink, type AttachOptions, type RunInfo, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-nonfinite-'));

function regression(lr = 0.01) {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [3] })] });
  model.compile({ optimizer: tf.train.sgd(lr), loss: 'meanSquaredError' });
  return model;
}

const val = () => ({ xs: tf.randomNormal([4, 3], 0, 1, 'float32', 9), ys: tf.randomNormal([4, 1], 0, 1, 'float32', 8) });

/** `steps` custom steps of 4 rows; the rows of step `bad` hold a NaN when given. */
async function train(run: ReturnType<typeof attach>, model: tf.LayersModel, steps: number, bad?: number) {
  for (let s = 0; s < steps; s++) {
    const x = tf.tidy(() => {
      const r = tf.randomNormal([4, 3], 0, 1, 'float32', s);
      return s === bad ? tf.concat([tf.fill([1, 3], NaN), tf.slice(r, 1, 3)]) : r;
    });
    const y = tf.randomNormal([4, 1], 0, 1, 'float32', 100 + s);
    try {
      await run.step([s * 4, s * 4 + 1, s * 4 + 2, s * 4 + 3], () => model.trainOnBatch(x, y));
    } finally {
      tf.dispose([x, y]);
    }
  }
}

/** Process warnings until `stop` (they are emitted on the next tick). */
function warnings(): { list: string[]; stop: () => Promise<void> } {
  const list: string[] = [];
  const on = (w: Error) => list.push(w.message);
  process.on('warning', on);
  return { list, stop: async () => { await new Promise((r) => setImmediate(r)); process.off('warning', on); } };
}

describe('non-finite values', () => {
  it('a target holding NaN or Infinity fails at attach, naming targets.<name>.xs / .ys', () => {
    const model = regression();
    const bad = tf.tensor2d([[1, NaN, 0], [0, 1, 2]]);
    const err = (() => {
      try {
        attach(model, { targets: { val: { xs: bad, ys: tf.zeros([2, 1]) } } });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InrunError);
    expect((err as InrunError).field).toBe('targets.val.xs');
    expect(() => attach(regression(), { targets: { val: { xs: tf.zeros([2, 3]), ys: tf.tensor2d([[1], [Infinity]]) } } })).toThrow(
      expect.objectContaining({ field: 'targets.val.ys' }),
    );
  });

  it("default 'stop': a diverging regression stops with an error naming the step, after every finite step reached SQLite", async () => {
    const path = join(tmp(), 'runs.db');
    const model = regression(1e6);
    const run = attach(model, { targets: { val: val() }, sinks: [sqliteSink(path)], runId: 'diverge', flushEvery: 4 });
    const w = warnings();
    const x = tf.randomNormal([64, 3], 0, 10, 'float32', 3);
    const y = tf.randomNormal([64, 1], 0, 10, 'float32', 4);
    const records: StepRecord[] = [];
    run.records$.subscribe((r) => records.push(r));
    const error = await run.fit(x, y, { epochs: 20, batchSize: 8 }).then(() => null, (e: unknown) => e);
    await w.stop();
    expect(error).toBeInstanceOf(InrunError);
    const stats = run.stats();
    expect(stats.nonFiniteSteps).toBeGreaterThanOrEqual(1);
    const first = stats.firstNonFiniteStep!;
    expect((error as Error).message).toContain(`step ${first}`);
    expect(w.list.some((m) => m.includes(`step ${first}`))).toBe(true);
    // Every record handed on is finite, and every step before the first bad one was handed on.
    expect(records.map((r) => r.step)).toEqual(Array.from({ length: first }, (_, i) => i));
    for (const r of records) expect(Number.isFinite(r.loss)).toBe(true);
    const scores = await run.close();
    for (const col of Object.values(scores.columns)) for (const v of col) expect(Number.isFinite(v)).toBe(true);
    const db = new Database(path, { readonly: true });
    const stored = db.prepare("SELECT COUNT(*) AS n FROM steps WHERE run_id = 'diverge'").get() as { n: number };
    db.close();
    expect(stored.n).toBe(first);
    tf.dispose([x, y]);
  });

  it("'skip-step': the bad step is left out of totals and sinks, training goes on; totals equal the sum of the delivered records", async () => {
    const model = regression();
    const run = attach(model, { targets: { val: val() }, nonFinite: 'skip-step', flushEvery: 3 });
    const records: StepRecord[] = [];
    run.records$.subscribe((r) => records.push(r));
    const w = warnings();
    await train(run, model, 6, 5);
    const scores = await run.close();
    await w.stop();
    expect(run.stats().nonFiniteSteps).toBe(1);
    expect(run.stats().firstNonFiniteStep).toBe(5);
    expect(w.list.some((m) => m.includes('step 5'))).toBe(true);
    expect(records.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    const column = 'shapley1:val';
    const expected = new Map<number, number>();
    for (const r of records) r.ids.forEach((id, k) => expected.set(id as number, (expected.get(id as number) ?? 0) + r.columns[column]![k]!));
    scores.ids.forEach((id, i) => {
      expect(scores.columns[column]![i]).toBeCloseTo(expected.get(id as number) ?? 0, 6);
      expect(scores.steps[i]).toBe(expected.has(id as number) ? 1 : 0);
    });
  });

  it("'record': the bad step's record goes to the sinks as it is; SQLite keeps every finite row of the same transaction", async () => {
    const path = join(tmp(), 'runs.db');
    const model = regression();
    const run = attach(model, { targets: { val: val() }, nonFinite: 'record', sinks: [sqliteSink(path)], runId: 'rec', flushEvery: 16 });
    await train(run, model, 6, 5);
    const scores = await run.close();
    expect(run.stats().nonFiniteSteps).toBe(1);
    for (const col of Object.values(scores.columns)) for (const v of col) expect(Number.isFinite(v)).toBe(true);
    const db = new Database(path, { readonly: true });
    const steps = db.prepare("SELECT step, loss FROM steps WHERE run_id = 'rec' ORDER BY step").all() as { step: number; loss: number | null }[];
    const finiteRows = db.prepare("SELECT COUNT(*) AS n FROM step_scores WHERE run_id = 'rec' AND step < 5").get() as { n: number };
    db.close();
    expect(steps.map((s) => s.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(steps[5]!.loss).toBeNull();
    expect(finiteRows.n).toBe(5 * 4 * run.info.columns.length);
  });

  it('the SQLite sink stores one NaN value as a refused row, never losing the finite rows written with it', async () => {
    const path = join(tmp(), 'runs.db');
    const sink = sqliteSink(path);
    const info = { runId: 'r', startedAt: new Date().toISOString(), model: { name: 'm' }, optimizer: { className: 'SGD' }, columns: [{ name: 'c', method: 'tracin_self', target: null }] } as unknown as RunInfo;
    await sink.open(info);
    const record = (step: number, values: number[]): StepRecord => ({
      runId: 'r', step, epoch: null, learningRate: 0.1, batchSize: values.length, loss: values.some(Number.isNaN) ? NaN : 1, targetLosses: {},
      ids: values.map((_, i) => i), columns: { c: Float32Array.from(values) }, attributionMs: 0, stepMs: 0,
    });
    await sink.writeSteps!([record(0, [1, 2]), record(1, [3, NaN]), record(2, [Infinity, 4])]);
    await sink.close();
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT step, example_key, value FROM step_scores ORDER BY step, example_key').all() as { step: number; value: number }[];
    db.close();
    expect(rows.map((r) => [r.step, r.value])).toEqual([[0, 1], [0, 2], [1, 3], [2, Infinity], [2, 4]]);
  });

  it('an OpenTelemetry counter counts non-finite steps', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const model = regression();
    const options: AttachOptions = { targets: { val: val() }, nonFinite: 'skip-step', metrics: { meterProvider }, flushEvery: 2 };
    const run = attach(model, options);
    await train(run, model, 4, 3);
    await run.flush();
    await reader.forceFlush();
    const points = exporter.getMetrics().at(-1)!.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === 'inrun.steps.non_finite').flatMap((m) => m.dataPoints as DataPoint<number>[]);
    await run.close();
    expect(points.map((p) => p.value)).toEqual([1]);
  });

  it('keeps tensors flat when steps are non-finite', async () => {
    const model = regression();
    const run = attach(model, { targets: { val: val() }, nonFinite: 'skip-step', flushEvery: 2, stepRecords: false });
    await train(run, model, 2);
    const before = tf.memory().numTensors;
    await train(run, model, 6, 5);
    await run.flush();
    expect(tf.memory().numTensors).toBe(before);
    expect(run.stats().nonFiniteSteps).toBe(1);
    await run.close();
  });
});
