import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, InrunError, parquetSink, sqliteSink, type RunInfo, type Sink } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-hostile-'));
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function tiny() {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return { model, x: tf.randomNormal([4, 3], 0, 1, 'float32', 1), y: tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2) };
}

async function trainWith(sinks: Sink[], runId?: string) {
  const { model, x, y } = tiny();
  const run = attach(model, { sinks, ...(runId === undefined ? {} : { runId }) });
  try {
    await run.fit(x, y, { epochs: 1, batchSize: 2 });
  } finally {
    await run.close().catch(() => undefined);
  }
}

function caught(fn: () => unknown): InrunError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InrunError);
    return e as InrunError;
  }
  throw new Error('expected an InrunError');
}

describe('files that are not ours', () => {
  it("a foreign SQLite file with a 'runs' table is refused untouched", async () => {
    const path = join(tmp(), 'app.db');
    const db = new Database(path);
    db.exec("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO runs (name) VALUES ('mine')");
    db.close();
    const before = sha(path);
    const error = await trainWith([sqliteSink(path)]).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as Error).message).toMatch(/not an inrun store/);
    expect(sha(path)).toBe(before);
    expect(readdirSync(join(path, '..')).sort()).toEqual(['app.db']);
    const check = new Database(path, { readonly: true });
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(check.prepare("SELECT COUNT(*) AS n FROM sqlite_master").get()).toEqual({ n: 1 });
    check.close();
  });

  it('a file that is not SQLite at all is refused with an InrunError, untouched', async () => {
    const path = join(tmp(), 'notes.txt');
    writeFileSync(path, 'hello, this is not a database '.repeat(100));
    const before = sha(path);
    const error = await trainWith([sqliteSink(path)]).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect(sha(path)).toBe(before);
  });

  it("inrun's own files are recognised: marked with application_id, and an older unmarked inrun file still opens", async () => {
    const path = join(tmp(), 'runs.db');
    await trainWith([sqliteSink(path)], 'first');
    let db = new Database(path);
    expect(db.pragma('application_id', { simple: true })).not.toBe(0);
    db.pragma('application_id = 0'); // what inrun before the marker wrote
    db.close();
    await trainWith([sqliteSink(path)], 'second');
    db = new Database(path, { readonly: true });
    expect((db.prepare('SELECT run_id FROM runs ORDER BY run_id').all() as { run_id: string }[]).map((r) => r.run_id)).toEqual(['first', 'second']);
    db.close();
  });
});

describe('run ids and example ids', () => {
  it("run ids that could escape a folder are refused at attach and by the sinks: '../escaped', '..', 'a/b', '.', ''", () => {
    for (const runId of ['../escaped', '..', '.', 'a/b', 'a\\b', 'x\u0000y', '']) {
      const error = caught(() => attach(tiny().model, { runId }));
      expect(error.field).toBe('runId');
    }
    // A sink used on its own checks too, before writing anything.
    const root = tmp();
    const folder = join(root, 'pq');
    mkdirSync(folder);
    const sink = parquetSink(folder);
    const info = { runId: '../escaped', columns: [], targets: [] } as unknown as RunInfo;
    expect(() => sink.open(info)).toThrow(expect.objectContaining({ field: 'runId' }));
    expect(existsSync(join(root, 'escaped'))).toBe(false);
    expect(readdirSync(root)).toEqual(['pq']);
  });

  it('ids that are not well-formed Unicode are refused, with the index', async () => {
    const { model, x, y } = tiny();
    const run = attach(model);
    const error = await run.fit(x, y, { ids: ['a', 'b\uD800', 'c', 'd'] }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).field).toBe('args.ids[1]');
    expect(() => run.describe([{ id: '\uDC00x' }])).toThrow(expect.objectContaining({ field: 'examples[0].id' }));
    expect(caught(() => attach(tiny().model, { runId: 'run\uD800' })).field).toBe('runId');
    await run.close();
  });

  it('error messages quote at most ~200 characters of a bad value', async () => {
    const long = 'x'.repeat(10_000);
    const { model, x, y } = tiny();
    const run = attach(model);
    const duplicate = await run.fit(x, y, { ids: [long, 'b', long, 'd'] }).then(() => null, (e: unknown) => e);
    expect(duplicate).toBeInstanceOf(InrunError);
    expect((duplicate as Error).message.length).toBeLessThan(300);
    await run.close();
    expect(caught(() => attach(tiny().model, { runId: long })).message.length).toBeLessThan(300);
    expect(caught(() => attach(tiny().model, { targets: { [long]: { xs: tf.zeros([1, 3]), ys: tf.zeros([1, 2]) } } })).message.length).toBeLessThan(300);
    expect(caught(() => attach(tiny().model, { layers: [long] })).message.length).toBeLessThan(300);
  });
});
