// Stores against data loss: an output that is an input is refused untouched; a failing curate keeps the manifest it would replace.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parquetSink, sqliteSink } from 'inrun';
import { mergeStores } from '@inrun/cli';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { syntheticRun } from './store-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'inrun-hostile-store-'));
const sqlite = join(dir, 's.sqlite');
const parquet = join(dir, 'p');
const merged = join(dir, 'm');
const link = join(dir, 'link.sqlite');

function hashes(path: string): Record<string, string> {
  if (!statSync(path).isDirectory()) return { '.': createHash('sha256').update(readFileSync(path)).digest('hex') };
  const out: Record<string, string> = {};
  for (const name of readdirSync(path, { recursive: true, encoding: 'utf8' }).sort()) {
    const p = join(path, name);
    if (statSync(p).isFile()) out[name] = createHash('sha256').update(readFileSync(p)).digest('hex');
  }
  return out;
}

async function cli(args: string[]) {
  let err = '';
  const code = await main(args, { out: () => undefined, err: (s) => (err += s) });
  return { code, err };
}

beforeAll(async () => {
  await syntheticRun([sqliteSink(sqlite), parquetSink(parquet)], { n: 30, steps: 4, batch: 10 });
  await mergeStores([sqlite], { out: merged });
  symlinkSync(sqlite, link);
  symlinkSync(sqlite, join(dir, 'link.csv'));
});

describe('an output that is an input is refused (exit 2), the input untouched', () => {
  const segment = () => join(parquet, 'run-synthetic', 'run.json');
  it.each([
    ['report onto the SQLite store', () => ['report', sqlite, '--out', sqlite], sqlite],
    ['report onto the SQLite store through a symlink', () => ['report', link, '--out', sqlite], sqlite],
    ['report onto a file inside the Parquet store', () => ['report', parquet, '--out', segment()], parquet],
    ['report into the Parquet store', () => ['report', parquet, '--out', join(parquet, 'run-synthetic', 'report.html')], parquet],
    ['report onto the merged dataset', () => ['report', merged, '--out', merged], merged],
    ['curate onto the SQLite store (through a symlink)', () => ['curate', sqlite, '--drop', 'lowest:3', '--out', join(dir, 'link.csv')], sqlite],
    ['curate into the Parquet store', () => ['curate', parquet, '--drop', 'lowest:3', '--out', join(parquet, 'run-synthetic', 'm.csv')], parquet],
    ['merge into one of its inputs', () => ['merge', sqlite, merged, '--out', merged], merged],
    ['merge into a folder inside the Parquet store', () => ['merge', parquet, '--out', join(parquet, 'run-synthetic', 'ds')], parquet],
  ] as [string, () => string[], string][])('%s', async (_, args, input) => {
    const before = hashes(input);
    const r = await cli(args());
    expect(r.code).toBe(2);
    expect(r.err).toContain('would change a store being read');
    expect(hashes(input)).toEqual(before);
    expect(existsSync(join(parquet, 'run-synthetic', 'report.html')) || existsSync(join(parquet, 'run-synthetic', 'ds'))).toBe(false);
  });
});

describe('curate writes aside, then renames', () => {
  it('a curate that fails while it streams leaves the existing manifest as it was, and no file beside it', async () => {
    // A store whose examples fail part-way through a query (a view that raises on the 10th example).
    const db = join(dir, 'failing.sqlite');
    await syntheticRun([sqliteSink(db)], { n: 30, steps: 4, batch: 10 });
    const d = new Database(db);
    d.exec(`ALTER TABLE examples RENAME TO examples_data;
      CREATE VIEW examples AS SELECT run_id, example_key,
        CASE WHEN example_key >= 10 THEN json_extract('not json', '$') ELSE example_id END AS example_id, source, label, text FROM examples_data`);
    d.close();
    const out = join(dir, 'manifest.csv');
    writeFileSync(out, 'the manifest of yesterday\n');
    const r = await cli(['curate', db, '--drop', 'lowest:100%', '--out', out]);
    expect(r.code).toBe(3);
    expect(readFileSync(out, 'utf8')).toBe('the manifest of yesterday\n');
    expect(readdirSync(dir).filter((f) => f.includes('manifest'))).toEqual(['manifest.csv']);
  });

  it('--drop lowest:99999999999999999999 is a bad option (exit 2), not an unexpected failure', async () => {
    const r = await cli(['curate', sqlite, '--drop', 'lowest:99999999999999999999', '--out', join(dir, 'never.csv')]);
    expect(r.code).toBe(2);
    expect(existsSync(join(dir, 'never.csv'))).toBe(false);
  });
});

describe('a reader sees one snapshot for as long as it reads, while the run writes', () => {
  it('SQLite: runs written after open stay invisible to every later query of the reader (one read transaction)', async () => {
    const db = join(dir, 'live.sqlite');
    await syntheticRun([sqliteSink(db)], { runId: 'first', n: 30, steps: 4, batch: 10 });
    const { openStore } = await import('@inrun/cli');
    const reader = await openStore(db);
    try {
      const count = async (table: string) => Number((await reader.all(`SELECT COUNT(*) AS n FROM ${table}`))[0]!['n']);
      expect(await count('runs')).toBe(1);
      // Another run writes the same file meanwhile (WAL: it does not wait for the reader).
      await syntheticRun([sqliteSink(db)], { runId: 'second', n: 30, steps: 4, batch: 10 });
      expect([await count('runs'), await count('steps'), await count('step_scores'), await count('scores')]).toEqual([1, 4, 120, 90]);
    } finally {
      await reader.close();
    }
    const after = await openStore(db);
    expect(Number((await after.all('SELECT COUNT(*) AS n FROM steps'))[0]!['n'])).toBe(8);
    await after.close();
  });

  it('SQLite: merge reads each store in one snapshot: steps a run writes mid-merge are in neither steps nor step_scores', async () => {
    const db = join(dir, 'live-merge.sqlite');
    await syntheticRun([sqliteSink(db)], { runId: 'a', n: 30, steps: 4, batch: 10 });
    await syntheticRun([sqliteSink(db)], { runId: 'b', n: 30, steps: 4, batch: 10 });
    const out = join(dir, 'live-merged');
    let wrote = false;
    // After run a is merged, run b (merged next) writes four more steps.
    await mergeStores([db], {
      out,
      onProgress: () => {
        if (wrote) return;
        wrote = true;
        const w = new Database(db);
        w.exec("INSERT INTO steps SELECT run_id, step + 100, epoch, learning_rate, batch_size, loss, target_losses, attribution_ms, step_ms FROM steps WHERE run_id = 'b'");
        w.exec("INSERT INTO step_scores SELECT run_id, step + 100, column_id, example_key, value FROM step_scores WHERE run_id = 'b'");
        w.close();
      },
    });
    expect(wrote).toBe(true);
    const { openStore } = await import('@inrun/cli');
    const [merged, live] = [await openStore(out), await openStore(db)];
    try {
      const count = async (store: typeof merged, table: string) => Number((await store.all(`SELECT COUNT(*) AS n FROM ${table} WHERE run_id = 'b'`))[0]!['n']);
      expect([await count(merged, 'steps'), await count(merged, 'step_scores')]).toEqual([4, 120]);
      expect([await count(live, 'steps'), await count(live, 'step_scores')]).toEqual([8, 240]);
    } finally {
      await Promise.all([merged.close(), live.close()]);
    }
  });

  it('Parquet: the totals snapshot read at open stays readable and the same after the sink replaces and deletes it', async () => {
    const folder = join(dir, 'live-parquet');
    const truth = await syntheticRun([parquetSink(folder)], { n: 30, steps: 4, batch: 10 });
    const totalsDir = join(folder, 'run-synthetic', 'totals');
    const { openStore } = await import('@inrun/cli');
    const reader = await openStore(folder);
    try {
      const sum = async () => Number((await reader.all("SELECT SUM(value) AS v FROM example_scores WHERE column_name = 'shapley1:val'"))[0]!['v']);
      const expected = truth.totals['shapley1:val']!.reduce((a, b) => a + b, 0);
      expect(await sum()).toBeCloseTo(expected, 4);
      // What the sink does at its next snapshots: a newer file (other values), the old one deleted.
      const [old] = readdirSync(totalsDir);
      const { readParquetFile, writeParquetFile } = await import('@inrun/store/internal');
      const rows = await readParquetFile(join(totalsDir, old!));
      writeParquetFile(join(totalsDir, 'step-000000999.parquet'), [
        { name: 'example_key', type: 'INT32', data: rows.map((r) => Number(r['example_key'])) },
        ...['shapley1:val', 'tracin_self', 'tracin_we:val'].map((name) => ({ name, type: 'DOUBLE' as const, data: rows.map(() => 1000) })),
        { name: 'steps', type: 'INT32', data: rows.map(() => 1) },
      ]);
      rmSync(join(totalsDir, old!));
      expect(await sum()).toBeCloseTo(expected, 4);
      expect((await reader.all("SELECT totals_step FROM runs"))[0]!['totals_step']).toBe(3);
    } finally {
      await reader.close();
    }
  });
});

describe('distinct ids stay distinct', () => {
  it('compare of a run with itself matches every example when ids mix numbers and strings (0..3 and "0".."3")', async () => {
    const db = join(dir, 'mixed.sqlite');
    const { runInfo } = await import('./store-fixtures.js');
    const info = runInfo('mixed');
    const folder = join(dir, 'mixed-parquet');
    const ids = [...Array.from({ length: 24 }, (_, i) => i), ...Array.from({ length: 24 }, (_, i) => String(i))];
    const column = Float32Array.from(ids, (_, i) => Math.sin(i));
    for (const sink of [sqliteSink(db), parquetSink(folder)]) {
      await sink.open(info);
      await sink.writeScores?.({ ids, columns: { 'shapley1:val': column, tracin_self: column, 'tracin_we:val': column }, steps: new Int32Array(ids.length).fill(1), tokens: {} }, info, { step: 0, final: true });
      await sink.close();
    }
    const fromSqlite = join(dir, 'mixed-merged-sqlite');
    const fromParquet = join(dir, 'mixed-merged-parquet');
    await mergeStores([db], { out: fromSqlite });
    await mergeStores([folder], { out: fromParquet });
    const { compareRuns } = await import('@inrun/cli');
    // Every kind of store, with itself and with the SQLite store: all 48 ids matched, each to itself.
    const kinds = [db, folder, fromSqlite, fromParquet];
    for (const [a, b] of kinds.flatMap((k) => [[k, k], [db, k]])) {
      const r = await compareRuns(a!, b!, { k: 5 });
      for (const c of r.columns) expect([a, b, c.column, c.examples, c.spearman]).toEqual([a, b, c.column, 48, 1]);
    }
    // curate's manifest gives each id as it was given (0 and "0"), from every kind.
    for (const store of kinds) {
      const out = join(dir, `mixed-${kinds.indexOf(store)}.jsonl`);
      expect((await cli(['curate', store, '--drop', 'lowest:48', '--out', out])).code).toBe(0);
      const got = readFileSync(out, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { example_id: unknown }).example_id);
      expect(new Set(got), store).toEqual(new Set(ids));
    }
  });
});
