import { execFile } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';

it('the demo runs end to end on a slice of the corpus and writes its SQLite file', async () => {
  const db = join(mkdtempSync(join(tmpdir(), 'inrun-demo-')), 'demo.sqlite');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'examples/demo.ts', '--limit', '700', '--epochs', '1', '--db', db],
    { env: { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.json' }, maxBuffer: 1 << 24 },
  );
  expect(stdout).toMatch(/Test accuracy: \d+\.\d%/);
  expect(stdout).toMatch(/10 most helpful training emails/);
  expect(stdout).toMatch(/10 most harmful training emails/);
  expect(stdout).toMatch(/the 5% highest self-influence \(tracin_self\) +\d+\.\d%.*AUROC over all (0\.\d\d|1\.00)\n/);
  expect(existsSync(db)).toBe(true);
  // The printed queries read this run only (a file keeps every run of every `npm run demo`).
  const queries = [...stdout.matchAll(/sqlite3 \S+ "(.*)"$/gm)].map((m) => m[1]!);
  expect(queries).toHaveLength(2);
  for (const q of queries) expect(q).toMatch(/WHERE run_id = ('[^']+'|\(SELECT run_id FROM latest_run\))/);
  const file = new Database(db, { readonly: true });
  expect(file.prepare(queries[0]!).all()).toHaveLength(10);
  file.close();
});
