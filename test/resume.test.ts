import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, InrunError, loadCheckpoint, parquetSink, sqliteSink, type Sink, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { BATCH, data, EPOCHS, model, ROWS } from './fixtures/training.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const STEPS = (EPOCHS * ROWS) / BATCH;

function options(sinks: Sink[]) {
  return { runId: 'r', seed: 3, targets: { val: data().val }, sinks, flushEvery: 2, totalsEvery: 0 } as const;
}

/** Trains two epochs (checkpoint after each), then keeps training without closing: a crashed run. */
async function crashedRun(dir: string, sinks: Sink[]): Promise<StepRecord[]> {
  const run = attach(model(), options(sinks));
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  const { x, y, ids } = data();
  await run.fit(x, y, { ids, epochs: 3, batchSize: BATCH, verbose: 0, callbacks: { onEpochEnd: async (e) => void (e < 2 && (await run.checkpoint(join(dir, 'ckpt')))) } });
  await run.flush();
  return records;
}

function totalsUpTo(records: StepRecord[], afterStep: number, column: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const r of records.filter((rec) => rec.step <= afterStep)) {
    r.ids.forEach((id, i) => sums.set(id as string, (sums.get(id as string) ?? 0) + r.columns[column]![i]!));
  }
  return sums;
}

describe('resume', () => {
  for (const kind of ['parquet', 'sqlite'] as const) {
    const sinkIn = (dir: string) => (kind === 'parquet' ? parquetSink(join(dir, 'pq'), { segmentSteps: 3 }) : sqliteSink(join(dir, 'db.sqlite')));

    it(`${kind}: from a checkpoint, bit for bit the uninterrupted run`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'inrun-resume-'));
      await crashedRun(dir, [sinkIn(dir)]);
      const run = attach(await loadCheckpoint(join(dir, 'ckpt')), options([sinkIn(dir)]));
      const at = await run.resume(join(dir, 'ckpt'));
      expect(at).toEqual({ step: 2 * (ROWS / BATCH) - 1, epoch: 1 });
      const { x, y, ids } = data();
      await run.fit(x, y, { ids, epochs: EPOCHS, initialEpoch: 2, batchSize: BATCH, verbose: 0 });
      const resumed = await run.close();
      expect(run.stats().steps).toBe(STEPS);

      const reference = attach(model(), options([]));
      await reference.fit(x, y, { ids, epochs: EPOCHS, batchSize: BATCH, verbose: 0 });
      const expected = await reference.close();
      for (const name of Object.keys(expected.columns)) {
        expected.ids.forEach((id, i) => expect(resumed.columns[name]![resumed.ids.indexOf(id)]).toBe(expected.columns[name]![i]!));
      }
    });

    it(`${kind}: at a step without a snapshot, totals are summed from the stored per-step scores, and later steps are forgotten`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'inrun-resume-'));
      const records = await crashedRun(dir, [sinkIn(dir)]);
      const afterStep = 10; // mid-epoch: no checkpoint, no snapshot
      const run = attach(model(), options([sinkIn(dir)]));
      await run.resume({ afterStep });
      const scores = await run.close();
      const expected = totalsUpTo(records, afterStep, 'shapley1:val');
      expect(new Set(scores.ids.filter((_, i) => scores.steps[i]! > 0))).toEqual(new Set(expected.keys()));
      for (const [id, v] of expected) expect(scores.columns['shapley1:val']![scores.ids.indexOf(id)]).toBeCloseTo(v, 6);
      if (kind === 'sqlite') {
        const db = new Database(join(dir, 'db.sqlite'), { readonly: true });
        expect(db.prepare('SELECT MAX(step) AS s FROM steps').get()).toEqual({ s: afterStep });
        db.close();
      }
    });
  }

  it('refuses what it cannot do, before training', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inrun-resume-'));
    await crashedRun(dir, [sqliteSink(join(dir, 'db.sqlite'))]);
    const noSink = attach(model(), options([]));
    await expect(noSink.resume({ afterStep: 3 })).rejects.toThrow(/resume needs a sink that can resume/);
    await noSink.close();
    const other = attach(model(), { ...options([sqliteSink(join(dir, 'db.sqlite'))]), runId: 'other' });
    await expect(other.resume(join(dir, 'ckpt'))).rejects.toThrow(/belongs to run "r"/);
    await other.close();
    const tooFar = attach(model(), options([sqliteSink(join(dir, 'db.sqlite'))]));
    const error = await tooFar.resume({ afterStep: 999 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as Error).message).toMatch(/step 999 is not stored/);
    const started = attach(model(), { ...options([]), runId: 'fresh' });
    const { x, y, ids } = data();
    await started.fit(x, y, { ids, epochs: 1, batchSize: BATCH, verbose: 0 });
    await expect(started.resume({ afterStep: 0 })).rejects.toThrow(/before the first training step/);
    await started.close();
  });
});
