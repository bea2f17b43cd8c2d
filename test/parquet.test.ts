import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, parquetSink, sqliteSink, type StepRecord } from 'inrun';
import parquet from 'parquetjs-lite';
import { beforeAll, expect, it } from 'vitest';
import { embeddingModel } from './cases.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

async function readAll(file: string): Promise<Record<string, unknown>[]> {
  const reader = await parquet.ParquetReader.openFile(file);
  const cursor = reader.getCursor();
  const rows: Record<string, unknown>[] = [];
  for (let row = await cursor.next(); row !== null; row = await cursor.next()) rows.push(row);
  await reader.close();
  return rows;
}

it('one stream, three consumers: SQLite, Parquet and a records$ subscriber agree with the run totals; both readers open every file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inrun-pq-'));
  const c = embeddingModel();
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  const run = attach(c.model, {
    targets: c.targets,
    methods: ['shapley1', 'tracin_self', 'tracin_we'],
    sinks: [sqliteSink(join(dir, 'a.sqlite')), parquetSink(join(dir, 'pq'), { segmentSteps: 4 })],
    examples: ids.map((id, i) => ({ id, source: i % 2 ? 'odd' : 'even', text: `mail ${id}` })),
    runId: 'pq-run',
    flushEvery: 3,
  });
  const seen: StepRecord[] = [];
  run.records$.subscribe((r) => seen.push(r));
  for (let step = 0; step < 10; step++) await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
  const scores = await run.close();
  expect(seen).toHaveLength(10);

  const root = join(dir, 'pq', 'pq-run');
  const con = await (await DuckDBInstance.create(':memory:')).connect();
  const rows = (
    await con.runAndReadAll(`
      SELECT e.example_id, SUM(s."shapley1:val") AS v, COUNT(*) AS n, any_value(e.source) AS source
      FROM read_parquet('${root}/steps/*.parquet') s
      JOIN (SELECT example_key, example_id, max(source) AS source FROM read_parquet('${root}/examples/*.parquet') GROUP BY ALL) e USING (example_key)
      GROUP BY e.example_id ORDER BY e.example_id`)
  ).getRowObjects() as { example_id: string; v: number; n: bigint; source: string }[];
  expect(rows.map((r) => r.example_id)).toEqual(ids);
  for (const r of rows) {
    const i = scores.ids.indexOf(r.example_id);
    expect(r.v).toBeCloseTo(scores.columns['shapley1:val']![i]!, 5);
    expect(Number(r.n)).toBe(10);
    expect(r.source).toBe(ids.indexOf(r.example_id) % 2 ? 'odd' : 'even');
  }
  // The final totals snapshot holds the device totals exactly (FLOAT = float32).
  const [final] = readdirSync(join(root, 'totals')).sort().reverse();
  const totals = await readAll(join(root, 'totals', final!));
  for (const t of totals) {
    const i = scores.ids.indexOf(t['example_id'] as string);
    expect(t['shapley1:val']).toBe(scores.columns['shapley1:val']![i]);
    expect(t['steps']).toBe(10);
  }
  // parquetjs-lite reads every file of the run.
  let stepRows = 0;
  for (const sub of ['steps', 'examples', 'totals', 'tokens']) {
    for (const f of readdirSync(join(root, sub))) {
      const read = await readAll(join(root, sub, f));
      expect(read.length).toBeGreaterThan(0);
      if (sub === 'steps') stepRows += read.length;
    }
  }
  expect(stepRows).toBe(80);
  expect(readdirSync(join(root, 'steps'))).toHaveLength(3); // steps 0-3, 4-7, 8-9
  expect(JSON.parse(readFileSync(join(root, 'run.json'), 'utf8'))).toMatchObject({ status: 'completed', totalsStep: 9, layoutVersion: 1 });

  const db = new Database(join(dir, 'a.sqlite'), { readonly: true });
  expect(db.prepare('SELECT COUNT(*) AS n FROM step_scores WHERE column_id = 0').get()).toEqual({ n: 80 });
  db.close();
});
