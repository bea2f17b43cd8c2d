import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { parquetSink, sqliteSink } from 'inrun';
import { main } from '../packages/cli/src/cli/program.js';
import { spearman } from '../eval/metrics.js';
import { syntheticRun, type SyntheticRun } from './store-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'inrun-cli-'));
const db = join(tmp, 'run.sqlite');
const pq = join(tmp, 'run-pq');
const other = join(tmp, 'other.sqlite');
let truth: SyntheticRun;
let otherTruth: SyntheticRun;

/** Runs the CLI in this process, as the executable does, capturing what it writes. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** Runs the real executable (node + tsx) for the exit status a shell sees. */
async function spawnCli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'packages/cli/src/cli/inrun.ts', ...argv], { env: { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.json' } });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const f = e as { code: number; stdout: string; stderr: string };
    return { code: f.code, out: f.stdout, err: f.stderr };
  }
}

const parseCsv = (text: string) => {
  const [head, ...lines] = text.trim().split('\n');
  const names = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i]!, v])));
};

beforeAll(async () => {
  truth = await syntheticRun([sqliteSink(db), parquetSink(pq)]);
  otherTruth = await syntheticRun([sqliteSink(other)], { runId: 'run-other', seed: 8 });
});

describe('help and errors', () => {
  it('prints --help for the program and every command', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    expect(top.out).toMatch(/Usage: inrun \[options\] \[command\]/);
    expect(top.out).toMatch(/Exit codes: 0 done, 1 unexpected failure, 2 bad command line/);
    for (const [command, option] of [['report', '--out <file>'], ['query', '--format <format>'], ['curate', '--drop <spec>'], ['compare', '-k <n>']] as const) {
      const { code, out } = await cli(command, '--help');
      expect(code).toBe(0);
      expect(out).toContain(`Usage: inrun ${command} [options]`);
      expect(out).toContain(option);
    }
    expect((await cli('query', '--help')).out).toContain('example_scores(run_id, example_id, source, label, column_name');
  });

  it('exits 0 on help and 3 on a missing store from the real executable', async () => {
    const help = await spawnCli('curate', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: inrun curate');
    const missing = await spawnCli('report', join(tmp, 'nope.sqlite'));
    expect(missing.code).toBe(3);
    expect(missing.err).toContain('inrun: store: no store at');
  });

  it('says what is wrong, with an exit code per kind of error', async () => {
    const nope = join(tmp, 'nope.sqlite');
    for (const argv of [['report', nope], ['query', nope, 'SELECT 1'], ['curate', nope, '--drop', 'negative', '--out', join(tmp, 'x.csv')], ['compare', nope, db]]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(3);
      expect(r.err).toMatch(/^inrun: store: no store at .*nope\.sqlite/);
    }
    const notStore = join(tmp, 'not-a-store.sqlite');
    writeFileSync(notStore, 'hello');
    expect(await cli('report', notStore)).toMatchObject({ code: 3, err: expect.stringMatching(/is not an inrun SQLite store/) as unknown });

    const newer = join(tmp, 'newer.sqlite');
    copyFileSync(db, newer);
    const d = new Database(newer);
    d.prepare("UPDATE inrun_meta SET value = '99' WHERE key = 'schema_version'").run();
    d.close();
    for (const argv of [['report', newer, '--out', join(tmp, 'n.html')], ['query', newer, 'SELECT 1']]) {
      expect(await cli(...argv)).toMatchObject({ code: 4, err: expect.stringContaining('has SQLite schema version 99, newer than this inrun') as unknown });
    }
    const newerPq = join(tmp, 'newer-pq');
    cpSync(pq, newerPq, { recursive: true });
    const runJson = join(newerPq, truth.runId, 'run.json');
    writeFileSync(runJson, JSON.stringify({ ...(JSON.parse(readFileSync(runJson, 'utf8')) as object), layoutVersion: 99 }));
    expect(await cli('query', newerPq, 'SELECT 1')).toMatchObject({ code: 4, err: expect.stringContaining('Parquet layout version 99, newer') as unknown });

    expect(await cli('curate', db, '--drop', 'lowest:5%', '--column', 'nope', '--out', join(tmp, 'x.csv'))).toMatchObject({
      code: 2,
      err: 'inrun: column: no column "nope" in run "run-synthetic"; its columns: shapley1:val, tracin_self, tracin_we:val\n',
    });
    expect(await cli('report', db, '--run', 'nope')).toMatchObject({ code: 2, err: expect.stringMatching(/^inrun: run: no run "nope" in .*; stored runs: run-synthetic\n$/) as unknown });
    expect(await cli('report', db, '--target', 'test')).toMatchObject({ code: 2, err: expect.stringContaining('no column of target "test"') as unknown });
    expect(await cli('curate', db, '--drop', 'lowest:ten', '--out', join(tmp, 'x.csv'))).toMatchObject({ code: 2, err: expect.stringContaining('inrun: drop: expected lowest:N|N%') as unknown });
    expect(await cli('curate', db, '--drop', 'negative', '--out', join(tmp, 'x.txt'))).toMatchObject({ code: 2, err: expect.stringContaining('expected a .csv or .jsonl file') as unknown });
    for (const store of [db, pq]) {
      expect(await cli('query', store, 'SELECT no_such_column FROM scores')).toMatchObject({ code: 3, err: expect.stringMatching(/^inrun: sql: the query failed: .*no_such_column/) as unknown });
    }
    expect(await cli('query', db, 'DELETE FROM scores')).toMatchObject({ code: 3, err: 'inrun: sql: expected a query that returns rows (the store is read-only)\n' });
    expect((await cli('query', db, 'SELECT 1', '--format', 'xml')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('curate', db)).code).toBe(2);
  });
});

describe('query', () => {
  it('answers a GROUP BY over a SQLite file and a Parquet folder alike', async () => {
    const expected = new Map<string, { n: number; v: number }>();
    truth.sources.forEach((s, i) => {
      const e = expected.get(s) ?? { n: 0, v: 0 };
      e.n += 1;
      e.v += truth.totals['tracin_self']![i]!;
      expected.set(s, e);
    });
    const sql = "SELECT source, COUNT(*) AS n, SUM(value) AS v FROM example_scores WHERE column_name = 'tracin_self' GROUP BY source ORDER BY source";
    for (const store of [db, pq]) {
      const csv = await cli('query', store, sql, '--format', 'csv');
      expect(csv.code).toBe(0);
      const rows = parseCsv(csv.out);
      expect(rows.map((r) => r['source'])).toEqual([...expected.keys()].sort());
      for (const r of rows) {
        expect(Number(r['n'])).toBe(expected.get(r['source']!)!.n);
        expect(Number(r['v'])).toBeCloseTo(expected.get(r['source']!)!.v, 3);
      }
      const json = JSON.parse((await cli('query', store, sql, '--format', 'json')).out) as { source: string; n: number }[];
      expect(json.map((r) => [r.source, r.n])).toEqual(rows.map((r) => [r['source'], Number(r['n'])]));
      const table = await cli('query', store, sql);
      expect(table.out).toMatch(/^source +n +v\n-+ +-+ +-+\n/);
      expect(table.out).toContain('(3 rows)');
    }
  });
});

describe('curate', () => {
  const order = (column: string, descending = false) =>
    truth.ids.map((_, i) => i).sort((a, b) => (descending ? -1 : 1) * (truth.totals[column]![a]! - truth.totals[column]![b]!));

  it('drops the lowest values and predicts the change as the sum of their first-order values', async () => {
    const out = join(tmp, 'lowest.csv');
    const r = await cli('curate', db, '--drop', 'lowest:10%', '--out', out);
    expect(r.code).toBe(0);
    const rows = parseCsv(readFileSync(out, 'utf8'));
    const expected = order('shapley1:val').slice(0, Math.ceil(0.1 * truth.ids.length));
    expect(rows.map((x) => x['example_id'])).toEqual(expected.map((i) => truth.ids[i]));
    expect(rows.map((x) => Number(x['rank']))).toEqual(expected.map((_, k) => k + 1));
    expect(rows.map((x) => x['source'])).toEqual(expected.map((i) => truth.sources[i]));
    const predicted = expected.reduce((s, i) => s + truth.totals['shapley1:val']![i]!, 0);
    const shown = /Predicted change of the target loss: (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)/.exec(r.out)?.[1];
    expect(Number(shown)).toBeCloseTo(predicted, 2);
    // Per target row (the synthetic target has 64 rows): on the command line and in each manifest row.
    const perRow = /, (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?) per target row \(the change of the mean loss\)/.exec(r.out)?.[1];
    expect(r.out).toContain("the loss summed over the target's 64 rows");
    expect(Number(perRow)).toBeCloseTo(predicted / 64, 3);
    for (const x of rows) expect(Number(x['value_per_target_row'])).toBeCloseTo(Number(x['value']) / 64, 10);
    expect(r.out).toContain(`Wrote ${out}: 30 of 300 examples of run run-synthetic to drop (ranked by shapley1:val)`);
  });

  it('drops the negative, the highest self-influence, or a whole source, from either kind of store', async () => {
    for (const store of [db, pq]) {
      const negative = join(tmp, 'negative.jsonl');
      expect((await cli('curate', store, '--drop', 'negative', '--column', 'tracin_we:val', '--out', negative)).code).toBe(0);
      const rows = readFileSync(negative, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { example_id: string; score: number; value: number; column: string });
      expect(rows).toHaveLength(truth.totals['tracin_we:val']!.filter((v) => v < 0).length);
      expect(rows.every((x) => x.score < 0 && x.column === 'tracin_we:val')).toBe(true);
      // The prediction still sums the first-order value of the same target.
      expect(rows[0]!.value).toBeCloseTo(truth.totals['shapley1:val']![truth.ids.indexOf(rows[0]!.example_id)]!, 5);

      const self = join(tmp, 'self.csv');
      expect((await cli('curate', store, '--drop', 'self-top:5', '--out', self)).code).toBe(0);
      expect(parseCsv(readFileSync(self, 'utf8')).map((x) => x['example_id'])).toEqual(order('tracin_self', true).slice(0, 5).map((i) => truth.ids[i]));

      const source = join(tmp, 'source.jsonl');
      expect((await cli('curate', store, '--drop', 'source:<b>forum</b>', '--out', source)).code).toBe(0);
      const dropped = readFileSync(source, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { example_id: string }).example_id);
      expect(new Set(dropped)).toEqual(new Set(truth.ids.filter((_, i) => truth.sources[i] === '<b>forum</b>')));
    }
  });
});

describe('compare', () => {
  it("gives Spearman's rho and top-k overlaps per shared column", async () => {
    const same = await cli('compare', db, pq);
    expect(same.code).toBe(0);
    expect(same.out).toMatch(/shapley1:val +300 +1 +100 +1 +1\n/);
    const r = await cli('compare', db, other, '-k', '30');
    expect(r.code).toBe(0);
    for (const column of ['shapley1:val', 'tracin_self', 'tracin_we:val']) {
      const rho = spearman(truth.totals[column]!, otherTruth.totals[column]!);
      const line = new RegExp(`${column.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +300 +(-?[\\d.e-]+) +30 `).exec(r.out);
      expect(Number(line?.[1]), column).toBeCloseTo(rho, 3);
    }
  });
});
