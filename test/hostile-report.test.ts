// The report and curate against hostile or broken stores: every stored string is data, outputs never overwrite inputs.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { parquetSink, sqliteSink, type RunInfo } from 'inrun';
import { writeReport } from '@inrun/cli';
import { describe, expect, it } from 'vitest';
import { runInfo, syntheticRun } from './store-fixtures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-hostile-report-'));
const REFRESH = '<meta http-equiv="refresh" content="0;url=https://example.invalid/">';
const IMG = '<img src="https://example.invalid/x.png">';

/** Run info whose every string (and some numbers) carries markup, as a hostile store could hold. */
function hostileInfo(runId: string): RunInfo {
  const info = runInfo(runId);
  return {
    ...info,
    inrunVersion: REFRESH,
    tfjsVersion: IMG,
    backend: IMG,
    model: { name: REFRESH, className: IMG, params: 1000 },
    optimizer: { className: REFRESH, attribution: IMG as 'exact' },
    lossReduction: IMG as 'mean',
    methods: [REFRESH as 'shapley1', ...info.methods],
    targets: [{ name: 'val', rows: 64 }],
    layers: {
      covered: [{ name: REFRESH, kind: IMG as 'dense', params: 900, path: 'pairwise' }],
      skipped: [{ name: IMG, className: REFRESH, reason: IMG }],
      coveredParams: 900,
      trainableParams: 1000,
    },
    meta: { [REFRESH]: IMG, nested: { deeper: REFRESH } },
  };
}

/** Every tag of the page that is not one the report itself writes. */
function foreignTags(html: string): string[] {
  const tags = html.match(/<(meta|img|link|iframe|object|embed|base|form|a)\b[^>]*>/gi) ?? [];
  return tags.filter((t) => !/^<meta (charset|http-equiv="Content-Security-Policy"|name="viewport")/.test(t) && !/^<a href="#/.test(t));
}

describe('the report escapes every string of the stored run info', () => {
  it('SQLite: model name, layer names, meta, versions and numbers that are not numbers all come out as text', async () => {
    const dir = tmp();
    const db = join(dir, 's.sqlite');
    await syntheticRun([sqliteSink(db)], { n: 30, steps: 4, batch: 10 });
    const d = new Database(db);
    d.prepare('UPDATE runs SET info = ?, model = ?, optimizer = ?, status = ?, started_at = ?').run(JSON.stringify(hostileInfo('run-synthetic')), REFRESH, IMG, IMG, REFRESH);
    d.close();
    const out = join(dir, 'r.html');
    // The store as a user types it, relative to where they are.
    const typed = relative(process.cwd(), db);
    await writeReport(typed, { out });
    const html = readFileSync(out, 'utf8');
    expect(foreignTags(html)).toEqual([]);
    expect(html).not.toContain('example.invalid/"');
    expect(html).toContain('&lt;meta http-equiv=&quot;refresh&quot;');
    // The page names the store as typed and links nothing of the author's file system.
    expect(html).toContain(`<code>${typed}</code>`);
    expect(html).not.toContain('file://');
    // (The typed path ends with the absolute one's tail: take it out before looking for the absolute path.)
    expect(html.replaceAll(typed, '')).not.toContain(db);
    expect(html).not.toContain(process.cwd());
  });

  it('Parquet: the same run info in run.json comes out as text', async () => {
    const dir = tmp();
    const folder = join(dir, 'p');
    await syntheticRun([parquetSink(folder)], { n: 30, steps: 4, batch: 10 });
    const runJson = join(folder, 'run-synthetic', 'run.json');
    const file = JSON.parse(readFileSync(runJson, 'utf8')) as { info: RunInfo; status: string };
    writeFileSync(runJson, JSON.stringify({ ...file, status: IMG, info: hostileInfo('run-synthetic') }));
    const out = join(dir, 'r.html');
    await writeReport(folder, { out });
    const html = readFileSync(out, 'utf8');
    expect(foreignTags(html)).toEqual([]);
    expect(html).toContain('&lt;meta http-equiv=&quot;refresh&quot;');
  });
});

describe('damaged run info is bad input (exit 3) naming the store, never an unexpected failure', () => {
  async function cli(args: string[]) {
    const { main } = await import('../packages/cli/src/cli/program.js');
    let err = '';
    const code = await main(args, { out: () => undefined, err: (s) => (err += s) });
    return { code, err };
  }
  const numbersThatAreMarkup = (runId: string) => {
    const info = runInfo(runId);
    return { ...info, model: { ...info.model, params: REFRESH }, layers: { ...info.layers, coveredParams: IMG } };
  };

  it.each([
    ['not JSON', '{"runId": "run-synthetic", '],
    ['lacks fields', JSON.stringify({ runId: 'run-synthetic' })],
    ['numbers that are markup', JSON.stringify(numbersThatAreMarkup('run-synthetic'))],
  ])('SQLite run info that is %s', async (_, info) => {
    const dir = tmp();
    const db = join(dir, 's.sqlite');
    await syntheticRun([sqliteSink(db)], { n: 30, steps: 4, batch: 10 });
    const d = new Database(db);
    d.prepare('UPDATE runs SET info = ?').run(info);
    d.close();
    const r = await cli(['report', db, '--out', join(dir, 'r.html')]);
    expect(r.err).not.toContain('unexpected failure');
    expect(r.code).toBe(3);
    expect(r.err).toContain(db);
  });

  it.each([
    ['cut short', (s: string) => s.slice(0, s.length / 2)],
    ['lacking its info', (s: string) => JSON.stringify({ ...JSON.parse(s), info: { runId: 'run-synthetic' } })],
    ['with numbers that are markup', (s: string) => JSON.stringify({ ...JSON.parse(s), info: numbersThatAreMarkup('run-synthetic') })],
  ])('a Parquet run.json %s', async (_, damage) => {
    const dir = tmp();
    const folder = join(dir, 'p');
    await syntheticRun([parquetSink(folder)], { n: 30, steps: 4, batch: 10 });
    const runJson = join(folder, 'run-synthetic', 'run.json');
    writeFileSync(runJson, damage(readFileSync(runJson, 'utf8')));
    for (const args of [['report', folder, '--out', join(dir, 'r.html')], ['query', folder, 'SELECT 1']]) {
      const r = await cli(args);
      expect(r.err).not.toContain('unexpected failure');
      expect(r.code).toBe(3);
      expect(r.err).toContain(runJson);
    }
  });
});
