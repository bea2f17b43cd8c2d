/**
 * `inrun merge` at scale: a SQLite store of ~1M totals rows (plus its examples) and a Parquet store of
 * ~1M per-step score rows, each merged in a fresh process whose JS heap is capped (so a merge that held
 * the store in memory would fail): wall time, rows/s, peak RSS. Prints a markdown table (quoted in
 * docs/scale-out.md).
 *
 *   npx tsx bench/merge.ts [--rows 1000000] [--heap 256]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parquetSink } from 'inrun';
import { mergeStores } from '@inrun/cli';
import { bulkStore, syntheticRun } from '../test/store-fixtures.js';
import { machine } from './report.js';

const { values: args } = parseArgs({
  options: { child: { type: 'string' }, store: { type: 'string' }, rows: { type: 'string', default: '1000000' }, heap: { type: 'string', default: '256' } },
});

if (args.child !== undefined) {
  // The child: merge one store, print what it took.
  const started = performance.now();
  const result = await mergeStores([args.store!], { out: join(args.child, 'dataset') });
  const seconds = (performance.now() - started) / 1000;
  const rows = result.runs.reduce((n, r) => n + Object.values(r.rows).reduce((a, b) => a + b, 0), 0);
  console.log(JSON.stringify({ seconds, rows, rss: process.resourceUsage().maxRSS / 1024, tables: result.runs[0]!.rows }));
} else {
  const rows = Number(args.rows);
  const lines = ['| store | rows merged (all tables) | seconds | rows/s | peak RSS |', '|---|---|---|---|---|'];
  const cases: [string, (dir: string) => Promise<string>][] = [
    [`SQLite, ${rows.toLocaleString('en')} totals rows`, async (dir) => {
      const path = join(dir, 'bulk.sqlite');
      await bulkStore(path, Math.ceil(rows / 300) * 100); // 3 columns per example, a multiple of 100 examples
      return path;
    }],
    [`Parquet, ${rows.toLocaleString('en')} per-step score rows`, async (dir) => {
      const path = join(dir, 'pq');
      await syntheticRun([parquetSink(path)], { runId: 'bench', n: 10_000, steps: 1000, batch: Math.ceil(rows / 3000) });
      return path;
    }],
  ];
  for (const [name, make] of cases) {
    const dir = mkdtempSync(join(tmpdir(), 'inrun-bench-merge-'));
    try {
      const store = await make(dir);
      const out = execFileSync(process.execPath, [`--max-old-space-size=${args.heap}`, '--import', 'tsx', 'bench/merge.ts', '--child', dir, '--store', store], {
        env: { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.json' },
        encoding: 'utf8',
      });
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as { seconds: number; rows: number; rss: number; tables: Record<string, number> };
      console.error(name, r.tables);
      lines.push(`| ${name} | ${r.rows.toLocaleString('en')} | ${r.seconds.toFixed(1)} | ${Math.round(r.rows / r.seconds).toLocaleString('en')} | ${Math.round(r.rss)} MiB |`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`${lines.join('\n')}\n\nJS heap capped at ${args.heap} MiB; ${machine()}.`);
}
