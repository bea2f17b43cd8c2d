// curate's label-lowest and the report's findings (the within-label table, the review queue's share counts) against brute force over a stored run's rows.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { parquetSink, sqliteSink } from 'inrun';
import { curate, writeReport } from '@inrun/cli';
import { dropCount } from '../packages/cli/src/report/curate.js';
import { syntheticRun } from './store-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'inrun-report-findings-'));
const sqlite = join(tmp, 'run.sqlite');
const parquet = join(tmp, 'run-parquet');
const TARGET_ROWS = 64; // runInfo's target "val"

interface Row {
  readonly key: number;
  readonly id: string;
  readonly label: string | null;
  readonly value: number;
  readonly self: number;
}
/** The rows as the run wrote them (the Parquet store's), and as the SQLite store holds them after some labels are removed. */
let original: Row[] = [];
let rows: Row[] = [];
const UNLABELLED = [3, 17, 40, 41, 299];

beforeAll(async () => {
  await syntheticRun([sqliteSink(sqlite)], { n: 300, seed: 11 });
  await syntheticRun([parquetSink(parquet)], { n: 300, seed: 11 });
  const d = new Database(sqlite);
  original = d
    .prepare(
      `SELECT e.example_key AS key, e.example_id AS id, e.label AS label, v.value AS value, t.value AS self FROM examples e
       JOIN scores v ON v.run_id = e.run_id AND v.example_key = e.example_key AND v.column_id = (SELECT column_id FROM columns WHERE name = 'shapley1:val')
       JOIN scores t ON t.run_id = e.run_id AND t.example_key = e.example_key AND t.column_id = (SELECT column_id FROM columns WHERE name = 'tracin_self')
       ORDER BY e.example_key`,
    )
    .all() as Row[];
  // Rows without a label are a label group of their own.
  d.prepare(`UPDATE examples SET label = NULL WHERE example_key IN (${UNLABELLED.join(', ')})`).run();
  d.close();
  rows = original.map((r) => (UNLABELLED.includes(r.key) ? { ...r, label: null } : r));
  await writeReport(sqlite, { out: join(tmp, 'report.html') });
});

/** Brute force: rows by value minus the mean value of their label (null its own label), ties by key. */
function withinLabel(of: readonly Row[]): Row[] {
  const sums = new Map<string | null, { n: number; sum: number }>();
  for (const r of of) {
    const s = sums.get(r.label) ?? { n: 0, sum: 0 };
    sums.set(r.label, { n: s.n + 1, sum: s.sum + r.value });
  }
  const rel = (r: Row) => r.value - sums.get(r.label)!.sum / sums.get(r.label)!.n;
  return [...of].sort((a, b) => rel(a) - rel(b) || a.key - b.key);
}

function manifest(file: string): { id: string; label: string; value: number; perRow: number }[] {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  expect(head).toBe('example_id,source,label,column,score,rank,value,value_per_target_row');
  return lines.map((l) => {
    const f = l.split(',');
    return { id: f[0]!, label: f[2]!, value: Number(f[6]), perRow: Number(f[7]) };
  });
}

describe('curate --drop label-lowest', () => {
  it('drops the rows of lowest value within their label, as brute force ranks them, and predicts their summed value', async () => {
    const truth = withinLabel(rows);
    // The labels' means differ (flipped rows were pushed down): within-label is not the plain lowest.
    const plainLowest = [...rows].sort((a, b) => a.value - b.value).slice(0, 25).map((r) => r.id);
    expect(truth.slice(0, 25).map((r) => r.id)).not.toEqual(plainLowest);
    for (const [spec, count] of [['label-lowest:25', 25], ['label-lowest:10%', dropCount(rows.length, 10)]] as const) {
      const out = join(tmp, `${spec.replace(/\W/g, '_')}.csv`);
      const r = await curate(sqlite, { drop: spec, out });
      const expected = truth.slice(0, count);
      expect(r.dropped).toBe(count);
      expect(manifest(out).map((m) => m.id)).toEqual(expected.map((e) => e.id));
      const sum = expected.reduce((a, e) => a + e.value, 0);
      expect(r.predictedChange).toBeCloseTo(sum, 9);
      expect(r.targetRows).toBe(TARGET_ROWS);
      expect(r.predictedChangePerRow).toBeCloseTo(sum / TARGET_ROWS, 11);
      for (const [m, e] of manifest(out).map((m, i) => [m, expected[i]!] as const)) {
        expect(m.value).toBeCloseTo(e.value, 9);
        expect(m.perRow).toBeCloseTo(e.value / TARGET_ROWS, 11);
      }
    }
  });

  it('ranks a Parquet store of the same run the same way', async () => {
    const out = join(tmp, 'parquet-within.csv');
    const r = await curate(parquet, { drop: 'label-lowest:30', out });
    expect(r.dropped).toBe(30);
    expect(manifest(out).map((m) => m.id)).toEqual(withinLabel(original).slice(0, 30).map((e) => e.id));
  });
});

describe("the report's findings", () => {
  const html = () => readFileSync(join(tmp, 'report.html'), 'utf8');

  it('lists the rows harmful within their label in the order curate --drop label-lowest drops them', () => {
    const table = /<caption>Lowest shapley1:val within its label<\/caption>[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(html());
    expect(table).not.toBeNull();
    const ids = [...table![1]!.matchAll(/<tr><td[^>]*>[^<]*<\/td><td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
    expect(ids).toEqual(withinLabel(rows).slice(0, 25).map((r) => r.id));
  });

  it('gives each finding the predicted effect inrun curate prints for the same --drop, total and per target row, with its unit', async () => {
    const { formatNumber } = await import('../packages/cli/src/report/html.js');
    const list = /<ol class="findings">([\s\S]*?)<\/ol>/.exec(html())![1]!;
    const unescape = (t: string) => t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    const items = [...list.matchAll(/<li>([\s\S]*?)<\/li>/g)].map((m) => m[1]!).filter((li) => li.includes('--drop '));
    // The review queue, the rows harmful within their label, the most harmful source after its label mix.
    expect(items.map((li) => /--drop (\S+?)(?=:)/.exec(li)?.[1])).toEqual(['self-top', 'label-lowest', 'source']);
    for (const li of items) {
      const drop = unescape(/--drop (\S+) --out/.exec(li)![1]!);
      const shown = /predicts <b>(-?[\d.,e+-]+)<\/b> \(the target loss summed over its (\d+) rows\), <b>(-?[\d.,e+-]+)<\/b> per target row \(the change of the mean loss\)/.exec(li);
      expect(shown, drop).not.toBeNull();
      const r = await curate(sqlite, { drop, out: join(tmp, 'effect.csv') });
      expect(r.dropped).toBeGreaterThan(0);
      expect(shown![1], drop).toBe(formatNumber(r.predictedChange!));
      expect(Number(shown![2])).toBe(TARGET_ROWS);
      expect(shown![3], drop).toBe(formatNumber(r.predictedChangePerRow!));
      // The manifest's rows add up to the same total and per-row figures.
      const m = manifest(join(tmp, 'effect.csv'));
      expect(m.reduce((a, x) => a + x.value, 0)).toBeCloseTo(r.predictedChange!, 9);
      expect(m.reduce((a, x) => a + x.perRow, 0)).toBeCloseTo(r.predictedChangePerRow!, 11);
    }
  });

  it("counts the rows holding 50%, 80% and 90% of the expected problems, and the queue's share, as brute force does", () => {
    const values = rows.map((r) => r.self);
    const median = [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
    const excess = [...values].sort((a, b) => b - a).map((v) => Math.max(0, v - median));
    const total = excess.reduce((a, b) => a + b, 0);
    const held = (k: number) => excess.slice(0, k).reduce((a, b) => a + b, 0) / total;
    const rowsFor = (t: number) => excess.findIndex((_, i) => held(i + 1) >= t - 1e-12) + 1;
    const m = /They hold ([\d.]+)% of the expected problems; (\d+) rows \(([\d.]+)%\) for 50%, (\d+) rows \(([\d.]+)%\) for 80%, (\d+) rows \(([\d.]+)%\) for 90%/.exec(html());
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeCloseTo(100 * held(50), 1);
    for (const [i, t] of [[2, 0.5], [4, 0.8], [6, 0.9]] as const) {
      expect(Number(m![i])).toBe(rowsFor(t));
      expect(Number(m![i + 1])).toBeCloseTo((100 * rowsFor(t)) / rows.length, 1);
    }
  });
});
