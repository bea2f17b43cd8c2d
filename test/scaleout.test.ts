// Offline jobs past one process: TracIn shards and UnTrac ascents in process (API, CLI) and on BullMQ workers over a throwaway redis-server equal single-process tracin() and untrac().
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DuckDBInstance } from '@duckdb/node-api';
import { asyncBufferFromFile, parquetMetadata, parquetReadObjects, type SchemaElement } from 'hyparquet';
import { parquetWriteFile, type BasicType } from 'hyparquet-writer';
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, tracin, untrac, type TracInResult, type UntracRow } from 'inrun';
import { distributedTracin, distributedUntrac, startWorker } from '@inrun/jobs';
import { main } from '../packages/cli/src/cli/program.js';
// Internal: the row reader's own fields and row ranges are what these cases check.
import { countRows, readRows } from '../packages/jobs/src/row-files.js';
import { oneHot, randn } from './cases.js';
import { saveModelFiles } from './helpers.js';
import { expectSame, hasRedis, jsonl, memoryMetrics, readLines, redisForSuite, tracinCase, value } from './jobs-helpers.js';

const N = 20;
const K = 4;
let dir: string;
let checkpoints: string;
let trainFile: string;
let queriesFile: string;
let expected: TracInResult;

beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'inrun-scaleout-'));
  ({ checkpoints, trainFile, queriesFile, expected } = await tracinCase(dir, N, K));
  expect(expected.checkpoints.length).toBe(2);
  // The test must exercise the merge: some query's top k draws on several shards.
  expect(expected.queries.every((qq) => qq.proponents.length + qq.opponents.length > 0)).toBe(true);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function jsonFile(name: string, rows: readonly object[]): string {
  const path = join(dir, name);
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n'));
  return path;
}

/** A Parquet file of plain columns `id`, `xs` and `ys` (`ys` = `xs`): the wrong types a row file can have. */
function flatParquet(name: string, id: { type: BasicType; data: unknown[] }, xs: { type: BasicType; data: unknown[] }): string {
  const filename = join(dir, name);
  parquetWriteFile({ filename, columnData: [{ name: 'id', ...id }, { name: 'xs', ...xs }, { name: 'ys', ...xs }] });
  return filename;
}

async function readParquet(path: string): Promise<Record<string, unknown>[]> {
  return (await parquetReadObjects({ file: await asyncBufferFromFile(path) })) as Record<string, unknown>[];
}

/** One row of a row file. */
interface Row {
  readonly id: string | number | bigint;
  readonly xs: unknown;
  readonly ys: unknown;
}

function rowsOf(path: string): Row[] {
  return readLines(path).map((l) => JSON.parse(l) as Row);
}

/** A LIST column `depth` levels deep over `leaf` numbers (the 3-level form Spark, Arrow and DuckDB write). */
function listSchema(name: string, depth: number, leaf: 'DOUBLE' | 'FLOAT' | 'INT32'): SchemaElement[] {
  if (depth === 0) return [{ name, type: leaf, repetition_type: 'REQUIRED' }];
  return [{ name, repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 }, { name: 'list', repetition_type: 'REPEATED', num_children: 1 }, ...listSchema('element', depth - 1, leaf)];
}

/** Rows as a Parquet row file (hyparquet-writer): `id` a string or INT64 column, `xs`/`ys` nested LIST columns (`depth` levels each), several row groups. */
function parquetRowFile(path: string, rows: readonly Row[], options: { rowGroupSize?: number; depth?: readonly [number, number]; leaf?: 'DOUBLE' | 'INT32'; omit?: string } = {}): string {
  const [dx, dy] = options.depth ?? [1, 1];
  const leaf = options.leaf ?? 'DOUBLE';
  const strings = typeof rows[0]!.id === 'string';
  const columns = [
    { name: 'id', data: rows.map((r) => (strings ? r.id : BigInt(r.id))), schema: [{ name: 'id', type: strings ? 'BYTE_ARRAY' : 'INT64', ...(strings ? { converted_type: 'UTF8' } : {}), repetition_type: 'REQUIRED' }] as SchemaElement[] },
    { name: 'xs', data: rows.map((r) => r.xs), schema: listSchema('xs', dx, leaf) },
    { name: 'ys', data: rows.map((r) => r.ys), schema: listSchema('ys', dy, leaf) },
  ].filter((c) => c.name !== options.omit);
  parquetWriteFile({
    filename: path,
    columnData: columns.map(({ name, data }) => ({ name, data })),
    schema: [{ name: 'root', num_children: columns.length }, ...columns.flatMap((c) => c.schema)],
    rowGroupSize: options.rowGroupSize ?? 6,
  });
  return path;
}

/** UnTrac over the training file cut into two sources, the queries as the target: one `untrac` call, the ground truth of the jobs. */
async function untracCase(method: 'untrac' | 'untrac-inv', extra: { maxSteps?: number; lossCeiling?: number; evalBatchSize?: number } = {}) {
  const lines = readLines(trainFile);
  const files = { a: join(dir, 'a.jsonl'), b: join(dir, 'b.jsonl') };
  writeFileSync(files.a, lines.slice(0, 8).join('\n'));
  writeFileSync(files.b, lines.slice(8).join('\n'));
  const settings = { method, learningRate: 0.01, epochs: 2, batchSize: 4, ...extra } as const;
  const rows = (path: string) => {
    const r = readLines(path).map((l) => JSON.parse(l) as { id: string; xs: number[]; ys: number[] });
    return { xs: tf.tensor2d(r.map((x) => x.xs)), ys: tf.tensor2d(r.map((x) => x.ys)), ids: r.map((x) => x.id) };
  };
  const model = await loadCheckpoint(checkpoints);
  const truth = await untrac(model, { method, epochs: 2, batchSize: 4, ...extra, optimizer: () => tf.train.adam(0.01), sources: { a: rows(files.a), b: rows(files.b) }, targets: { val: rows(queriesFile) } });
  return { options: { ...settings, model: checkpoints, sources: files, targets: { val: queriesFile } }, truth: truth.rows };
}

function expectSameRows(actual: readonly UntracRow[], wanted: readonly UntracRow[]): void {
  expect(actual.map((r) => [r.target, r.source, r.steps, r.stopped])).toEqual(wanted.map((r) => [r.target, r.source, r.steps, r.stopped]));
  actual.forEach((r, i) => {
    for (const key of ['influence', 'lossBefore', 'lossAfter'] as const) expect(r[key]).toBeCloseTo(wanted[i]![key], 5);
  });
  expect(wanted.some((r) => Math.abs(r.influence) > 1e-3)).toBe(true);
}

describe('offline jobs in process', () => {
  it('inrun untrac (a Parquet source, --max-steps, --loss-ceiling, --eval-batch-size, --run-id) writes influence.parquet equal to one untrac call', async () => {
    // maxSteps 3 binds (source a: 8 rows / 4 x 2 epochs = 4 steps): a flag the CLI dropped would change the steps.
    const { options, truth } = await untracCase('untrac', { maxSteps: 3, lossCeiling: 1e6, evalBatchSize: 3 });
    expect(truth.map((r) => r.steps)).toEqual([3, 3]);
    const b = parquetRowFile(join(dir, 'b.parquet'), rowsOf(options.sources.b));
    const out = join(dir, 'untrac-cli');
    const printed: string[] = [];
    const args = ['untrac', '--model', checkpoints, '--sources', `a=${options.sources.a}`, `b=${b}`, '--targets', `val=${queriesFile}`, '--learning-rate', '0.01', '--epochs', '2', '--batch-size', '4'];
    const flags = ['--max-steps', '3', '--loss-ceiling', '1e6', '--eval-batch-size', '3', '--eval-rows', '5', '--run-id', 'cli-1', '--out', out];
    expect(await main([...args, ...flags], { out: (s: string) => printed.push(s), err: (e: string) => process.stderr.write(e) })).toBe(0);
    expect(printed.join('')).toMatch(/^Run cli-1: wrote /);
    expect(readdirSync(join(out, 'run=cli-1')).sort()).toEqual(['unlearned=a', 'unlearned=b']);
    const rows = await readParquet(join(out, 'influence.parquet'));
    expect(rows.map((r) => [r.target, r.source, r.steps])).toEqual(truth.map((r) => [r.target, r.source, r.steps]));
    rows.forEach((r, i) => expect(r.influence as number).toBeCloseTo(truth[i]!.influence, 5));
  });

  it('inrun untrac and tracin refuse bad flag values with exit code 2, before any work', async () => {
    const base = ['--model', checkpoints, '--sources', `a=${trainFile}`, '--targets', `val=${queriesFile}`, '--out', join(dir, 'never')];
    const bad = [['--max-steps', '0'], ['--max-steps', '2.5'], ['--eval-rows', 'x'], ['--eval-batch-size', '-1'], ['--loss-ceiling', '0'], ['--loss-ceiling', 'inf'], ['--learning-rate', 'abc'], ['--learning-rate', ''], ['--seed', '1.5'], ['--run-id', '../up']];
    for (const flag of bad) {
      const err: string[] = [];
      expect(await main(['untrac', ...base, ...flag], { out: () => undefined, err: (e: string) => err.push(e) }), flag.join(' ')).toBe(2);
      expect(err.join(''), flag.join(' ')).toContain(flag[0]);
    }
    expect(await main(['tracin', '--checkpoints', checkpoints, '--train', trainFile, '--queries', queriesFile, '--out', join(dir, 'never'), '--run-id', '.hidden'], { out: () => undefined, err: () => undefined })).toBe(2);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  for (const method of ['untrac', 'untrac-inv'] as const) {
    it(`${method} in process, one job per ascent: equals one untrac call`, async () => {
      const { options, truth } = await untracCase(method);
      const before = tf.memory().numTensors;
      const r = await distributedUntrac({ ...options, out: join(dir, `untrac-${method}`) });
      expect(tf.memory().numTensors).toBe(before);
      expectSameRows(r.rows, truth);
      expect((await readParquet(r.influence)).map((x) => x.source)).toEqual(truth.map((x) => x.source));
    });
  }

  it('untrac takes a tf.js model.json folder as the model (saved with its optimizer): the same rows; one without a loss is refused', async () => {
    const { options, truth } = await untracCase('untrac');
    const trained = await loadCheckpoint(checkpoints);
    const withLoss = await saveModelFiles(trained, 2, true);
    const r = await distributedUntrac({ ...options, model: withLoss, out: join(dir, 'untrac-model-json') });
    expectSameRows(r.rows, truth);
    const bare = await saveModelFiles(trained, 1, false);
    trained.optimizer?.dispose();
    trained.dispose();
    await expect(distributedUntrac({ ...options, model: bare, out: join(dir, 'untrac-bare') })).rejects.toMatchObject({ code: 'invalid_input', field: 'model' });
  });

  it("importing inrun or @inrun/jobs does not load bullmq; making a worker does (the queue's client stays off the attach path)", () => {
    const packages = join(import.meta.dirname, '..', 'packages');
    const probe = `const { createRequire } = await import('node:module');
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/bullmq/'));
      await import(${JSON.stringify(join(packages, 'inrun', 'src', 'index.ts'))});
      const jobs = await import(${JSON.stringify(join(packages, 'jobs', 'src', 'index.ts'))});
      const before = loaded();
      jobs.startWorker({ connection: { host: '127.0.0.1', port: 1 } });
      const after = loaded();
      process.stdout.write(JSON.stringify({ before, after }));
      process.exit(0);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { encoding: 'utf8' });
    expect(JSON.parse(r.stdout), r.stderr).toEqual({ before: false, after: true });
  });

  it('the CLI loads tf.js only when a job command runs (tf.js registers globalThis._tfengine)', () => {
    const packages = join(import.meta.dirname, '..', 'packages');
    const probe = `const { main } = await import(${JSON.stringify(join(packages, 'cli', 'src', 'cli', 'program.ts'))});
      await main(['tracin', '--help'], { out: () => undefined, err: () => undefined });
      const before = '_tfengine' in globalThis;
      await import(${JSON.stringify(join(packages, 'jobs', 'src', 'index.ts'))});
      process.stdout.write(JSON.stringify({ before, after: '_tfengine' in globalThis }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { encoding: 'utf8' });
    expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true });
  });

  it('rows with a source: shards sum TracIn per source, equal to tracin({ sources }) on all rows; sources.parquet', async () => {
    const names = ['web', 'news', 'books', 'web', 'forum'];
    const rows = rowsOf(trainFile).map((r, i) => ({ ...r, source: names[(i * 7) % 5]! }));
    const train = jsonFile('train-sources.jsonl', rows);
    const truth = await tracin({
      checkpoints,
      train: { xs: tf.tensor2d(rows.map((r) => r.xs as number[])), ys: tf.tensor2d(rows.map((r) => r.ys as number[])), ids: rows.map((r) => r.id as string) },
      queries: { xs: tf.tensor2d(rowsOf(queriesFile).map((r) => r.xs as number[])), ys: tf.tensor2d(rowsOf(queriesFile).map((r) => r.ys as number[])) },
      k: K,
      sources: rows.map((r) => r.source),
    });
    const r = await distributedTracin({ checkpoints, train, queries: queriesFile, out: join(dir, 'by-source'), k: K, shards: 3 });
    expect(r.result.sources!.map((x) => [x.source, x.examples])).toEqual(truth.sources!.map((x) => [x.source, x.examples]));
    r.result.sources!.forEach((x, i) => {
      x.scores.forEach((v, j) => expect(v).toBeCloseTo(truth.sources![i]!.scores[j]!, 5));
      expect(x.mean).toBeCloseTo(truth.sources![i]!.mean, 5);
    });
    expectSame(r.result, expected);
    const stored = await readParquet(r.bySource!);
    expect(stored.length).toBe(3 * truth.sources!.length);
    expect(stored[0]).toMatchObject({ query_id: '7', source: truth.sources![0]!.source, examples: truth.sources![0]!.examples });
    expect(stored[0]!.score).toBeCloseTo(truth.sources![0]!.scores[0]!, 5);
    expect((await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'no-source'), k: K })).bySource).toBeNull();
    const half = jsonFile('half-sources.jsonl', rows.map((row, i) => (i === 4 ? { id: row.id, xs: row.xs, ys: row.ys } : row)));
    await expect(distributedTracin({ checkpoints, train: half, queries: queriesFile, out: join(dir, 'half'), k: K })).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringContaining('source must be a string on every row') as unknown });
  });

  it('perCheckpoint: one job per (checkpoint, shard) under ckpt=<c>/, summed in the merge: equals tracin (and per source); inrun tracin --per-checkpoint', async () => {
    const rows = rowsOf(trainFile).map((r, i) => ({ ...r, source: ['a', 'b'][i % 2]! }));
    const train = jsonFile('train-ckpt.jsonl', rows);
    const progress: unknown[] = [];
    const r = await distributedTracin({ checkpoints, train, queries: queriesFile, out: join(dir, 'per-ckpt'), k: K, shards: 3, perCheckpoint: true, onProgress: (p) => progress.push(p) });
    const c = expected.checkpoints.length;
    expect(c).toBeGreaterThan(1);
    expect(r.parts).toEqual([0, 1, 2].flatMap((s) => Array.from({ length: c }, (_, k) => join(dir, 'per-ckpt', `run=${r.runId}`, `ckpt=${k}`, `shard=${s}`, 'part.parquet'))));
    expect(progress.at(-1)).toEqual({ done: 3 * c, failed: 0, total: 3 * c });
    expectSame(r.result, expected);
    const whole = await distributedTracin({ checkpoints, train, queries: queriesFile, out: join(dir, 'per-ckpt-whole'), k: K, shards: 2 });
    r.result.sources!.forEach((s, i) => s.scores.forEach((v, j) => expect(v).toBeCloseTo(whole.result.sources![i]!.scores[j]!, 5)));
    expect(r.result.sources!.map((s) => s.examples)).toEqual([10, 10]);
    const out: string[] = [];
    expect(await main(['tracin', '--checkpoints', checkpoints, '--train', trainFile, '--queries', queriesFile, '--out', join(dir, 'per-ckpt-cli'), '--k', String(K), '--shards', '2', '--per-checkpoint'], { out: (s: string) => out.push(s), err: () => undefined })).toBe(0);
    expect(out.join('')).toContain(`from ${2 * c} part(s)`);
    // Self-influence streamed from the per-checkpoint parts, summed over checkpoints, in training order.
    const self = await readParquet(join(dir, 'per-ckpt-cli', 'self_influence.parquet'));
    expect(self.map((x) => x.train_id)).toEqual(expected.selfInfluence!.ids);
    self.forEach((x, i) => expect(x.value as number).toBeCloseTo(expected.selfInfluence!.values[i]!, 5));
    // keepSelfInfluence: false leaves it to the file; the lists are the same.
    const light = await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'per-ckpt-light'), k: K, shards: 2, perCheckpoint: true, keepSelfInfluence: false });
    expect(light.result.selfInfluence).toBeNull();
    expect(light.trainingRows).toBe(expected.selfInfluence!.ids.length);
    expect(light.result.queries).toEqual(r.result.queries);
  });

  it('in process: 3 shards equal single-process tracin (ids keep their types)', async () => {
    const before = tf.memory().numTensors;
    const progress: unknown[] = [];
    const r = await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'local'), k: K, shards: 3, onProgress: (p) => progress.push(p) });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual([1, 2, 3].map((done) => ({ done, failed: 0, total: 3 })));
    expect(r.parts).toEqual([0, 1, 2].map((s) => join(dir, 'local', `run=${r.runId}`, 'ckpt=all', `shard=${s}`, 'part.parquet')));
    expectSame(r.result, expected);
  });

  it('inrun tracin writes queries.parquet and self_influence.parquet equal to tracin()', async () => {
    const out = join(dir, 'cli');
    const io = { out: () => undefined, err: (s: string) => process.stderr.write(s) };
    const printed: string[] = [];
    const code = await main(['tracin', '--checkpoints', checkpoints, '--train', trainFile, '--queries', queriesFile, '--k', String(K), '--shards', '4', '--out', out], { ...io, out: (s: string) => printed.push(s) });
    expect(code).toBe(0);
    // A fresh run id per invocation, printed, naming the one run folder.
    const runId = /^Run (\S+): wrote /.exec(printed.join(''))![1]!;
    expect(readdirSync(out).sort()).toEqual(['queries.parquet', `run=${runId}`, 'self_influence.parquet']);
    const rows = await readParquet(join(out, 'queries.parquet'));
    const want = expected.queries.flatMap((q) =>
      (['proponents', 'opponents'] as const).flatMap((side) => q[side].map((p, r) => ({ query_id: String(q.id), kind: side.slice(0, -1), rank: r + 1, train_id: String(p.id), score: p.score }))),
    );
    expect(rows.map(({ score: _, ...key }) => key)).toEqual(want.map(({ score: _, ...key }) => key));
    rows.forEach((row, i) => expect(row.score as number).toBeCloseTo(want[i]!.score, 5));
    const self = await readParquet(join(out, 'self_influence.parquet'));
    expect(self.map((s) => s.train_id)).toEqual(expected.selfInfluence!.ids);
    self.forEach((s, i) => expect(s.value as number).toBeCloseTo(expected.selfInfluence!.values[i]!, 5));
  });
});

describe('Parquet row files and run folders', () => {
  it('Parquet rows (several row groups, shards across them) give the JSON-lines result exactly; ids keep their types', async () => {
    const train = parquetRowFile(join(dir, 'train.parquet'), rowsOf(trainFile), { rowGroupSize: 6 });
    const queries = parquetRowFile(join(dir, 'queries.parquet'), rowsOf(queriesFile), { rowGroupSize: 2 });
    expect(await countRows(train)).toBe(N);
    const before = tf.memory().numTensors;
    const fromJsonl = await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'rows-jsonl'), k: K, shards: 3 });
    const fromParquet = await distributedTracin({ checkpoints, train, queries, out: join(dir, 'rows-parquet'), k: K, shards: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expectSame(fromParquet.result, expected);
    // Same tensors, same arithmetic: not merely close.
    expect(fromParquet.result).toEqual(fromJsonl.result);
    expect(fromParquet.result.queries.map((q) => q.id)).toEqual([7, 8, 9]);
  });

  it('a shard reads only the row groups of its range; the row count comes from the footer', async () => {
    const path = parquetRowFile(join(dir, 'corrupt.parquet'), rowsOf(trainFile), { rowGroupSize: 5 });
    const bytes = readFileSync(path);
    // Overwrite the first data page of every column of row group 0: any read of that group fails.
    const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    for (const c of meta.row_groups[0]!.columns) bytes.fill(0xff, Number(c.meta_data!.data_page_offset), Number(c.meta_data!.data_page_offset) + 12);
    writeFileSync(path, bytes);
    expect(await countRows(path)).toBe(N);
    const rows = await readRows(path, { start: 7, end: 13 });
    try {
      expect(rows.ids).toEqual([7, 8, 9, 10, 11, 12].map((i) => `row-${i}`));
      const json = rowsOf(trainFile).slice(7, 13);
      expect(Array.from(rows.xs.dataSync())).toEqual(Array.from(tf.tensor2d(json.map((r) => r.xs as number[])).dataSync()));
    } finally {
      tf.dispose([rows.xs, rows.ys]);
    }
    await expect(readRows(path, { start: 3, end: 6 })).rejects.toMatchObject({ code: 'invalid_input', field: path });
  });

  it('an INT64 id beyond 2^53 stays exact as a string; safe ones are numbers', async () => {
    const big = 2n ** 60n + 1n;
    const q = rowsOf(queriesFile).map((r, i) => ({ ...r, id: i === 1 ? big : BigInt(r.id) }));
    const queries = parquetRowFile(join(dir, 'big-ids.parquet'), q);
    const r = await distributedTracin({ checkpoints, train: trainFile, queries, out: join(dir, 'big-ids'), k: K });
    expect(r.result.queries.map((x) => x.id)).toEqual([7, big.toString(), 9]);
    expect((await readParquet(r.queries)).map((x) => x.query_id)).toContain('1152921504606846977');
  });

  it('bad row files: missing column, wrong types, ragged shapes name the file and the row', async () => {
    const good = rowsOf(trainFile).slice(0, 4);
    const twoD = good.map((r) => ({ ...r, xs: [r.xs as number[], r.xs as number[]] }));
    const cases: [string, () => Promise<unknown>, string, string][] = [
      ['no ys column', () => readRows(parquetRowFile(join(dir, 'no-ys.parquet'), good, { omit: 'ys' })), 'invalid_input', 'no-ys.parquet.ys'],
      ['ragged across rows', () => readRows(parquetRowFile(join(dir, 'ragged.parquet'), good.map((r, i) => (i === 1 ? { ...r, xs: (r.xs as number[]).slice(1) } : r)))), 'shape_mismatch', 'ragged.parquet[1].xs'],
      ['ragged inside a row', () => readRows(parquetRowFile(join(dir, 'ragged2.parquet'), twoD.map((r, i) => (i === 3 ? { ...r, xs: [r.xs[0], r.xs[1]!.slice(2)] } : r)), { depth: [2, 1] })), 'shape_mismatch', 'ragged2.parquet[3].xs'],
      ['ragged JSON lines', () => readRows(jsonFile('ragged.jsonl', good.map((r, i) => (i === 1 ? { ...r, ys: [1] } : r)))), 'shape_mismatch', 'ragged.jsonl[1].ys'],
      ['strings in xs', () => readRows(jsonFile('strings.jsonl', good.map((r, i) => (i === 3 ? { ...r, xs: (r.xs as number[]).map(String) } : r)))), 'invalid_input', 'strings.jsonl[3].xs'],
      ['xs not a list', () => readRows(jsonFile('scalar.jsonl', good.map((r, i) => (i === 2 ? { ...r, xs: 1 } : r)))), 'invalid_input', 'scalar.jsonl[2].xs'],
      ['boolean id', () => readRows(jsonFile('bool-id.jsonl', good.map((r, i) => (i === 1 ? { ...r, id: true } : r)))), 'invalid_input', 'bool-id.jsonl[1].id'],
      ['not Parquet', () => readRows(jsonFile('fake.parquet', good)), 'invalid_input', 'fake.parquet'],
      ['Parquet xs of strings', () => readRows(flatParquet('xs-strings.parquet', { type: 'STRING', data: ['a', 'b'] }, { type: 'STRING', data: ['1,2', '3,4'] })), 'invalid_input', 'xs-strings.parquet[0].xs'],
      ['Parquet boolean id', () => readRows(flatParquet('bool-id.parquet', { type: 'BOOLEAN', data: [true, false] }, { type: 'JSON', data: [[1], [2]] })), 'invalid_input', 'bool-id.parquet[0].id'],
    ];
    for (const [what, read, code, field] of cases) {
      const e = await read().then(() => null, (x: unknown) => x);
      expect(e, what).toMatchObject({ name: 'InrunError', code, field: join(dir, field) });
    }
    // 2-D rows of integers are fine (the row shape is the model's input shape).
    const ints = twoD.map((r) => ({ ...r, xs: r.xs.map((v) => v.map((x) => Math.round(10 * x))) }));
    const ok = await readRows(parquetRowFile(join(dir, 'two-d.parquet'), ints, { depth: [2, 1], leaf: 'INT32' }), { start: 1, end: 3 });
    expect(ok.xs.shape).toEqual([2, 2, 5]);
    expect(ok.xs.arraySync()).toEqual(ints.slice(1, 3).map((r) => r.xs));
    tf.dispose([ok.xs, ok.ys]);
    // Through the jobs and the command line (exit code 3, bad input): the shard's message carries the file and row.
    const err: string[] = [];
    expect(await main(['tracin', '--checkpoints', checkpoints, '--train', join(dir, 'ragged.parquet'), '--queries', queriesFile, '--out', join(dir, 'ragged-cli')], { out: () => undefined, err: (e: string) => err.push(e) })).toBe(3);
    expect(err.join('')).toContain('ragged.parquet[1].xs');
    await expect(distributedTracin({ checkpoints, train: join(dir, 'ragged.parquet'), queries: queriesFile, out: join(dir, 'ragged-out'), k: K, shards: 2 })).rejects.toMatchObject({
      code: 'shape_mismatch',
      message: expect.stringContaining('ragged.parquet[1].xs') as unknown,
    });
  });

  it('a Parquet file DuckDB wrote works through inrun tracin; runs into one folder stay apart (hive-partitioned by run)', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const db = await instance.connect();
    try {
      const [train, queries] = [join(dir, 'duck-train.parquet'), join(dir, 'duck-queries.parquet')];
      // read_json types ids 7, 8, 9 as BIGINT and the one-hot labels as BIGINT[]: both come back as numbers.
      for (const [from, to] of [[trainFile, train], [queriesFile, queries]] as const) await db.run(`COPY (SELECT id, xs, ys FROM read_json('${from}')) TO '${to}' (FORMAT parquet)`);
      const out = join(dir, 'duck-out');
      const io = { out: () => undefined, err: (e: string) => process.stderr.write(e) };
      const cli = ['tracin', '--checkpoints', checkpoints, '--train', train, '--queries', queries, '--k', String(K), '--shards', '2', '--out', out];
      expect(await main([...cli, '--run-id', 'first'], io)).toBe(0);
      expect(await main([...cli, '--shards', '3', '--run-id', 'second'], io)).toBe(0);
      // Reusing an id is refused (exit 2), so a run folder holds one invocation's parts.
      expect(await main([...cli, '--run-id', 'first'], { out: () => undefined, err: () => undefined })).toBe(2);
      const rows = await readParquet(join(out, 'queries.parquet'));
      expect(rows.filter((r) => r.kind === 'proponent').map((r) => [r.query_id, r.train_id])).toEqual(expected.queries.flatMap((q) => q.proponents.map((p) => [String(q.id), p.id])));
      const parts = await db.runAndReadAll(`SELECT run, count(DISTINCT shard)::INTEGER AS shards FROM read_parquet('${out}/run=*/ckpt=*/shard=*/part.parquet', hive_partitioning = true) GROUP BY run ORDER BY run`);
      expect(parts.getRowObjectsJson()).toEqual([{ run: 'first', shards: 2 }, { run: 'second', shards: 3 }]);
    } finally {
      db.closeSync();
      instance.closeSync();
    }
  });
});

describe.skipIf(!hasRedis)('jobs on BullMQ workers (redis-server on a free port, no persistence)', () => {
  const redis = redisForSuite();

  it('a flow of 3 shards on 2 workers equals single-process tracin', async () => {
    const connection = redis.connection;
    const workers = [startWorker({ connection }), startWorker({ connection })];
    try {
      const progress: { done: number; failed: number; total: number }[] = [];
      const r = await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'queue'), k: K, shards: 3, queue: { connection, timeoutMs: 300_000 }, onProgress: (p) => progress.push(p) });
      expectSame(r.result, expected);
      expect(progress.at(-1)).toEqual({ done: 3, failed: 0, total: 3 });
      const rows = await readParquet(r.queries);
      expect(rows.length).toBe(expected.queries.reduce((n, q) => n + q.proponents.length + q.opponents.length, 0));
      // The command line's --redis path: the same files as in process.
      const out = join(dir, 'cli-queue');
      const code = await main(['tracin', '--checkpoints', checkpoints, '--train', trainFile, '--queries', queriesFile, '--k', String(K), '--shards', '2', '--out', out, '--redis', `${redis.url}/0`], { out: () => undefined, err: (e: string) => process.stderr.write(e) });
      expect(code).toBe(0);
      const viaCli = await readParquet(join(out, 'queries.parquet'));
      expect(viaCli.map(({ score: _, ...key }) => key)).toEqual(rows.map(({ score: _, ...key }) => key));
      viaCli.forEach((row, i) => expect(row.score as number).toBeCloseTo(rows[i]!.score as number, 5));
      // keepSelfInfluence: false: the lists come back from the merge job through Redis (ids keep their types), no part read again.
      const light = await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'queue-light'), k: K, shards: 3, keepSelfInfluence: false, queue: { connection, timeoutMs: 300_000 } });
      expectSame({ ...light.result, selfInfluence: expected.selfInfluence }, expected);
      expect(light.result.selfInfluence).toBeNull();
      expect(light.result.queries.map((q) => q.id)).toEqual([7, 8, 9]);
      expect(light.trainingRows).toBe(N);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('untrac on 2 workers, one job per source: equals one untrac call', async () => {
    const connection = redis.connection;
    const queueName = 'inrun-untrac';
    const workers = [startWorker({ connection, queueName }), startWorker({ connection, queueName })];
    try {
      const { options, truth } = await untracCase('untrac');
      const r = await distributedUntrac({ ...options, out: join(dir, 'untrac-queue'), queue: { connection, queueName, timeoutMs: 300_000 } });
      expectSameRows(r.rows, truth);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('a shard that fails on every attempt fails the flow with a message naming it; nothing is merged', async () => {
    const connection = redis.connection;
    const queueName = 'inrun-fail';
    const worker = startWorker({ connection, queueName });
    const out = join(dir, 'failed');
    try {
      const progress: { done: number; failed: number; total: number }[] = [];
      const flow = distributedTracin({ checkpoints: join(dir, 'no-such-checkpoints'), train: trainFile, queries: queriesFile, out, k: K, shards: 2, queue: { connection, queueName, attempts: 2, timeoutMs: 120_000 }, onProgress: (p) => progress.push(p) });
      await expect(flow).rejects.toThrow(/shard 0 \(rows 0 to 9 of .*train\.jsonl\):.*no checkpoints in/);
      // The shard's own code and field come back through Redis (the CLI exits 3 for bad input, not 1 as for a bug).
      await expect(flow).rejects.toMatchObject({ code: 'bad_checkpoint', field: 'shards[0]' });
      await expect(flow).rejects.not.toThrow(/inrun-error/);
      expect(existsSync(join(out, 'queries.parquet'))).toBe(false);
      expect(progress.at(-1)).toMatchObject({ done: 0, total: 2 });
      expect(progress.at(-1)!.failed).toBeGreaterThanOrEqual(1);
    } finally {
      await worker.close();
    }
  });

  it('an inrun worker process SIGKILLed mid-job: another worker takes the stalled job and the result still equals tracin', async () => {
    // Rows enough that the shard outlives the kill; same model and queries.
    const m = 20_000;
    const [x, y] = [randn([m, 5], 21), oneHot(m, 3, 22)];
    const ids = Array.from({ length: m }, (_, i) => i);
    const bigTrain = join(dir, 'big.jsonl');
    jsonl(bigTrain, ids, x, y);
    const local = await distributedTracin({ checkpoints, train: bigTrain, queries: queriesFile, out: join(dir, 'big-local'), k: K });
    const connection = redis.connection;
    // A queue of its own: BullMQ's stalled check runs at most once per interval per queue, and the
    // earlier workers' default 30 s interval would hold this one's back.
    const queueName = 'inrun-kill';
    // The real command line, in its own process, so that it can be SIGKILLed.
    const cli = join(import.meta.dirname, '..', 'packages', 'cli', 'src', 'cli', 'inrun.ts');
    const doomed = spawn(process.execPath, ['--import', 'tsx', cli, 'worker', '--redis', redis.url, '--queue', queueName, '--lock-ms', '1000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const events = new QueueEvents(queueName, { connection });
    const ready = new Promise<void>((resolve, reject) => {
      doomed.once('exit', (code) => reject(new Error(`worker exited early (${String(code)})`)));
      doomed.stdout!.on('data', (b: Buffer) => {
        if (b.toString().includes('inrun worker on')) resolve();
      });
    });
    await ready;
    const seen = new Promise<void>((resolve) => events.on('active', () => resolve()));
    await events.waitUntilReady();
    const flow = distributedTracin({ checkpoints, train: bigTrain, queries: queriesFile, out: join(dir, 'big-queue'), k: K, queue: { connection, queueName, timeoutMs: 300_000 } });
    await seen;
    doomed.removeAllListeners('exit');
    doomed.kill('SIGKILL');
    const measured = memoryMetrics();
    // The rescuer looks for the dead worker's expired 1 s lock every 500 ms, but holds the job it takes back
    // with a long lock: a busy machine that delays its renewals must not make the job stall a second time.
    const rescuer = startWorker({ connection, queueName, lockDuration: 10_000, stalledInterval: 500, metrics: { meterProvider: measured.provider } });
    const stalled: string[] = [];
    rescuer.on('stalled', (id) => stalled.push(id));
    try {
      const r = await flow;
      expect(stalled.length).toBeGreaterThan(0);
      expectSame(r.result, local.result);
      // The stalled shard taken back is a retry in the rescuer's metrics (the dead worker's try was the first).
      const points = await measured.read();
      expect(value(points, 'inrun.job.retries tracin-shard')).toBe(1);
      expect(value(points, 'inrun.jobs tracin-shard completed')).toBe(1);
    } finally {
      doomed.kill('SIGKILL');
      await Promise.all([rescuer.close(), events.close()]);
      await measured.provider.shutdown();
    }
  });
});

if (!hasRedis) console.warn('scaleout.test.ts: no redis-server binary (apt-get install -y redis-server): the BullMQ tests are skipped.');
