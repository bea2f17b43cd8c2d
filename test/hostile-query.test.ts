// `inrun query` against hostile SQL: it reads the store and nothing else, on SQLite, Parquet and merged datasets alike.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetSink, sqliteSink } from 'inrun';
import { mergeStores } from '@inrun/cli';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { syntheticRun } from './store-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'inrun-hostile-query-'));
const sqlite = join(dir, 's.sqlite');
const parquet = join(dir, 'p');
const merged = join(dir, 'm');
const outside = join(dir, 'outside');

/** sha256 of every file under `path`, by relative name. */
function hashes(path: string): Record<string, string> {
  if (!statSync(path).isDirectory()) return { '.': createHash('sha256').update(readFileSync(path)).digest('hex') };
  const out: Record<string, string> = {};
  for (const name of readdirSync(path, { recursive: true, encoding: 'utf8' }).sort()) {
    const p = join(path, name);
    if (statSync(p).isFile()) out[name] = createHash('sha256').update(readFileSync(p)).digest('hex');
  }
  return out;
}

async function query(store: string, sql: string) {
  let out = '';
  let err = '';
  const code = await main(['query', store, sql, '--format', 'json'], { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

beforeAll(async () => {
  await syntheticRun([sqliteSink(sqlite), parquetSink(parquet)], { n: 30, steps: 4, batch: 10 });
  await mergeStores([sqlite], { out: merged });
  writeFileSync(outside, 'secret,value\nroot,1\n');
});

const STORES = [['sqlite', sqlite], ['parquet', parquet], ['merged', merged]] as const;

describe('a query reads its store and nothing else', () => {
  it.each(STORES)('%s: plain queries over every view still work', async (_, store) => {
    const r = await query(store, 'SELECT (SELECT COUNT(*) FROM examples) AS e, (SELECT COUNT(*) FROM scores) AS s, (SELECT COUNT(*) FROM steps) AS t, (SELECT COUNT(*) FROM step_scores) AS ss, (SELECT COUNT(*) FROM token_scores) AS ts, (SELECT COUNT(*) FROM example_scores) AS es');
    expect(r.err).toBe('');
    expect(JSON.parse(r.out)).toEqual([{ e: 30, s: 90, t: 4, ss: 120, ts: 60, es: 90 }]);
  });

  const writes = (store: string) => {
    const segment = store === parquet ? readdirSync(join(parquet, 'run-synthetic', 'steps')).map((f) => join(parquet, 'run-synthetic', 'steps', f))[0]! : join(dir, 'x.parquet');
    return [
      `COPY (SELECT 1 AS x) TO '${join(dir, 'copied.csv')}'`,
      `COPY (SELECT * FROM scores) TO '${segment}' (FORMAT parquet)`,
      `ATTACH '${join(dir, 'attached.db')}' AS x`,
      `EXPORT DATABASE '${join(dir, 'exported')}'`,
      'CREATE TABLE t AS SELECT 1 AS x',
      'INSERT INTO examples (run_id) VALUES (1)',
      'INSTALL httpfs',
      'LOAD httpfs',
      'SET enable_external_access = true',
      'PRAGMA journal_mode = DELETE',
      '/* a comment */ (COPY (SELECT 1) TO stdout)',
      " -- hidden\nDETACH x",
      'UPDATE examples SET label = 1',
      'DELETE FROM examples',
      'DROP VIEW example_scores',
      'VACUUM',
    ];
  };

  it.each(STORES)('%s: statements that write, attach, load or configure are refused with the same message, nothing changes', async (_, store) => {
    const before = hashes(store);
    for (const sql of writes(store)) {
      const r = await query(store, sql);
      expect([sql, r.code]).toEqual([sql, 3]);
      expect(r.err).toContain('expected a query that returns rows (the store is read-only)');
      expect(r.out).toBe('');
    }
    expect(hashes(store)).toEqual(before);
    expect(existsSync(join(dir, 'copied.csv')) || existsSync(join(dir, 'attached.db')) || existsSync(join(dir, 'exported')) || existsSync(join(dir, 'x.parquet'))).toBe(false);
  });

  it.each(STORES)('%s: reading files outside the store or over the network fails as a query (exit 3)', async (_, store) => {
    for (const sql of [
      `SELECT * FROM read_csv('${outside}')`,
      `SELECT * FROM read_csv_auto('/etc/passwd')`,
      `SELECT * FROM read_text('${outside}')`,
      `SELECT * FROM glob('${dir}/*')`,
      `SELECT * FROM read_parquet('${join(merged, 'scores', '*', '*.parquet')}')`,
      "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
    ]) {
      const r = await query(store, sql);
      expect([sql, r.code]).toEqual([sql, 3]);
      expect(r.err).toMatch(/the query failed: /);
      expect(r.out).not.toContain('root');
      expect(r.out).not.toContain('secret');
    }
  });

  it('a link inside a Parquet store or a merged dataset to a file outside is not read, as a view or by name', async () => {
    const linked = join(dir, 'p-linked');
    const other = join(dir, 'p-other');
    await syntheticRun([parquetSink(linked)], { n: 30, steps: 4, batch: 10 });
    await syntheticRun([parquetSink(other)], { n: 30, steps: 4, batch: 10 });
    const rowsOf = async (store: string, sql: string) => (JSON.parse((await query(store, sql)).out) as Record<string, number>[])[0];
    const clean = await rowsOf(linked, 'SELECT COUNT(*) AS n FROM step_rows');
    const segment = (store: string) => join(store, 'run-synthetic', 'steps', readdirSync(join(store, 'run-synthetic', 'steps'))[0]!);
    // Another store's segment, linked in beside the run's own: a view over the folder must not take it in.
    symlinkSync(segment(other), join(linked, 'run-synthetic', 'steps', 'part-999999.parquet'));
    const linkedMerged = join(dir, 'm-linked');
    await mergeStores([sqlite], { out: linkedMerged });
    const parts = join(linkedMerged, 'scores', 'run=run-synthetic');
    const scores = await rowsOf(linkedMerged, 'SELECT COUNT(*) AS n FROM scores');
    symlinkSync(join(merged, 'scores', 'run=run-synthetic', readdirSync(parts)[0]!), join(parts, 'part-999999.parquet'));
    expect(await rowsOf(linked, 'SELECT COUNT(*) AS n FROM step_rows')).toEqual(clean);
    expect(await rowsOf(linkedMerged, 'SELECT COUNT(*) AS n FROM scores')).toEqual(scores);
    for (const store of [linked, linkedMerged]) {
      const link = join(store, 'link.csv');
      symlinkSync(outside, link);
      for (const sql of [`SELECT * FROM read_csv('${link}')`, `SELECT * FROM read_text('${store === linked ? join(store, 'run-synthetic', 'run.json') : join(store, 'inrun-dataset.json')}')`]) {
        const r = await query(store, sql);
        expect([store, sql, r.code]).toEqual([store, sql, 3]);
        expect(r.out).not.toContain('secret');
      }
    }
  });

  it.each(STORES)('%s: a query that fails while it runs exits 3 like one that fails to compile', async (_, store) => {
    const sql = store === sqlite ? "SELECT json_extract(example_id || '{', '$.a') FROM examples" : "SELECT CAST(example_id || 'x' AS INTEGER) FROM examples";
    const r = await query(store, sql);
    expect(r.err).not.toContain('unexpected failure');
    expect(r.code).toBe(3);
  });

  it.each(STORES)('%s: two statements in one query are refused', async (_, store) => {
    const r = await query(store, 'SELECT 1; SELECT 2');
    expect(r.code).toBe(3);
    expect(r.err).toContain('The supplied SQL string contains more than one statement');
  });
});
