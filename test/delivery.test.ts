import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, InrunError, sqliteSink, type AttachOptions, type Sink, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tiny() {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  const x = tf.randomNormal([4, 3], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2);
  return { model, x, y };
}

/** A sink that takes `ms` per batch of records and counts what it receives. */
function slowSink(ms: number, received: { records: number; batches: number }): Sink {
  return {
    name: 'slow',
    open: () => undefined,
    writeSteps: async (records) => {
      received.records += records.length;
      received.batches++;
      await sleep(ms);
    },
    close: () => undefined,
  };
}

async function steps(options: AttachOptions, n: number, probe?: (step: number, queued: number) => void) {
  const { model, x, y } = tiny();
  const run = attach(model, options);
  for (let step = 1; step <= n; step++) {
    await run.step([step * 4, step * 4 + 1, step * 4 + 2, step * 4 + 3], () => model.trainOnBatch(x, y));
    probe?.(step, run.stats().delivery.queued);
  }
  return run;
}

describe('flow control', () => {
  it('block: a slow sink (50 ms a batch) paces training, the queue stays bounded and memory flat over 5,000 steps', async () => {
    const received = { records: 0, batches: 0 };
    let maxQueued = 0;
    const heap: number[] = [];
    const tensors: number[] = [];
    const run = await steps({ sinks: [slowSink(50, received)], flushEvery: 50, delivery: { policy: 'block', capacity: 100 } }, 5000, (step, queued) => {
      maxQueued = Math.max(maxQueued, queued);
      if (step === 1000 || step === 5000) {
        (globalThis as { gc?: () => void }).gc?.();
        heap.push(process.memoryUsage().heapUsed);
        tensors.push(tf.memory().numTensors);
      }
    });
    await run.close();
    expect(received.records).toBe(5000);
    expect(run.stats().delivery.dropped).toBe(0);
    expect(maxQueued).toBeLessThanOrEqual(100);
    expect(tensors[1]).toBe(tensors[0]);
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('function');
    expect(heap[1]! - heap[0]!).toBeLessThan(4 * 1024 * 1024);
  });

  it('drop: records that do not fit are dropped and counted exactly', async () => {
    const received = { records: 0, batches: 0 };
    const seen: StepRecord[] = [];
    const { model, x, y } = tiny();
    const run = attach(model, { sinks: [slowSink(50, received)], flushEvery: 10, delivery: { policy: 'drop', capacity: 15 } });
    run.records$.subscribe((r) => seen.push(r));
    for (let step = 0; step < 300; step++) await run.step([step], () => model.trainOnBatch(tf.slice(x, 0, 1), tf.slice(y, 0, 1)));
    await run.close();
    const { dropped, delivered } = run.stats().delivery;
    expect(seen).toHaveLength(300); // subscribers see every record; only sinks can fall behind
    expect(dropped).toBeGreaterThan(0);
    expect(received.records).toBe(delivered);
    expect(delivered + dropped).toBe(300);
  });
});

describe('sink failures', () => {
  const failing = (after: number): Sink => {
    let calls = 0;
    return {
      name: 'flaky',
      open: () => undefined,
      writeSteps: () => {
        if (++calls > after) throw new Error('disk full');
      },
      close: () => undefined,
    };
  };

  it("stop (default): the next step fails naming the sink; what SQLite wrote stays readable", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'inrun-fail-')), 'a.sqlite');
    const { model, x, y } = tiny();
    const run = attach(model, { sinks: [sqliteSink(file), failing(2)], flushEvery: 1, runId: 'f' });
    let failedAt = -1;
    for (let step = 0; step < 10 && failedAt < 0; step++) {
      try {
        await run.step([step], () => model.trainOnBatch(tf.slice(x, 0, 1), tf.slice(y, 0, 1)));
      } catch (error) {
        expect(error).toBeInstanceOf(InrunError);
        expect((error as InrunError).field).toBe('sinks');
        expect((error as Error).message).toMatch(/sink flaky failed in writeSteps: disk full/);
        failedAt = step;
      }
    }
    expect(failedAt).toBe(2);
    await run.close().catch(() => undefined);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.prepare('SELECT COUNT(*) AS n FROM steps').get()).toEqual({ n: 3 });
    db.close();
  });

  it("continue: training goes on without the failing sink, the others keep everything", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'inrun-fail-')), 'a.sqlite');
    const run = await steps({ sinks: [failing(1), sqliteSink(file)], flushEvery: 1, sinkErrors: 'continue' }, 20);
    await run.close();
    const { failures, written } = run.stats().delivery;
    expect(failures.map((f) => f.sink)).toEqual(['flaky']);
    expect(written).toEqual({ flaky: 1, [`sqlite:${file}`]: 20 }); // step records
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM steps').get()).toEqual({ n: 20 });
    db.close();
  });
});
