import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, InrunError, sqliteSink, SQLITE_SCHEMA_VERSION } from 'inrun';
import { beforeAll, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function textModel() {
  const model = tf.sequential({
    layers: [tf.layers.embedding({ inputDim: 10, outputDim: 3, inputLength: 4 }), tf.layers.flatten(), tf.layers.dense({ units: 1, activation: 'sigmoid' })],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy' });
  const x = tf.tensor2d(Array.from({ length: 40 }, (_, i) => (i * 3) % 10), [10, 4], 'int32');
  const y = tf.tensor2d([1, 0, 1, 0, 1, 0, 1, 0, 1, 0], [10, 1]);
  const val = { xs: tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4], 'int32'), ys: tf.tensor2d([1, 0], [2, 1]) };
  return { model, x, y, val };
}

it('stores runs, columns, examples, steps, per-step scores, totals and top tokens; totals equal run.scores()', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'inrun-')), 'runs', 'attr.sqlite');
  const { model, x, y, val } = textModel();
  const ids = Array.from({ length: 10 }, (_, i) => `mail-${i}`);
  const run = attach(model, {
    targets: { val },
    methods: ['shapley1', 'tracin_self', 'tracin_we'],
    sinks: [sqliteSink(file)],
    examples: ids.map((id, i) => ({ id, source: i < 5 ? 'ham' : 'spam', text: `text ${i}`, label: i % 2 })),
    runId: 'demo-1',
    tokens: { topK: 2 },
  });
  await run.fit(x, y, { ids, epochs: 2, batchSize: 4, verbose: 0 });
  const scores = await run.close();

  const db = new Database(file, { readonly: true });
  expect(db.prepare("SELECT value FROM inrun_meta WHERE key = 'schema_version'").get()).toEqual({ value: String(SQLITE_SCHEMA_VERSION) });
  const runRow = db.prepare('SELECT * FROM runs').get() as { run_id: string; status: string; optimizer: string; info: string };
  expect(runRow).toMatchObject({ run_id: 'demo-1', status: 'completed', optimizer: 'Adam' });
  const info = JSON.parse(runRow.info) as { layers: { covered: { name: string }[] }; optimizer: { attribution: string } };
  expect(info.layers.covered).toHaveLength(2);
  expect(info.optimizer.attribution).toBe('sgd-proxy');
  expect(db.prepare('SELECT name FROM columns ORDER BY column_id').all()).toEqual([
    { name: 'shapley1:val' },
    { name: 'tracin_self' },
    { name: 'tracin_we:val' },
  ]);
  expect(db.prepare("SELECT COUNT(*) AS n FROM examples WHERE source = 'spam'").get()).toEqual({ n: 5 });
  // 2 epochs x 3 steps (4 + 4 + 2 rows); per-step scores: 20 example-steps x 3 columns.
  expect(db.prepare('SELECT COUNT(*) AS n, SUM(batch_size) AS rows FROM steps').get()).toEqual({ n: 6, rows: 20 });
  expect(db.prepare('SELECT COUNT(*) AS n FROM step_scores').get()).toEqual({ n: 60 });
  // Totals equal run.scores() and the sum of the per-step scores.
  const stored = db.prepare("SELECT example_id, value, steps FROM example_scores WHERE column_name = 'shapley1:val' ORDER BY example_id").all() as {
    example_id: string;
    value: number;
    steps: number;
  }[];
  for (const row of stored) {
    const i = scores.ids.indexOf(row.example_id);
    expect(row.value).toBe(scores.columns['shapley1:val']![i]);
    expect(row.steps).toBe(2);
  }
  const perStep = db
    .prepare(
      `SELECT e.example_id, SUM(s.value) AS total FROM step_scores s JOIN examples e USING (run_id, example_key)
       WHERE s.column_id = 0 GROUP BY e.example_id`,
    )
    .all() as { example_id: string; total: number }[];
  for (const row of perStep) {
    expect(row.total).toBeCloseTo(scores.columns['shapley1:val']![scores.ids.indexOf(row.example_id)]!, 5);
  }
  expect(db.prepare('SELECT COUNT(*) AS n FROM token_scores').get()).toEqual({ n: 20 });
  db.close();
});

it('refuses to overwrite a stored run id, and does not touch what is stored', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'inrun-')), 'a.sqlite');
  for (const attempt of [1, 2]) {
    const { model, x, y, val } = textModel();
    const run = attach(model, { targets: { val }, sinks: [sqliteSink(file)], runId: 'same' });
    const result = run.fit(x, y, { epochs: 1, batchSize: 5, verbose: 0 });
    if (attempt === 1) {
      await result;
      await run.close();
    } else {
      const error = await result.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InrunError);
      expect((error as InrunError).field).toBe('runId');
      expect((error as Error).message).toMatch(/^inrun: runId: run "same" is already stored in sink sqlite:/);
      expect((error as Error).message.match(/inrun:/g)).toHaveLength(1);
      await run.close().catch(() => undefined);
    }
  }
  const db = new Database(file, { readonly: true });
  expect(db.prepare('SELECT COUNT(*) AS n FROM runs').get()).toEqual({ n: 1 });
  expect(db.prepare("SELECT status FROM runs WHERE run_id = 'same'").get()).toEqual({ status: 'completed' });
  db.close();
});

it('appends to a file written by schema version 1 (adds the newer columns, keeps the old run) and refuses a newer version', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'inrun-')), 'old.sqlite');
  const train = async (runId: string) => {
    const { model, x, y, val } = textModel();
    const run = attach(model, { targets: { val }, sinks: [sqliteSink(file)], runId });
    try {
      await run.fit(x, y, { epochs: 1, batchSize: 5, verbose: 0 });
    } finally {
      await run.close().catch(() => undefined);
    }
  };
  await train('old');
  // Make it what version 1 wrote: without the columns added since.
  let db = new Database(file);
  for (const [table, column] of [['runs', 'totals_step'], ['steps', 'attribution_ms'], ['steps', 'step_ms']]) db.exec(`ALTER TABLE ${table} DROP COLUMN ${column}`);
  db.prepare("UPDATE inrun_meta SET value = '1' WHERE key = 'schema_version'").run();
  const oldScores = db.prepare("SELECT COUNT(*) AS n FROM scores WHERE run_id = 'old'").get();
  db.close();

  await train('new');
  db = new Database(file, { readonly: true });
  expect(db.prepare("SELECT value FROM inrun_meta WHERE key = 'schema_version'").get()).toEqual({ value: String(SQLITE_SCHEMA_VERSION) });
  expect(db.prepare("SELECT COUNT(*) AS n FROM scores WHERE run_id = 'old'").get()).toEqual(oldScores);
  expect(db.prepare("SELECT COUNT(*) AS n FROM steps WHERE run_id = 'new' AND attribution_ms IS NOT NULL").get()).toEqual({ n: 2 });
  expect(db.prepare("SELECT COUNT(*) AS n FROM steps WHERE run_id = 'old' AND attribution_ms IS NULL").get()).toEqual({ n: 2 });
  db.close();

  // A file from a newer inrun: refused, and left as it was.
  db = new Database(file);
  db.prepare("UPDATE inrun_meta SET value = '99' WHERE key = 'schema_version'").run();
  db.close();
  const error = await train('newer').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(InrunError);
  expect(((error as Error).cause as InrunError).field).toBe('sqliteSink.path');
  expect((error as Error).message).toMatch(/schema version 99, newer than this inrun's/);
  db = new Database(file, { readonly: true });
  expect(db.prepare('SELECT COUNT(*) AS n FROM runs').get()).toEqual({ n: 2 });
  expect(db.prepare("SELECT value FROM inrun_meta WHERE key = 'schema_version'").get()).toEqual({ value: '99' });
  db.close();
});
