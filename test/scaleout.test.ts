// Offline jobs past one process: TracIn shards and UnTrac ascents in process (API, CLI) and on BullMQ workers over a throwaway redis-server equal single-process tracin() and untrac().
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributedTracin, distributedUntrac, loadCheckpoint, startWorker, untrac, type TracInResult, type UntracRow } from 'inrun';
import { main } from '../src/cli/program.js';
import { oneHot, randn } from './cases.js';
import { expectSame, freePort, hasRedis, jsonl, memoryMetrics, readLines, startRedis, tracinCase, value, type RedisServer } from './jobs-helpers.js';

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

async function readParquet(path: string): Promise<Record<string, unknown>[]> {
  return (await parquetReadObjects({ file: await asyncBufferFromFile(path) })) as Record<string, unknown>[];
}

/** UnTrac over the training file cut into two sources, the queries as the target: one `untrac` call, the ground truth of the jobs. */
async function untracCase(method: 'untrac' | 'untrac-inv') {
  const lines = readLines(trainFile);
  const files = { a: join(dir, 'a.jsonl'), b: join(dir, 'b.jsonl') };
  writeFileSync(files.a, lines.slice(0, 8).join('\n'));
  writeFileSync(files.b, lines.slice(8).join('\n'));
  const settings = { method, learningRate: 0.01, epochs: 2, batchSize: 4 } as const;
  const rows = (path: string) => {
    const r = readLines(path).map((l) => JSON.parse(l) as { id: string; xs: number[]; ys: number[] });
    return { xs: tf.tensor2d(r.map((x) => x.xs)), ys: tf.tensor2d(r.map((x) => x.ys)), ids: r.map((x) => x.id) };
  };
  const model = await loadCheckpoint(checkpoints);
  const truth = await untrac(model, { method, epochs: 2, batchSize: 4, optimizer: () => tf.train.adam(0.01), sources: { a: rows(files.a), b: rows(files.b) }, targets: { val: rows(queriesFile) } });
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
  it('inrun untrac writes influence.parquet equal to one untrac call', async () => {
    const { options, truth } = await untracCase('untrac');
    const out = join(dir, 'untrac-cli');
    const args = ['untrac', '--model', checkpoints, '--sources', `a=${options.sources.a}`, `b=${options.sources.b}`, '--targets', `val=${queriesFile}`, '--learning-rate', '0.01', '--epochs', '2', '--batch-size', '4', '--out', out];
    expect(await main(args, { out: () => undefined, err: (e: string) => process.stderr.write(e) })).toBe(0);
    const rows = await readParquet(join(out, 'influence.parquet'));
    expect(rows.map((r) => [r.target, r.source])).toEqual(truth.map((r) => [r.target, r.source]));
    rows.forEach((r, i) => expect(r.influence as number).toBeCloseTo(truth[i]!.influence, 5));
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

  it('the CLI loads tf.js only when a job command runs (tf.js registers globalThis._tfengine)', () => {
    const src = join(import.meta.dirname, '..', 'src');
    const probe = `const { main } = await import(${JSON.stringify(join(src, 'cli', 'program.ts'))});
      await main(['tracin', '--help'], { out: () => undefined, err: () => undefined });
      const before = '_tfengine' in globalThis;
      await import(${JSON.stringify(join(src, 'jobs', 'index.ts'))});
      process.stdout.write(JSON.stringify({ before, after: '_tfengine' in globalThis }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { encoding: 'utf8' });
    expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true });
  });

  it('in process: 3 shards equal single-process tracin (ids keep their types)', async () => {
    const before = tf.memory().numTensors;
    const progress: unknown[] = [];
    const r = await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'local'), k: K, shards: 3, onProgress: (p) => progress.push(p) });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual([1, 2, 3].map((done) => ({ done, failed: 0, total: 3 })));
    expect(r.parts).toHaveLength(3);
    expectSame(r.result, expected);
  });

  it('inrun tracin writes queries.parquet and self_influence.parquet equal to tracin()', async () => {
    const out = join(dir, 'cli');
    const io = { out: () => undefined, err: (s: string) => process.stderr.write(s) };
    const code = await main(['tracin', '--checkpoints', checkpoints, '--train', trainFile, '--queries', queriesFile, '--k', String(K), '--shards', '4', '--out', out], io);
    expect(code).toBe(0);
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

describe.skipIf(!hasRedis)('jobs on BullMQ workers (redis-server on a free port, no persistence)', () => {
  let redis: RedisServer | undefined;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('a flow of 3 shards on 2 workers equals single-process tracin', async () => {
    const connection = { host: '127.0.0.1', port };
    const workers = [startWorker({ connection }), startWorker({ connection })];
    try {
      const progress: { done: number; failed: number; total: number }[] = [];
      const r = await distributedTracin({ checkpoints, train: trainFile, queries: queriesFile, out: join(dir, 'queue'), k: K, shards: 3, queue: { connection, timeoutMs: 60_000 }, onProgress: (p) => progress.push(p) });
      expectSame(r.result, expected);
      expect(progress.at(-1)).toEqual({ done: 3, failed: 0, total: 3 });
      const rows = await readParquet(r.queries);
      expect(rows.length).toBe(expected.queries.reduce((n, q) => n + q.proponents.length + q.opponents.length, 0));
      // The command line's --redis path: the same files as in process.
      const out = join(dir, 'cli-queue');
      const code = await main(['tracin', '--checkpoints', checkpoints, '--train', trainFile, '--queries', queriesFile, '--k', String(K), '--shards', '2', '--out', out, '--redis', `redis://127.0.0.1:${port}/0`], { out: () => undefined, err: (e: string) => process.stderr.write(e) });
      expect(code).toBe(0);
      const viaCli = await readParquet(join(out, 'queries.parquet'));
      expect(viaCli.map(({ score: _, ...key }) => key)).toEqual(rows.map(({ score: _, ...key }) => key));
      viaCli.forEach((row, i) => expect(row.score as number).toBeCloseTo(rows[i]!.score as number, 5));
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('untrac on 2 workers, one job per source: equals one untrac call', async () => {
    const connection = { host: '127.0.0.1', port };
    const queueName = 'inrun-untrac';
    const workers = [startWorker({ connection, queueName }), startWorker({ connection, queueName })];
    try {
      const { options, truth } = await untracCase('untrac');
      const r = await distributedUntrac({ ...options, out: join(dir, 'untrac-queue'), queue: { connection, queueName, timeoutMs: 60_000 } });
      expectSameRows(r.rows, truth);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('a shard that fails on every attempt fails the flow with a message naming it; nothing is merged', async () => {
    const connection = { host: '127.0.0.1', port };
    const queueName = 'inrun-fail';
    const worker = startWorker({ connection, queueName });
    const out = join(dir, 'failed');
    try {
      const progress: { done: number; failed: number; total: number }[] = [];
      const flow = distributedTracin({ checkpoints: join(dir, 'no-such-checkpoints'), train: trainFile, queries: queriesFile, out, k: K, shards: 2, queue: { connection, queueName, attempts: 2, timeoutMs: 30_000 }, onProgress: (p) => progress.push(p) });
      await expect(flow).rejects.toThrow(/shard 0 \(rows 0 to 9 of .*train\.jsonl\):.*no checkpoints in/);
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
    const connection = { host: '127.0.0.1', port };
    // A queue of its own: BullMQ's stalled check runs at most once per interval per queue, and the
    // earlier workers' default 30 s interval would hold this one's back.
    const queueName = 'inrun-kill';
    // The real command line, in its own process, so that it can be SIGKILLed.
    const cli = join(import.meta.dirname, '..', 'src', 'cli', 'inrun.ts');
    const doomed = spawn(process.execPath, ['--import', 'tsx', cli, 'worker', '--redis', `redis://127.0.0.1:${port}`, '--queue', queueName, '--lock-ms', '1000'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
    const flow = distributedTracin({ checkpoints, train: bigTrain, queries: queriesFile, out: join(dir, 'big-queue'), k: K, queue: { connection, queueName, timeoutMs: 60_000 } });
    await seen;
    doomed.removeAllListeners('exit');
    doomed.kill('SIGKILL');
    const measured = memoryMetrics();
    // Its own lock long: a shard computes without yielding, and on a loaded machine a 1 s lock would
    // expire under it and count a second stall (BullMQ fails a job stalled twice). The dead worker's
    // 1 s lock and this worker's 0.5 s check still bring the job back quickly.
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
