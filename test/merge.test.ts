import { createHash } from 'node:crypto';
import type * as nodeFs from 'node:fs';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, type PathLike } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import * as tf from '@tensorflow/tfjs';
import Database from 'better-sqlite3';
import { attach, InrunError, parquetSink, sqliteSink, writeSourceInfluence, type Sink, type SourceInfluenceRow } from 'inrun';
import { mergeStores, openStore, type Row } from '@inrun/cli';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { syntheticRun } from './store-fixtures.js';

// Fault injection: a rename into a path matching `fault.renameTo` fails as a full or broken disk would.
const fault = vi.hoisted(() => ({ renameTo: null as RegExp | null }));
vi.mock('node:fs', async (original) => {
  const fs = await original<typeof nodeFs>();
  const renameSync = (from: PathLike, to: PathLike) => {
    if (fault.renameTo?.test(String(to))) throw Object.assign(new Error(`EIO: injected failure, rename '${String(to)}'`), { code: 'EIO' });
    fs.renameSync(from, to);
  };
  return { ...fs, renameSync, default: { ...fs, renameSync } };
});

const tmp = mkdtempSync(join(tmpdir(), 'inrun-merge-'));
const sqliteA = join(tmp, 'a.sqlite'); // runs sq-1 (numeric ids, numeric labels) and sq-2
const parquetB = join(tmp, 'b-pq'); // run pq-1
const sqliteC = join(tmp, 'c.sqlite'); // another run called sq-1, written by inrun's schema version 1
const TABLES = ['runs', 'columns', 'examples', 'steps', 'step_scores', 'scores', 'token_scores', 'source_influence', 'example_scores'] as const;

beforeAll(async () => {
  await tf.setBackend('cpu');
  await train('sq-1', sqliteSink(sqliteA), (i) => 100 + i, 1);
  await train('sq-2', sqliteSink(sqliteA), (i) => `mail-${i}`, 2);
  await train('pq-1', parquetSink(parquetB, { segmentSteps: 3 }), (i) => `doc-${i}`, 3);
  const influence = (source: string, value: number): SourceInfluenceRow => ({ target: 'val', source, method: 'untrac', influence: value, lossBefore: 0.7, lossAfter: 0.7 + value, steps: 4, seconds: 0.25, stopped: null });
  writeSourceInfluence([influence('ham', 0.125), influence('spam', -0.5)], { runId: 'sq-1', sqlite: sqliteA });
  writeSourceInfluence([influence('ham', 0.25), { ...influence('spam', Number.NaN), stopped: 'non-finite' }], { runId: 'pq-1', parquet: parquetB });
  await syntheticRun([sqliteSink(sqliteC)], { runId: 'sq-1', n: 60, steps: 5, batch: 12 });
  // As inrun's schema version 1 wrote it: without the columns added since (they merge as nulls).
  const db = new Database(sqliteC);
  for (const [table, column] of [['runs', 'totals_step'], ['steps', 'attribution_ms'], ['steps', 'step_ms']]) db.exec(`ALTER TABLE ${table} DROP COLUMN ${column}`);
  db.prepare("UPDATE inrun_meta SET value = '1' WHERE key = 'schema_version'").run();
  db.close();
});

/** A real run: an embedding classifier trained with attach + fit, every method, top tokens. */
async function train(runId: string, sink: Sink, id: (i: number) => string | number, seed: number): Promise<void> {
  const n = 10;
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: 10, outputDim: 3, inputLength: 4, embeddingsInitializer: tf.initializers.randomNormal({ seed }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'binaryCrossentropy' });
  const x = tf.tensor2d(Array.from({ length: n * 4 }, (_, i) => (i * (seed + 2)) % 10), [n, 4], 'int32');
  const y = tf.tensor2d(Array.from({ length: n }, (_, i) => i % 2), [n, 1]);
  const val = { xs: tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4], 'int32'), ys: tf.tensor2d([1, 0], [2, 1]) };
  const ids = Array.from({ length: n }, (_, i) => id(i));
  const run = attach(model, {
    targets: { val },
    methods: ['shapley1', 'tracin_self', 'tracin_we'],
    sinks: [sink],
    examples: ids.map((e, i) => ({ id: e, source: i < 5 ? 'ham' : 'spam', text: `text ${i}, "quoted"`, label: i % 2 })),
    runId,
    tokens: { topK: 2 },
  });
  await run.fit(x, y, { ids, epochs: 2, batchSize: 4, verbose: 0 });
  await run.close();
  tf.dispose([x, y, val.xs, val.ys]);
  model.dispose();
}

/**
 * Rows as comparable text: numbers and text as the dataset types them (ids and labels are text
 * there); a null reads as a missing column (an older store lacks the columns added since).
 */
function canonical(rows: readonly Row[]): string[] {
  return rows
    .map((r) =>
      JSON.stringify(
        Object.entries(r)
          .filter(([, v]) => v !== null)
          .map(([k, v]) => [k, k === 'example_id' || k === 'label' ? String(v) : v]),
      ),
    )
    .sort();
}

async function tableRows(path: string, table: string, where = ''): Promise<Row[]> {
  const store = await openStore(path);
  try {
    if (!(await store.tables()).includes(table)) return [];
    return await store.all(`SELECT * FROM ${table} ${where}`);
  } finally {
    await store.close();
  }
}

/** Every file under `dir` (but the lock) with a hash of its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(dir.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

async function duck<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false' });
  const db = await instance.connect();
  try {
    return (await db.runAndReadAll(sql)).getRowObjectsJS() as T[];
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

describe('merging a SQLite file of two runs and a Parquet folder', () => {
  const out = join(tmp, 'merged');
  let result: Awaited<ReturnType<typeof mergeStores>>;
  beforeAll(async () => {
    result = await mergeStores([sqliteA, parquetB], { out, rowsPerFile: 7 });
  });

  it('keeps every row of every table and view, as queries on the inputs give them', async () => {
    expect(result.runs.map((r) => [r.runId, r.store, r.replaced])).toEqual([
      ['sq-1', sqliteA, false],
      ['sq-2', sqliteA, false],
      ['pq-1', parquetB, false],
    ]);
    for (const table of TABLES) {
      const merged = await tableRows(out, table);
      const inputs = [...(await tableRows(sqliteA, table)), ...(await tableRows(parquetB, table))];
      // Nothing trivially equal: every table holds rows here.
      expect(inputs.length, table).toBeGreaterThan(0);
      expect(canonical(merged), table).toEqual(canonical(inputs));
      if (table !== 'example_scores' && table !== 'source_influence') {
        for (const run of result.runs) expect(run.rows[table], `${table} ${run.runId}`).toBe(merged.filter((r) => r['run_id'] === run.runId).length);
      }
    }
    // A number id stays readable as text, the untrac row's NaN influence as null.
    expect((await tableRows(out, 'examples', "WHERE run_id = 'sq-1' AND example_key = 0"))[0]).toMatchObject({ example_id: '100', label: '0', source: 'ham' });
    expect((await tableRows(out, 'source_influence', "WHERE run_id = 'pq-1' AND source = 'spam'"))[0]).toMatchObject({ influence: null, stopped: 'non-finite' });
    expect(await tableRows(out, 'latest_run')).toHaveLength(1);
  });

  it('takes a merged dataset as an input too', async () => {
    const again = join(tmp, 'merged-again');
    const r = await cli('merge', out, '--out', again, '--rows-per-file', '50');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Merged 3 runs into ${again}`);
    for (const table of TABLES) expect(canonical(await tableRows(again, table)), table).toEqual(canonical(await tableRows(out, table)));
  });

  it('writes one run=<id> partition per run and table, in part files of at most rowsPerFile rows', async () => {
    for (const table of ['runs', 'columns', 'examples', 'steps', 'step_scores', 'scores', 'token_scores']) {
      expect(readdirSync(join(out, table)).sort(), table).toEqual(['run=pq-1', 'run=sq-1', 'run=sq-2']);
    }
    // source_influence only where a store had the table (both inputs have it; sq-2 has no rows).
    expect(readdirSync(join(out, 'source_influence')).sort()).toEqual(['run=pq-1', 'run=sq-1', 'run=sq-2']);
    const parts = await duck<{ file: string; n: bigint }>(`SELECT filename AS file, COUNT(*) AS n FROM read_parquet('${out}/step_scores/*/*.parquet', filename = true) GROUP BY filename`);
    expect(parts.length).toBeGreaterThan(3);
    for (const p of parts) expect(Number(p.n)).toBeLessThanOrEqual(7);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('reads in DuckDB with hive_partitioning: a run column equal to run_id, the SQLite column types', async () => {
    const counts = await duck<{ run: string; n: bigint; same: boolean }>(
      `SELECT run, COUNT(*) AS n, bool_and(run = run_id) AS same FROM read_parquet('${out}/scores/*/*.parquet', hive_partitioning = true) GROUP BY run ORDER BY run`,
    );
    const expected = await tableRows(sqliteA, 'scores');
    const pq = await tableRows(parquetB, 'scores');
    expect(counts.map((c) => [c.run, Number(c.n), c.same])).toEqual([
      ['pq-1', pq.length, true],
      ['sq-1', expected.filter((r) => r['run_id'] === 'sq-1').length, true],
      ['sq-2', expected.filter((r) => r['run_id'] === 'sq-2').length, true],
    ]);
    const types = await duck<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet('${out}/steps/*/*.parquet', hive_partitioning = true)`);
    expect(Object.fromEntries(types.map((t) => [t.column_name, t.column_type]))).toEqual({
      run_id: 'VARCHAR',
      step: 'INTEGER',
      epoch: 'INTEGER',
      learning_rate: 'DOUBLE',
      batch_size: 'INTEGER',
      loss: 'DOUBLE',
      target_losses: 'VARCHAR',
      attribution_ms: 'DOUBLE',
      step_ms: 'DOUBLE',
      run: 'VARCHAR',
    });
  });

  it('answers inrun query with the same SQL as one store, and inrun report of one run', async () => {
    const sql = "SELECT run_id, source, COUNT(*) AS n, SUM(value) AS v FROM example_scores WHERE column_name = 'shapley1:val' GROUP BY run_id, source ORDER BY run_id, source";
    const merged = await cli('query', out, sql, '--format', 'json');
    expect(merged.code).toBe(0);
    const fromInputs = [...(await tableRows(parquetB, 'example_scores')), ...(await tableRows(sqliteA, 'example_scores'))].filter((r) => r['column_name'] === 'shapley1:val');
    const rows = JSON.parse(merged.out) as { run_id: string; source: string; n: number; v: number }[];
    expect(rows.map((r) => `${r.run_id}/${r.source}`)).toEqual(['pq-1/ham', 'pq-1/spam', 'sq-1/ham', 'sq-1/spam', 'sq-2/ham', 'sq-2/spam']);
    for (const r of rows) {
      const mine = fromInputs.filter((e) => e['run_id'] === r.run_id && e['source'] === r.source);
      expect(r.n).toBe(mine.length);
      expect(r.v).toBeCloseTo(mine.reduce((s, e) => s + Number(e['value']), 0), 12);
    }
    const report = await cli('report', out, '--run', 'pq-1', '--out', join(tmp, 'pq-1.html'));
    expect(report.code).toBe(0);
    expect(report.out).toContain('for run pq-1');
    const html = readFileSync(join(tmp, 'pq-1.html'), 'utf8');
    expect(html).toContain('UnTrac: what unlearning each source does to the target');
    expect(html).toMatch(/Most harmful \(lowest shapley1:val\)/);
  });
});

describe('run ids met twice, incremental merges, failures', () => {
  it('refuses a run id already in the dataset or in an earlier input, naming the store and run; skip and replace say otherwise', async () => {
    const out = join(tmp, 'conflicts');
    await mergeStores([sqliteA], { out });
    const before = snapshot(out);
    const error = await mergeStores([parquetB, sqliteC], { out }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect(error).toMatchObject({ code: 'invalid_input', field: 'inputs[1].runs.sq-1' });
    expect((error as Error).message).toContain(sqliteC);
    expect(snapshot(out)).toEqual(before);
    const cliError = await cli('merge', sqliteC, '--out', out);
    expect(cliError.code).toBe(3);
    expect(cliError.err).toMatch(/inputs\[0\]\.runs\.sq-1: run "sq-1" of ".*c\.sqlite" is already in the dataset/);

    // Two inputs holding the same run, into a new folder: refused there too.
    await expect(mergeStores([sqliteA, sqliteC], { out: join(tmp, 'two-inputs') })).rejects.toMatchObject({ field: 'inputs[1].runs.sq-1' });
    expect(existsSync(join(tmp, 'two-inputs'))).toBe(false);

    const skip = await cli('merge', sqliteC, parquetB, '--out', out, '--on-conflict', 'skip');
    expect(skip.code).toBe(0);
    expect(skip.out).toContain(`Skipped run sq-1 of ${sqliteC}`);
    expect(canonical(await tableRows(out, 'scores', "WHERE run_id = 'sq-1'"))).toEqual(canonical(await tableRows(sqliteA, 'scores', "WHERE run_id = 'sq-1'")));
    // Incremental: the runs already there are untouched, byte for byte.
    const after = snapshot(out);
    for (const [file, hash] of Object.entries(before)) expect(after[file], file).toBe(hash);
    expect((await tableRows(out, 'runs')).map((r) => r['run_id']).sort()).toEqual(['pq-1', 'sq-1', 'sq-2']);

    const replaced = await mergeStores([sqliteC], { out, onConflict: 'replace' });
    expect(replaced.runs.map((r) => [r.runId, r.replaced])).toEqual([['sq-1', true]]);
    for (const table of TABLES) {
      const where = "WHERE run_id = 'sq-1'";
      expect(canonical(await tableRows(out, table, where)), table).toEqual(canonical(await tableRows(sqliteC, table, where)));
    }
    // The version-1 store's missing columns are nulls; the old run's token and influence rows are gone with it.
    expect((await tableRows(out, 'steps', "WHERE run_id = 'sq-1'")).every((r) => r['attribution_ms'] === null && r['step_ms'] === null)).toBe(true);
    expect(await tableRows(out, 'source_influence', "WHERE run_id = 'sq-1'")).toEqual([]);
    expect(canonical(await tableRows(out, 'scores', "WHERE run_id = 'sq-2'"))).toEqual(canonical(await tableRows(sqliteA, 'scores', "WHERE run_id = 'sq-2'")));

    // replace between two inputs: the last one's run goes in.
    const last = await mergeStores([sqliteA, sqliteC], { out: join(tmp, 'last-wins'), onConflict: 'replace' });
    expect(last.skipped).toEqual([{ runId: 'sq-1', store: sqliteA }]);
    expect(canonical(await tableRows(join(tmp, 'last-wins'), 'examples', "WHERE run_id = 'sq-1'"))).toEqual(canonical(await tableRows(sqliteC, 'examples')));
  });

  it('leaves the dataset as it was when a store fails to read mid-merge (all or nothing)', async () => {
    const out = join(tmp, 'failing');
    await mergeStores([sqliteA], { out });
    const before = snapshot(out);
    const answer = await tableRows(out, 'example_scores');
    // A Parquet store whose per-step segment is damaged inside its data (the footer still reads).
    const bad = join(tmp, 'bad-pq');
    cpSync(join(parquetB, 'pq-1'), join(bad, 'pq-bad'), { recursive: true });
    const runJson = join(bad, 'pq-bad', 'run.json');
    const file = JSON.parse(readFileSync(runJson, 'utf8')) as { info: { runId: string } };
    file.info.runId = 'pq-bad';
    writeFileSync(runJson, JSON.stringify(file));
    const segment = join(bad, 'pq-bad', 'steps', readdirSync(join(bad, 'pq-bad', 'steps')).sort()[0]!);
    const bytes = readFileSync(segment);
    bytes.fill(0xff, 4, 400);
    writeFileSync(segment, bytes);

    // The good store comes first: its run is written to the staging folder before the bad one fails.
    let staged = 0;
    const error = await mergeStores([parquetB, bad], { out, onProgress: (p) => void (staged = p.runs) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as Error).message).toMatch(/query failed/);
    expect(staged).toBe(1);
    expect(snapshot(out)).toEqual(before);
    expect(canonical(await tableRows(out, 'example_scores'))).toEqual(canonical(answer));
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
    expect((await cli('merge', parquetB, bad, '--out', out)).code).toBe(3);
  });

  it('undoes its renames when one fails while it commits: a replaced run comes back, the new one goes', async () => {
    const out = join(tmp, 'commit-fails');
    await mergeStores([sqliteA], { out });
    const before = snapshot(out);
    // sq-1 is replaced first (old partitions aside, new ones in), then pq-1's last rename fails.
    fault.renameTo = /[\\/]runs[\\/]run=pq-1$/;
    try {
      const error = await mergeStores([sqliteC, parquetB], { out, onConflict: 'replace' }).catch((e: unknown) => e);
      expect((error as Error).message).toMatch(/EIO: injected failure/);
    } finally {
      fault.renameTo = null;
    }
    expect(snapshot(out)).toEqual(before);
    expect(canonical(await tableRows(out, 'scores'))).toEqual(canonical(await tableRows(sqliteA, 'scores')));
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('repairs what a killed merge left: a replaced run half swapped comes back, a stale lock is taken over', async () => {
    const out = join(tmp, 'killed');
    await mergeStores([sqliteA], { out });
    const before = snapshot(out);
    // As a merge replacing sq-2 leaves it when killed after moving the old runs and steps partitions aside.
    const staging = join(out, '.staging-999999-dead');
    for (const table of ['runs', 'steps']) {
      mkdirSync(join(staging, 'old', table), { recursive: true });
      renameSync(join(out, table, 'run=sq-2'), join(staging, 'old', table, 'run=sq-2'));
    }
    writeFileSync(join(out, '.merge-lock'), '999999');
    expect((await tableRows(out, 'runs')).map((r) => r['run_id'])).toEqual(['sq-1']);
    await mergeStores([parquetB], { out });
    const after = snapshot(out);
    for (const [file, hash] of Object.entries(before)) expect(after[file], file).toBe(hash);
    expect((await tableRows(out, 'runs')).map((r) => r['run_id']).sort()).toEqual(['pq-1', 'sq-1', 'sq-2']);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('refuses bad options and an output folder that is not a dataset', async () => {
    await expect(mergeStores([sqliteA], { out: join(tmp, 'x'), onConflict: 'merge' as 'skip' })).rejects.toMatchObject({ code: 'invalid_option', field: 'onConflict' });
    await expect(mergeStores([], { out: join(tmp, 'x') })).rejects.toMatchObject({ field: 'inputs' });
    await expect(mergeStores([sqliteA], { out: parquetB })).rejects.toMatchObject({ code: 'invalid_input', field: 'out' });
    await expect(mergeStores([join(tmp, 'missing.sqlite')], { out: join(tmp, 'x') })).rejects.toMatchObject({ code: 'invalid_input', field: 'inputs[0]' });
    expect((await cli('merge', sqliteA, '--out', join(tmp, 'x'), '--on-conflict', 'merge')).code).toBe(2);
    expect((await cli('merge', sqliteA)).code).toBe(2);
  });
});
