import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DuckDBInstance } from '@duckdb/node-api';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { loadCheckpoint, type Scores } from 'inrun';
import parquet from 'parquetjs-lite';
import { beforeAll, expect, it } from 'vitest';
import { attachTo, BATCH, EPOCHS, model, ROWS, train } from './fixtures/training.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const STEPS = (EPOCHS * ROWS) / BATCH;

/** Runs the child trainer and kills it with SIGKILL once it is well past a checkpoint. */
async function killMidRun(dir: string): Promise<{ committed: number; checkpoint: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/train-child.ts', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let committed = -1;
  let checkpoint = -1;
  let done = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const [what, n] = line.split(' ');
    if (what === 'committed') committed = Number(n);
    if (what === 'checkpoint') checkpoint = Number(n);
    if (what === 'done') done = true;
    // Past the second checkpoint (end of epoch 1) and a few committed steps into the next epoch.
    if (checkpoint >= 2 * (ROWS / BATCH) - 1 && committed >= checkpoint + 3) child.kill('SIGKILL');
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
  expect(done).toBe(false);
  expect(signal).toBe('SIGKILL');
  return { committed, checkpoint };
}

async function duckRows(sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  return (await con.runAndReadAll(sql)).getRows();
}

async function parquetjsCount(file: string): Promise<number> {
  const reader = await parquet.ParquetReader.openFile(file);
  const cursor = reader.getCursor();
  let n = 0;
  while (await cursor.next()) n++;
  await reader.close();
  return n;
}

it(
  'SIGKILL mid-run keeps every committed step (SQLite) and every closed segment (Parquet); resuming from the last checkpoint gives the uninterrupted totals',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inrun-crash-'));
    const { committed, checkpoint } = await killMidRun(dir);

    // SQLite: intact, and holds every step the child reported as committed, once, without gaps.
    const db = new Database(join(dir, 'attr.sqlite'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const steps = (db.prepare('SELECT step FROM steps ORDER BY step').all() as { step: number }[]).map((r) => r.step);
    expect(steps.length).toBeGreaterThanOrEqual(committed + 1);
    expect(steps).toEqual(steps.map((_, i) => i));
    const { n } = db.prepare('SELECT COUNT(*) AS n FROM step_scores').get() as { n: number };
    expect(n).toBe(steps.length * BATCH * 2);
    db.close();

    // Parquet: no partial file is visible; every segment reads in DuckDB and in parquetjs-lite; the
    // segments hold steps 0.. without gaps, at least up to the last checkpoint (it closes the segment).
    const segments = readdirSync(join(dir, 'parquet', 'crash-run', 'steps'));
    expect(segments.every((f) => /^part-\d{6}\.parquet$/.test(f) || f.includes('.tmp-'))).toBe(true);
    const glob = join(dir, 'parquet', 'crash-run', 'steps', '*.parquet');
    const [[rows, maxStep, distinct]] = (await duckRows(`SELECT COUNT(*), MAX(step), COUNT(DISTINCT step) FROM read_parquet('${glob}')`)) as [[bigint, number, bigint]];
    expect(Number(distinct)).toBe(maxStep + 1);
    expect(maxStep).toBeGreaterThanOrEqual(checkpoint);
    let counted = 0;
    for (const f of segments.filter((s) => s.endsWith('.parquet'))) counted += await parquetjsCount(join(dir, 'parquet', 'crash-run', 'steps', f));
    expect(counted).toBe(Number(rows));

    // Resume from the last checkpoint, next to an uninterrupted run of the same job.
    const resumed = attachTo(await loadCheckpoint(join(dir, 'ckpt')), dir);
    const at = await resumed.resume(join(dir, 'ckpt'));
    expect(at.step).toBe(checkpoint);
    await train(resumed, at.epoch! + 1, dir);
    const after: Scores = await resumed.close();
    const clean = mkdtempSync(join(tmpdir(), 'inrun-clean-'));
    const reference = attachTo(model(), clean);
    await train(reference, 0, clean);
    const expected = await reference.close();

    expect([...after.ids].sort()).toEqual([...expected.ids].sort());
    for (const name of Object.keys(expected.columns)) {
      expected.ids.forEach((id, i) => expect(after.columns[name]![after.ids.indexOf(id)]).toBe(expected.columns[name]![i]!));
    }
    const resumedDb = new Database(join(dir, 'attr.sqlite'), { readonly: true });
    const stored = (resumedDb.prepare('SELECT step FROM steps ORDER BY step').all() as { step: number }[]).map((r) => r.step);
    expect(stored).toEqual(Array.from({ length: STEPS }, (_, i) => i));
    expect((resumedDb.prepare("SELECT status FROM runs").get() as { status: string }).status).toBe('completed');
    resumedDb.close();
    const [[total, perStep]] = (await duckRows(`SELECT COUNT(*), COUNT(DISTINCT step) FROM read_parquet('${glob}')`)) as [[bigint, bigint]];
    expect(Number(total)).toBe(STEPS * BATCH);
    expect(Number(perStep)).toBe(STEPS);
  },
  240_000,
);
