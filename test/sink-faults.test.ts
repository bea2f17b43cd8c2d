import type * as fs from 'node:fs';
import { mkdtempSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, InrunError, parquetSink, sqliteSink, type AttachOptions, type Sink } from 'inrun';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

/** A disk that fills up on demand: writes to paths containing `full.failOn` write half, then throw ENOSPC. */
const full = vi.hoisted(() => ({ failOn: null as string | null }));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const writeFileSync = (path: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]) => {
    if (full.failOn !== null && typeof path === 'string' && path.includes(full.failOn)) {
      const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      real.writeFileSync(path, bytes.subarray(0, bytes.length >> 1));
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
    }
    return (real.writeFileSync as (...a: unknown[]) => void)(path, data, ...rest);
  };
  return { ...real, default: { ...real, writeFileSync }, writeFileSync };
});

beforeAll(async () => {
  await tf.setBackend('cpu');
});

afterEach(() => {
  full.failOn = null;
});

const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-faults-'));

function tiny() {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return { model, x: tf.randomNormal([1, 3], 0, 1, 'float32', 1), y: tf.oneHot(tf.tensor1d([1], 'int32'), 2) };
}

async function train(options: AttachOptions, steps: number) {
  const { model, x, y } = tiny();
  const run = attach(model, options);
  for (let s = 0; s < steps; s++) await run.step([s], () => model.trainOnBatch(x, y));
  return run;
}

function listAll(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}

describe('a full disk', () => {
  it("under sinkErrors: 'continue', close() resolves, reports the failure in run.stats() and leaves no temporary file", async () => {
    const folder = tmp();
    const run = await train({ sinks: [parquetSink(folder)], sinkErrors: 'continue', runId: 'full', flushEvery: 2 }, 6);
    full.failOn = join(folder, 'full', 'steps');
    const scores = await run.close();
    expect(scores.ids).toHaveLength(6);
    const failures = run.stats().delivery.failures;
    expect(failures.map((f) => f.sink)).toEqual([`parquet:${folder}`]);
    expect(failures[0]!.error).toBeInstanceOf(InrunError);
    expect((failures[0]!.error as InrunError).code).toBe('sink_failed');
    expect((failures[0]!.error as Error).message).toMatch(/ENOSPC/);
    expect(listAll(folder).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it("under sinkErrors: 'stop', close() rejects with an InrunError naming the sink, and still leaves no temporary file", async () => {
    const folder = tmp();
    const run = await train({ sinks: [parquetSink(folder)], runId: 'full', flushEvery: 2 }, 6);
    full.failOn = join(folder, 'full', 'steps');
    const error = await run.close().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).code).toBe('sink_failed');
    expect((error as Error).message).toContain(`parquet:${folder}`);
    expect(listAll(folder).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it("a sink whose close throws a raw error surfaces as an InrunError naming it", async () => {
    const raw: Sink = { name: 'raw', open: () => undefined, writeSteps: () => undefined, close: () => Promise.reject(new Error('EIO: i/o error')) };
    const run = await train({ sinks: [raw], flushEvery: 2 }, 2);
    const error = await run.close().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as Error).message).toMatch(/sink raw .*EIO/);
  });
});

describe('a hung sink', () => {
  const hung = (where: 'writeSteps' | 'close'): Sink => ({
    name: 'hung',
    open: () => undefined,
    writeSteps: () => (where === 'writeSteps' ? new Promise<void>(() => undefined) : undefined),
    close: () => (where === 'close' ? new Promise<void>(() => undefined) : undefined),
  });

  it("block + stop: a write that never resolves becomes a sink failure after sinkTimeoutMs; training fails instead of hanging", async () => {
    const { model, x, y } = tiny();
    const run = attach(model, { sinks: [hung('writeSteps')], flushEvery: 1, delivery: { policy: 'block', capacity: 1 }, sinkTimeoutMs: 50 });
    const error = await (async () => {
      for (let s = 0; s < 20; s++) await run.step([s], () => model.trainOnBatch(x, y));
    })().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as Error).message).toMatch(/sink hung .*did not answer within 50 ms/);
    await run.close().catch(() => undefined);
  });

  it("block + continue: training goes on without the hung sink, the other sink gets every record", async () => {
    const file = join(tmp(), 'a.db');
    const run = await train({ sinks: [hung('writeSteps'), sqliteSink(file)], flushEvery: 1, delivery: { policy: 'block', capacity: 1 }, sinkErrors: 'continue', sinkTimeoutMs: 50, runId: 'h' }, 10);
    await run.close();
    expect(run.stats().delivery.failures.map((f) => f.sink)).toEqual(['hung']);
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM steps').get()).toEqual({ n: 10 });
    db.close();
  });

  it("drop: a close that never resolves ends after sinkTimeoutMs (continue: resolves and reports it)", async () => {
    const run = await train({ sinks: [hung('close')], delivery: { policy: 'drop' }, sinkErrors: 'continue', sinkTimeoutMs: 50 }, 3);
    const scores = await run.close();
    expect(scores.ids).toHaveLength(3);
    expect(run.stats().delivery.failures.map((f) => f.sink)).toEqual(['hung']);
  });

  it('sinkTimeoutMs is checked', () => {
    expect(() => attach(tiny().model, { sinkTimeoutMs: -1 })).toThrow(expect.objectContaining({ field: 'sinkTimeoutMs' }));
  });
});

describe("drop and I/O-bound sinks", () => {
  it('an async fs sink keeps up under drop: delivered + dropped = produced, and almost nothing is dropped', async () => {
    const file = await open(join(tmp(), 'log.jsonl'), 'a');
    let received = 0;
    const fsSink: Sink = {
      name: 'fs',
      open: () => undefined,
      writeSteps: async (records) => {
        await file.write(records.map((r) => JSON.stringify({ step: r.step, loss: r.loss })).join('\n') + '\n');
        received += records.length;
      },
      close: () => file.close(),
    };
    const { model, x, y } = tiny();
    const run = attach(model, { sinks: [fsSink], flushEvery: 4, delivery: { policy: 'drop', capacity: 16 } });
    const xs = tf.tile(x, [40, 1]);
    const ys = tf.tile(y, [40, 1]);
    await run.fit(xs, ys, { epochs: 10, batchSize: 1 });
    await run.close();
    const { delivered, dropped } = run.stats().delivery;
    expect(delivered + dropped).toBe(400);
    expect(received).toBe(delivered);
    expect(dropped).toBeLessThan(40);
  });

  it('a sink really slower than training (a 100 ms timer a batch) still drops, and every record is counted', async () => {
    let received = 0;
    const slow: Sink = {
      name: 'slow',
      open: () => undefined,
      writeSteps: async (records) => {
        await new Promise((r) => setTimeout(r, 100));
        received += records.length;
      },
      close: () => undefined,
    };
    const run = await train({ sinks: [slow], flushEvery: 4, delivery: { policy: 'drop', capacity: 16 } }, 200);
    await run.close();
    const { delivered, dropped } = run.stats().delivery;
    expect(delivered + dropped).toBe(200);
    expect(received).toBe(delivered);
    expect(dropped).toBeGreaterThan(100);
  });
});
