import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parquetSink, sqliteSink } from 'inrun';
import { curate, openStore, writeReport } from '@inrun/cli';
import { main } from '../packages/cli/src/cli/program.js';
import { readRun } from '../packages/cli/src/read/stored-run.js';
import { stepSeries } from '../packages/cli/src/report/steps.js';
import { hasChromium, launch, marksPerChart, NO_CHROMIUM, visit } from './browser.js';
import { bulkStore, HOSTILE, syntheticRun } from './store-fixtures.js';

// Screenshots and reports stay here for a person to look at (ignored by git).
const OUT = 'runs/test-output/report';
mkdirSync(OUT, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), 'inrun-report-'));
if (!hasChromium) console.warn(`report.test.ts: ${NO_CHROMIUM}`);

let browser: Browser | undefined;
beforeAll(async () => {
  if (hasChromium) browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

describe('the report of a demo run', () => {
  const db = join(tmp, 'demo.sqlite');
  const out = join(OUT, 'demo-report.html');
  let harmful: { id: string; value: number }[] = [];
  let helpful: string[] = [];
  let demoOutput = '';
  // The rows whose label the demo flipped on purpose, from the store's labels (before the hostile label below).
  let flipped = new Set<string>();

  beforeAll(async () => {
    // The demo's own code path on a slice: 500 training rows (58 flipped), 3 epochs at a learning rate that
    // learns in their 48 steps (~30 s here). At the default --lr 0.005 and --epochs 1 the target stays at chance and the
    // queue holds 7 flipped rows of 50; here 30 (the full demo store: 37).
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/demo.ts', '--limit', '700', '--epochs', '3', '--lr', '0.03', '--db', db], {
      env: { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.json' },
      maxBuffer: 1 << 24,
    });
    demoOutput = stdout;
    // A hostile training text, label and source on the most harmful example: they must stay inert.
    const d = new Database(db);
    flipped = new Set((d.prepare("SELECT example_id AS id FROM examples WHERE label LIKE '%(flipped)'").all() as { id: string }[]).map((r) => r.id));
    const lowest = d.prepare("SELECT s.example_key AS k FROM scores s JOIN columns c USING (run_id, column_id) WHERE c.name = 'shapley1:val' ORDER BY s.value LIMIT 1").get() as { k: number };
    d.prepare('UPDATE examples SET text = ?, label = ? WHERE example_key = ?').run(HOSTILE, '<img src=x onerror="window.__z=1">', lowest.k);
    const ordered = d.prepare("SELECT example_id AS id, value FROM example_scores WHERE column_name = 'shapley1:val' ORDER BY value").all() as { id: string; value: number }[];
    d.close();
    harmful = ordered.slice(0, 25);
    helpful = ordered.slice(-25).reverse().map((r) => r.id);
    await writeReport(db, { out });
  }, 240_000);

  it('is written by the demo, which prints where and the command that writes it again', () => {
    const demoReport = db.replace(/\.sqlite$/, '-report.html');
    expect(demoOutput).toContain(`Report: ${demoReport} (open it in a browser)`);
    expect(demoOutput).toContain(`npx inrun report ${db} --out ${demoReport}`);
    expect(readFileSync(demoReport, 'utf8')).toMatch(/^<!doctype html>[\s\S]*<dt>metrics<\/dt><dd>test accuracy \d+\.\d%<\/dd>[\s\S]*Most harmful \(lowest shapley1:val\)/);
  });

  it('escapes every string from the store and loads nothing from anywhere', () => {
    const html = readFileSync(out, 'utf8');
    expect(html).not.toContain('<script>window.__x');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;window.__x=1&lt;/script&gt;');
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none';[^"]*script-src 'sha256-/);
    expect(html.match(/<script>/g)).toHaveLength(1);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('predicts the effect of dropping the lowest 5% as the sum of their values, total and per target row, as curate does', async () => {
    const html = readFileSync(out, 'utf8');
    const store = await openStore(db);
    const [{ n }] = (await store.all('SELECT COUNT(*) AS n FROM scores WHERE column_id = 0')) as [{ n: number }];
    const [info] = (await store.all('SELECT info FROM runs')) as [{ info: string }];
    const rows = await store.all('SELECT value FROM scores WHERE column_id = 0 ORDER BY value LIMIT ?', [Math.ceil(0.05 * n)]);
    await store.close();
    const targetRows = (JSON.parse(info.info) as { targets: { rows: number }[] }).targets[0]!.rows;
    const sum = rows.reduce((s, r) => s + Number(r['value']), 0);
    const m = /dropping the lowest 5% \((\d+) examples\) predicts (-?[\d.e+-]+) \(the target loss summed over its (\d+) rows\), (-?[\d.e+-]+) per target row/.exec(html);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(Math.ceil(0.05 * n));
    expect(Number(m![2])).toBeCloseTo(sum, 1);
    expect(Number(m![3])).toBe(targetRows);
    expect(Number(m![4])).toBeCloseTo(sum / targetRows, 3);
    // curate, on the same rows, prints the same two numbers.
    const manifest = await curate(db, { drop: 'lowest:5%', out: join(tmp, 'drop.csv') });
    expect(manifest.dropped).toBe(Math.ceil(0.05 * n));
    expect(manifest.targetRows).toBe(targetRows);
    expect(manifest.predictedChange).toBeCloseTo(sum, 6);
    expect(manifest.predictedChangePerRow).toBeCloseTo(sum / targetRows, 8);
    const { formatNumber } = await import('../packages/cli/src/report/html.js');
    expect(m![2]).toBe(formatNumber(manifest.predictedChange!));
    expect(m![4]).toBe(formatNumber(manifest.predictedChangePerRow!));
  });

  it('marks each scored word by its sign, a score of 0 as neutral', () => {
    const html = readFileSync(out, 'utf8');
    const words = [...html.matchAll(/<span class="tok"><mark class="(\w+)">[^<]*<\/mark> ([^<]+)<\/span>/g)].map((m) => ({ mark: m[1], value: Number(m[2]!.replace(/,/g, '')) }));
    expect(words.length).toBeGreaterThan(10);
    for (const w of words) expect(w.mark).toBe(w.value > 0 ? 'pos' : w.value < 0 ? 'neg' : 'zero');
  });

  it.skipIf(!hasChromium)('renders in chromium: no console errors, marks in every chart, hostile text inert and literal, sortable tables', async () => {
    const { page, errors, requests } = await visit(browser!, out);
    await page.screenshot({ path: join(OUT, 'demo-report.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    const marks = await marksPerChart(page);
    // The findings' review-queue curve, sources, 2 histograms x 3 columns, the drop curve, the inspection curve
    // (flipped labels), 2 per-step charts.
    expect(marks).toHaveLength(12);
    for (const m of marks) expect(m).toBeGreaterThan(0);
    // Every axis label reads as a plain number: none in exponent notation (1e-3, -1.2e+1).
    const labels = await page.locator('figure.chart svg g.role-axis-label text').allTextContents();
    expect(labels.length).toBeGreaterThan(20);
    expect(labels.filter((t) => /\d[eE][+-]?\d/.test(t))).toEqual([]);
    expect(await page.evaluate('[typeof window.__x, typeof window.__y, typeof window.__z]')).toEqual(['undefined', 'undefined', 'undefined']);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.getByText('<script>window.__x=1</script>', { exact: false }).count()).toBeGreaterThan(0);
    expect(await page.getByText('<img src=x onerror="window.__z=1">').count()).toBeGreaterThan(0);

    // The tables list what the store holds, in order.
    // Found by caption: the findings put tables of their own (some without a caption) ahead of these.
    const byCaption = (text: string) => page.locator('table.sortable').filter({ has: page.locator('caption', { hasText: text }) });
    const ids = (text: string) => byCaption(text).locator('tbody tr td:nth-child(2)').allTextContents();
    expect(await byCaption('Most helpful (highest shapley1:val)').count()).toBe(1);
    expect(await ids('Most helpful (highest shapley1:val)')).toEqual(helpful);
    expect(await ids('Most harmful (lowest shapley1:val)')).toEqual(harmful.map((r) => r.id));

    // Clicking a header sorts under the CSP (the one script runs by its hash).
    const valueHeader = byCaption('Most helpful (highest shapley1:val)').locator('th', { hasText: /^shapley1:val$/ });
    await valueHeader.click();
    expect(await valueHeader.getAttribute('aria-sort')).toBe('ascending');
    const cells = byCaption('Most helpful (highest shapley1:val)').locator('tbody tr td:nth-child(6)');
    const values: number[] = [];
    for (let i = 0; i < (await cells.count()); i++) values.push(Number(await cells.nth(i).getAttribute('data-v')));
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values[0]).toBeLessThan(values.at(-1)!);
  });

  it.skipIf(!hasChromium)('opens on the findings: the review queue is mostly flipped labels, all on the first screen of 1280 x 800', async () => {
    const { page, errors } = await visit(browser!, out);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: join(OUT, 'demo-report-first-screen.png') });
    expect(errors).toEqual([]);
    // The heading and every finding (and warning) end inside the first screen, scrolled to the top.
    const boxes = (await page.evaluate(
      `[...document.querySelectorAll('#findings > h2, #findings > .warn, #findings ol.findings > li')].map((e) => e.getBoundingClientRect().bottom)`,
    )) as number[];
    expect(boxes.length).toBeGreaterThanOrEqual(4);
    for (const bottom of boxes) expect(bottom).toBeLessThanOrEqual(800);
    expect(await page.locator('#findings ol.findings > li').first().textContent()).toMatch(/^Review the 50 rows of highest self-influence first/);
    // The queue's 50 rows, counted against the store's labels: the page ranks from the scores alone.
    const queue = await page.locator('table.sortable').filter({ has: page.locator('caption', { hasText: 'Review queue (50 highest tracin_self)' }) }).locator('tbody tr td:nth-child(2)').allTextContents();
    expect(queue).toHaveLength(50);
    expect(flipped.size).toBeGreaterThan(40);
    const found = queue.filter((id) => flipped.has(id)).length;
    expect(found).toBeGreaterThan(25);
    // No axis of any chart in exponent notation.
    const labels = await page.locator('figure.chart svg g.role-axis-label text').allTextContents();
    expect(labels.length).toBeGreaterThan(20);
    expect(labels.filter((t) => /\d[eE][+-]?\d/.test(t))).toEqual([]);
  });

  it.skipIf(!hasChromium)('reads the same with scripts off', async () => {
    const { page, errors } = await visit(browser!, out, { javaScriptEnabled: false });
    expect(errors).toEqual([]);
    expect((await marksPerChart(page)).filter((m) => m > 0)).toHaveLength(12);
    expect(await page.locator('table.sortable tbody tr').count()).toBeGreaterThan(75);
  });
});

describe('SQLite and Parquet stores of the same run', () => {
  it('answer the same tables, and their reports agree with the run', async () => {
    const sqlite = join(tmp, 'synthetic.sqlite');
    const parquet = join(tmp, 'synthetic-pq');
    const truth = await syntheticRun([sqliteSink(sqlite), parquetSink(parquet)]);
    const expected = new Map<string, number>();
    truth.sources.forEach((s, i) => expected.set(s, (expected.get(s) ?? 0) + truth.totals['shapley1:val']![i]!));
    for (const path of [sqlite, parquet]) {
      const store = await openStore(path);
      const bySource = await store.all("SELECT source, SUM(value) AS v, COUNT(*) AS n FROM example_scores WHERE column_name = 'shapley1:val' GROUP BY source ORDER BY source");
      expect(bySource.map((r) => r['source'])).toEqual([...expected.keys()].sort());
      for (const r of bySource) expect(Number(r['v'])).toBeCloseTo(expected.get(String(r['source']))!, 4);
      // Per-step rows add up to the totals; the target loss over steps is there.
      const perStep = await store.all('SELECT e.example_id AS id, SUM(ss.value) AS v FROM step_scores ss JOIN examples e USING (run_id, example_key) WHERE ss.column_id = 1 GROUP BY e.example_id');
      for (const r of perStep) expect(Number(r['v'])).toBeCloseTo(truth.totals['tracin_self']![truth.ids.indexOf(String(r['id']))]!, 3);
      const steps = await store.all('SELECT step, target_losses FROM steps ORDER BY step');
      expect(steps).toHaveLength(40);
      expect(JSON.parse(String(steps[0]!['target_losses']))).toEqual({ val: 100 });
      // Per-step view: each bucket's values add up to its drop of the target loss (the fixture makes them equal).
      const series = (await stepSeries(store, await readRun(store), (await readRun(store)).columns[0]!))!;
      expect(series.buckets).toHaveLength(40);
      for (const b of series.buckets.slice(0, -1)) expect(b.total / b.lossDrop!).toBeCloseTo(1, 4);
      expect([...series.buckets[0]!.bySource.keys()].sort()).toEqual(['<b>forum</b>', 'books', 'web']);
      const words = await store.all("SELECT word FROM token_scores t JOIN columns c USING (run_id, column_id) WHERE c.name = 'tracin_we:val' AND example_key = 1 ORDER BY rank");
      expect(words.map((w) => w['word'])).toEqual(['cheap', 'offers']);
      await store.close();
    }
    const a = await writeReport(sqlite, { out: join(OUT, 'synthetic-sqlite.html') });
    const b = await writeReport(parquet, { out: join(OUT, 'synthetic-parquet.html') });
    const sourceTable = (file: string) => /<section id="sources">[\s\S]*?<\/table>/.exec(readFileSync(file, 'utf8'))?.[0].replace(/<svg[\s\S]*<\/svg>/, '');
    expect(a.runId).toBe(b.runId);
    expect(sourceTable(b.out)).toBe(sourceTable(a.out));
    for (const file of [a.out, b.out]) {
      // The markup-named source, the hostile text (example 0) and meta: escaped in tables and the summary.
      const html = readFileSync(file, 'utf8');
      expect(html).not.toMatch(/<b>forum|<script>window|<img/);
      expect(html).toContain('<td>&lt;b&gt;forum&lt;/b&gt;</td>');
      expect(html).toContain('note = &lt;script&gt;window.__x=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__y=1&quot;&gt;');
    }
  });
});

describe('a store of 1M examples x 3 columns', () => {
  const db = join(tmp, 'bulk.sqlite');
  const n = 1_000_000;

  it('streams into a report under 10 MB whose tables hold the true extremes', async () => {
    await bulkStore(db, n);
    const started = Date.now();
    const r = await writeReport(db, { out: join(OUT, 'bulk-report.html') });
    console.log(`report of ${n} examples x 3 columns: ${((Date.now() - started) / 1000).toFixed(1)} s, ${(r.bytes / 1e6).toFixed(2)} MB`);
    expect(r.bytes).toBeLessThan(10e6);
    let lowest = 0;
    let highest = 0;
    for (let i = 1; i < n; i++) {
      if (Math.sin(i) < Math.sin(lowest)) lowest = i;
      if (Math.sin(i) > Math.sin(highest)) highest = i;
    }
    const html = readFileSync(r.out, 'utf8');
    const first = (caption: string) => new RegExp(`<caption>${caption}</caption>.*?<tbody>\\n<tr><td class="num" data-v="1">1</td><td class="num" data-v="(\\d+)"`, 's').exec(html)?.[1];
    expect(Number(first('Most harmful \\(lowest shapley1:val\\)'))).toBe(lowest);
    expect(Number(first('Most helpful \\(highest shapley1:val\\)'))).toBe(highest);
    // 25 rows per table, three tables: the page never lists the million.
    expect(html.match(/<tr>/g)!.length).toBeLessThan(200);
  });

  it('answers a GROUP BY over it through inrun query', async () => {
    let out = '';
    const code = await main(['query', db, "SELECT source, COUNT(*) AS n, SUM(value) AS v FROM example_scores WHERE column_name = 'tracin_self' GROUP BY source", '--format', 'json'], {
      out: (s) => void (out += s),
      err: (s) => void (out += s),
    });
    expect(code).toBe(0);
    const rows = JSON.parse(out) as { source: string; n: number; v: number }[];
    const sums = new Map<string, number>();
    for (let i = 0; i < n; i++) sums.set(`s${i % 20}`, (sums.get(`s${i % 20}`) ?? 0) + (i % 97));
    expect(rows).toHaveLength(20);
    for (const r of rows) expect([r.n, r.v]).toEqual([n / 20, sums.get(r.source)]);
  });

  it.skipIf(!hasChromium)('renders in chromium with marks in every chart', async () => {
    const { page, errors } = await visit(browser!, join(OUT, 'bulk-report.html'));
    await page.screenshot({ path: join(OUT, 'bulk-report.png') });
    expect(errors).toEqual([]);
    const marks = await marksPerChart(page);
    expect(marks.length).toBeGreaterThanOrEqual(8);
    for (const m of marks) expect(m).toBeGreaterThan(0);
  });
});
