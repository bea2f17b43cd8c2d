// Every kind of store (SQLite file, Parquet folder, merged dataset) answers the schema's tables and views, with its columns.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetSink, sqliteSink, writeSourceInfluence, type Sink, type SourceInfluenceRow } from 'inrun';
import { STORE_TABLES, STORE_VIEWS, storeHas, type StoreKind } from '@inrun/store';
import { mergeStores, openStore, type StoreReader } from '@inrun/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticRun, type SyntheticRun } from './store-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'inrun-store-tables-'));
const paths: Record<StoreKind, string> = { sqlite: join(tmp, 'runs.sqlite'), parquet: join(tmp, 'pq'), merged: join(tmp, 'merged') };
const KINDS = Object.keys(paths) as StoreKind[];
const stores = {} as Record<StoreKind, StoreReader>;
let later: SyntheticRun; // started last: what latest_run must name

/** `sink`, with the run's start time set to `at` (the fixture starts every run at the same instant). */
const startingAt = (at: string, sink: Sink): Sink => ({
  ...sink,
  open: (info) => sink.open({ ...info, startedAt: at }),
  writeScores: (scores, info, point) => sink.writeScores?.(scores, { ...info, startedAt: at }, point),
});

beforeAll(async () => {
  // The later-started run is written first, so neither write order nor run id can stand in for start time.
  later = await syntheticRun([startingAt('2026-02-01T00:00:00.000Z', sqliteSink(paths.sqlite)), startingAt('2026-02-01T00:00:00.000Z', parquetSink(paths.parquet))], {
    runId: 'run-a',
    n: 30,
    steps: 4,
    batch: 10,
    seed: 1,
  });
  await syntheticRun([startingAt('2026-01-01T00:00:00.000Z', sqliteSink(paths.sqlite)), startingAt('2026-01-01T00:00:00.000Z', parquetSink(paths.parquet))], {
    runId: 'run-b',
    n: 24,
    steps: 3,
    batch: 8,
    seed: 2,
  });
  const row = (source: string, influence: number): SourceInfluenceRow => ({ target: 'val', source, method: 'untrac', influence, lossBefore: 0.5, lossAfter: 0.5 + influence, steps: 3, seconds: 0.5, stopped: null });
  writeSourceInfluence([row('web', 0.25), row('books', -0.125)], { runId: 'run-a', sqlite: paths.sqlite, parquet: paths.parquet });
  await mergeStores([paths.sqlite, paths.parquet], { out: paths.merged, onConflict: 'skip' });
  for (const kind of KINDS) stores[kind] = await openStore(paths[kind]);
});

afterAll(async () => {
  for (const kind of KINDS) await stores[kind]?.close();
});

/** The column names of a table or view, even one with no rows: one all-null row joined to none of its rows. */
async function columnsOf(store: StoreReader, name: string): Promise<string[]> {
  const rows = await store.all(`SELECT t.* FROM (SELECT 1 AS one) AS o LEFT JOIN (SELECT * FROM ${name} LIMIT 0) AS t ON true`);
  expect(rows).toHaveLength(1);
  return Object.keys(rows[0]!);
}

const expectedNames = (kind: StoreKind) => [...STORE_TABLES, ...STORE_VIEWS].filter((t) => storeHas(t, kind)).map((t) => t.name).sort();

describe('every kind of store answers the same tables and views', () => {
  it('tables(): exactly the schema names for its kind (latest_run and example_scores included), the shared ones the same everywhere', async () => {
    for (const kind of KINDS) {
      expect(stores[kind].kind).toBe(kind);
      expect((await stores[kind].tables()).sort(), kind).toEqual(expectedNames(kind));
      expect(await stores[kind].tables(), kind).toContain('latest_run');
    }
    const shared = [...STORE_TABLES, ...STORE_VIEWS].filter((t) => t.only === undefined).map((t) => t.name);
    for (const kind of KINDS) expect((await stores[kind].tables()).filter((n) => shared.includes(n)).sort(), kind).toEqual([...shared].sort());
  });

  it("each table and view has the schema's columns, in its order, in every kind", async () => {
    for (const entry of [...STORE_TABLES, ...STORE_VIEWS]) {
      for (const kind of KINDS.filter((k) => storeHas(entry, k))) {
        const names = entry.columns.map((c) => c.name);
        const got = await columnsOf(stores[kind], entry.name);
        // A view with columns that vary by run (step_rows) starts with the listed ones.
        if ('moreColumns' in entry && entry.moreColumns !== undefined) expect(got.slice(0, names.length), `${kind} ${entry.name}`).toEqual(names);
        else expect(got, `${kind} ${entry.name}`).toEqual(names);
      }
    }
  });

  it("the README's latest_run query runs on all three and gives the later-started run's per-source sums", async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const sql = /sqlite3 runs\/attribution\.sqlite "([^"]+)"/.exec(readme)?.[1];
    expect(sql).toMatch(/FROM latest_run/);
    // Ground truth: the stored totals of run-a, summed per source.
    const truth = new Map<string, number>();
    later.sources.forEach((s, i) => truth.set(s, (truth.get(s) ?? 0) + later.totals['shapley1:val']![i]!));
    const answers: [string, number][][] = [];
    for (const kind of KINDS) {
      expect(await stores[kind].all('SELECT run_id FROM latest_run'), kind).toEqual([{ run_id: 'run-a' }]);
      // Result column names differ by engine ("SUM(value)", "sum(\"value\")"): read them by position.
      const rows = (await stores[kind].all(sql!)).map((r) => Object.values(r) as [string, number]).sort((a, b) => a[0].localeCompare(b[0]));
      expect(rows.map((r) => r[0]), kind).toEqual([...truth.keys()].sort());
      for (const [source, value] of rows) expect(value, `${kind} ${source}`).toBeCloseTo(truth.get(source)!, 9);
      answers.push(rows);
    }
    for (const rows of answers.slice(1)) rows.forEach(([source, value], i) => {
      expect(source).toBe(answers[0]![i]![0]);
      expect(value).toBeCloseTo(answers[0]![i]![1], 12);
    });
  });
});

describe('docs/schema.md', () => {
  it("lists exactly the schema's tables and views, each with its columns in order", () => {
    const doc = readFileSync(new URL('../docs/schema.md', import.meta.url), 'utf8');
    const listed = new Map<string, string[]>();
    for (const line of doc.split('\n')) {
      const m = /^\| `(\w+)`[^|]* \| [^|]* \| (.*) \|$/.exec(line);
      if (m === null) continue;
      // Top-level items of the columns cell (commas inside parentheses are notes); each starts with its column.
      const items: string[] = [];
      let depth = 0;
      let item = '';
      for (const ch of m[2]!) {
        if (ch === '(') depth++;
        if (ch === ')') depth--;
        if (ch === ',' && depth === 0) {
          items.push(item.trim());
          item = '';
        } else item += ch;
      }
      items.push(item.trim());
      listed.set(m[1]!, items.flatMap((i) => /^`(\w+)`/.exec(i)?.[1] ?? []));
    }
    const schema = new Map([...STORE_TABLES, ...STORE_VIEWS].map((t) => [t.name, t.columns.map((c) => c.name)]));
    expect([...listed.keys()].sort()).toEqual([...schema.keys()].sort());
    for (const [name, columns] of schema) expect(listed.get(name), name).toEqual(columns);
  });
});
