// Packs the packages, installs them into throwaway apps as a user would, and checks what each app gets and runs.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PackageName, packPackages } from '../scripts/pack.js';
import { type InstallResult, appEnv, folderBytes, installedNames, lockedPackageCount, makeApp, npmInstall } from '../scripts/temp-app.js';

const exec = promisify(execFile);

// What an app that only trains must not get (issue 22): the database engine, job queue, charts, CLI parser and
// browser driver belong to @inrun/cli and @inrun/jobs.
const HEAVY = ['@duckdb/node-api', 'bullmq', 'vega', 'vega-lite', 'commander', 'playwright', 'playwright-core', '@inrun/cli', '@inrun/jobs'];

// The README's quick start, shrunk to two steps of a tiny model, run with plain node from the packages' dist/.
const QUICK_START = `
import * as tf from '@tensorflow/tfjs';
import { attach, sqliteSink } from 'inrun';

await tf.setBackend('cpu');
const n = 8;
const x = tf.randomNormal([n, 3], 0, 1, 'float32', 1);
const y = tf.cast(tf.greater(tf.slice(x, [0, 0], [n, 1]), 0), 'float32');
const valX = tf.randomNormal([4, 3], 0, 1, 'float32', 2);
const valY = tf.cast(tf.greater(tf.slice(valX, [0, 0], [4, 1]), 0), 'float32');
const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, activation: 'sigmoid', inputShape: [3] })] });
model.compile({ optimizer: tf.train.sgd(0.5), loss: 'binaryCrossentropy' });
const ids = Array.from({ length: n }, (_, i) => 'row-' + i);
const run = attach(model, {
  targets: { val: { xs: valX, ys: valY } },
  sinks: [sqliteSink('runs/attribution.sqlite')],
  examples: ids.map((id, i) => ({ id, source: i < n / 2 ? 'web' : 'books' })),
});
await run.fit(x, y, { ids, epochs: 1, batchSize: n / 2, verbose: 0 });
const scores = await run.close();
console.log('RESULT ' + JSON.stringify({ ids: scores.ids, value: Array.from(scores.columns['shapley1:val']) }));
`;

interface QuickStart {
  readonly ids: string[];
  readonly value: number[];
}

const MINUTES = 60_000;
let work = '';
let tarballs: Record<PackageName, string>;
let app = '';
let cliApp = '';
let installs: { app: InstallResult; cli: InstallResult };
let quickStart: QuickStart;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'inrun-install-'));
  tarballs = packPackages(join(work, 'pack'));
  // Apps beside, not inside, the pack folder: its build/node_modules links to the repository's.
  app = join(work, 'app');
  cliApp = join(work, 'cli-app');
  mkdirSync(app);
  mkdirSync(cliApp);
  makeApp(app, 'trains');
  makeApp(cliApp, 'reads');
  const [appInstall, cliInstall] = await Promise.all([
    npmInstall(app, [tarballs.inrun, tarballs['@inrun/store'], '@tensorflow/tfjs@^4.22.0']),
    npmInstall(cliApp, [tarballs['@inrun/cli'], tarballs['@inrun/store']]),
  ]);
  installs = { app: appInstall, cli: cliInstall };
  writeFileSync(join(app, 'quick-start.js'), QUICK_START);
  const { stdout } = await exec(process.execPath, ['quick-start.js'], { cwd: app, env: appEnv() });
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (line === undefined) throw new Error(`the quick start printed no result:\n${stdout}`);
  quickStart = JSON.parse(line.slice('RESULT '.length)) as QuickStart;
  const mb = (dir: string) => (folderBytes(join(dir, 'node_modules')) / 2 ** 20).toFixed(0);
  console.log(
    `install sizes: inrun + @tensorflow/tfjs ${mb(app)} MiB (du), ${lockedPackageCount(app)} packages, ${(installs.app.ms / 1000).toFixed(0)} s; ` +
      `@inrun/cli ${mb(cliApp)} MiB, ${lockedPackageCount(cliApp)} packages, ${(installs.cli.ms / 1000).toFixed(0)} s (both at once)`,
  );
}, 30 * MINUTES);

afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

describe('packed tarballs', () => {
  it('hold dist/, package.json and README.md, no sources', () => {
    for (const tarball of Object.values(tarballs)) {
      const entries = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
      expect(entries).toContain('package/package.json');
      expect(entries).toContain('package/README.md');
      expect(entries.some((e) => e.startsWith('package/dist/') && e.endsWith('index.js'))).toBe(true);
      expect(entries.filter((e) => !e.startsWith('package/dist/') && e !== 'package/package.json' && e !== 'package/README.md')).toEqual([]);
    }
  });
});

describe('an app that installs inrun and @tensorflow/tfjs', () => {
  it('gets no database engine, job queue, chart library, CLI parser or browser driver', () => {
    const names = installedNames(app);
    expect(names.has('inrun') && names.has('@inrun/store') && names.has('@tensorflow/tfjs') && names.has('better-sqlite3')).toBe(true);
    expect(HEAVY.filter((name) => names.has(name))).toEqual([]);
    expect([...names].filter((name) => name.startsWith('@duckdb/'))).toEqual([]);
  });

  it("runs the README's quick start with plain node, and the store answers the README's query", () => {
    expect(quickStart.ids).toHaveLength(8);
    expect(quickStart.value.every(Number.isFinite)).toBe(true);
    const db = new Database(join(app, 'runs', 'attribution.sqlite'), { readonly: true });
    try {
      const rows = db
        .prepare(
          `SELECT source, SUM(value) AS total FROM example_scores
           WHERE run_id = (SELECT run_id FROM latest_run) AND column_name = 'shapley1:val' GROUP BY source ORDER BY source`,
        )
        .all() as { source: string; total: number }[];
      const sum = (from: number, to: number) => quickStart.value.slice(from, to).reduce((a, b) => a + b, 0);
      expect(rows.map((r) => r.source)).toEqual(['books', 'web']);
      expect(rows[0]!.total).toBeCloseTo(sum(4, 8), 6);
      expect(rows[1]!.total).toBeCloseTo(sum(0, 4), 6);
    } finally {
      db.close();
    }
  });
});

describe('an app that installs @inrun/cli', () => {
  it('gets no tf.js and no training side', () => {
    const names = installedNames(cliApp);
    expect(names.has('@inrun/cli') && names.has('@duckdb/node-api')).toBe(true);
    expect([...names].filter((name) => name.startsWith('@tensorflow/') || name === 'inrun' || name === '@inrun/jobs')).toEqual([]);
  });

  it('runs `inrun --help` and `inrun report` on the quick start store', async () => {
    const bin = join(cliApp, 'node_modules', '.bin', 'inrun');
    const help = await exec(bin, ['--help'], { cwd: cliApp, env: appEnv() });
    expect(help.stdout).toMatch(/report/);
    expect(help.stdout).toMatch(/tracin/);
    const out = join(cliApp, 'report.html');
    await exec(bin, ['report', join(app, 'runs', 'attribution.sqlite'), '--out', out], { cwd: cliApp, env: appEnv() });
    expect(existsSync(out)).toBe(true);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/<html/i);
    expect(html).toContain('row-');
  });
});
