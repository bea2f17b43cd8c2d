// Test helpers of the offline jobs: a throwaway redis-server on a free port, JSON-lines rows, a small model's checkpoints with single-process tracin() as ground truth, metrics read back from memory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect } from 'vitest';
import { attach, tracin, type TracInResult } from 'inrun';
import { mlp, oneHot, randn } from './cases.js';

/** Whether a redis-server binary is on the PATH (tests that need one are skipped with a notice without it). */
export const hasRedis = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0;

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** A redis-server child on 127.0.0.1:`port`; `args` replace the default no-persistence flags. */
export interface RedisServer {
  readonly port: number;
  readonly process: ChildProcess;
  /** SIGKILL (a crash) or SIGTERM (a clean stop); resolves once the process is gone. */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
}

/** Starts redis-server and resolves once it accepts connections. */
export async function startRedis(port: number, args: readonly string[] = ['--save', '', '--appendonly', 'no']): Promise<RedisServer> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const early = (code: number | null) => reject(new Error(`redis-server exited with ${String(code)}`));
    child.once('exit', early);
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('Ready to accept connections')) {
        child.off('exit', early);
        resolve();
      }
    });
  });
  return {
    port,
    process: child,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await gone;
    },
  };
}

/** The redis-server of a describe block: its port and a BullMQ connection to it, once its beforeAll ran. */
export interface SuiteRedis {
  readonly port: number;
  readonly connection: { readonly host: string; readonly port: number };
  /** `redis://127.0.0.1:<port>`, as the CLI's --redis takes it. */
  readonly url: string;
}

/** Starts a throwaway redis-server on a free port before the enclosing block's tests and stops it after them. */
export function redisForSuite(): SuiteRedis {
  let redis: RedisServer | undefined;
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
  });
  afterAll(async () => {
    await redis?.stop();
  });
  return {
    get port() {
      return port;
    },
    get connection() {
      return { host: '127.0.0.1', port };
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
  };
}

/** Rows as JSON lines `{"id", "xs", "ys"}`, the offline jobs' input. */
export function jsonl(path: string, ids: readonly (string | number)[], xs: tf.Tensor, ys: tf.Tensor): void {
  const [x, y] = [xs.arraySync() as number[][], ys.arraySync() as number[][]];
  writeFileSync(path, ids.map((id, i) => JSON.stringify({ id, xs: x[i], ys: y[i] })).join('\n') + '\n');
}

export function readLines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
}

/** Same queries, same proponent and opponent ids in the same order, scores and self-influence within 1e-5. */
export function expectSame(actual: TracInResult, wanted: TracInResult): void {
  expect(actual.queries.map((q) => q.id)).toEqual(wanted.queries.map((q) => q.id));
  actual.queries.forEach((q, j) => {
    const w = wanted.queries[j]!;
    for (const side of ['proponents', 'opponents'] as const) {
      expect(q[side].map((p) => p.id)).toEqual(w[side].map((p) => p.id));
      q[side].forEach((p, r) => expect(p.score).toBeCloseTo(w[side][r]!.score, 5));
    }
  });
  expect(actual.selfInfluence!.ids).toEqual(wanted.selfInfluence!.ids);
  actual.selfInfluence!.values.forEach((v, i) => expect(v).toBeCloseTo(wanted.selfInfluence!.values[i]!, 5));
  expect(actual.checkpoints).toEqual(wanted.checkpoints);
}

/** A TracIn case on files: two epochs' checkpoints of a small MLP, `n` training rows, 3 queries. */
export interface TracinCase {
  readonly checkpoints: string;
  readonly trainFile: string;
  readonly queriesFile: string;
  /** Single-process `tracin` on the same rows, read back from the files as the shards read them. */
  readonly expected: TracInResult;
}

/** Trains the model on `n` rows (ids `row-<i>`), writes its checkpoints and the rows under `dir`, and computes the ground truth with `k` per query. Needs the cpu backend. */
export async function tracinCase(dir: string, n: number, k: number): Promise<TracinCase> {
  const c = mlp(['relu', 'softmax'], true);
  const [x, y] = [randn([n, 5], 11), oneHot(n, 3, 12)];
  const ids = Array.from({ length: n }, (_, i) => `row-${i}`);
  const checkpoints = join(dir, 'ckpt');
  const run = attach(c.model, { checkpoints: { dir: checkpoints, everyEpochs: 1 }, seed: 3 });
  await run.fit(x, y, { ids, epochs: 2, batchSize: 10, verbose: 0 });
  await run.close();
  const queries = { xs: randn([3, 5], 13), ys: oneHot(3, 3, 14), ids: [7, 8, 9] };
  const trainFile = join(dir, 'train.jsonl');
  const queriesFile = join(dir, 'queries.jsonl');
  jsonl(trainFile, ids, x, y);
  jsonl(queriesFile, queries.ids, queries.xs, queries.ys);
  tf.dispose([x, y, queries.xs, queries.ys]);
  const back = (path: string) => JSON.parse(`[${readLines(path).join(',')}]`) as { id: string | number; xs: number[]; ys: number[] }[];
  const t = back(trainFile);
  const q = back(queriesFile);
  const tensors = [t, q].map((rows) => [tf.tensor2d(rows.map((r) => r.xs)), tf.tensor2d(rows.map((r) => r.ys))] as const);
  const expected = await tracin({
    checkpoints,
    train: { xs: tensors[0]![0], ys: tensors[0]![1], ids: t.map((r) => r.id) },
    queries: { xs: tensors[1]![0], ys: tensors[1]![1], ids: q.map((r) => r.id) },
    k,
  });
  tf.dispose(tensors.flat());
  return { checkpoints, trainFile, queriesFile, expected };
}

/** An SDK provider exporting to memory; `read()` flushes and returns every data point by instrument name, `job.name` and `outcome`. */
export function memoryMetrics() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  return {
    provider,
    async read(): Promise<Map<string, DataPoint<unknown>>> {
      await reader.forceFlush();
      const last = exporter.getMetrics().at(-1);
      const points = new Map<string, DataPoint<unknown>>();
      for (const m of last?.scopeMetrics.flatMap((s) => s.metrics) ?? []) {
        for (const p of m.dataPoints as DataPoint<unknown>[]) {
          points.set([m.descriptor.name, p.attributes['job.name'], p.attributes['outcome']].filter((x) => x !== undefined).join(' '), p);
        }
      }
      return points;
    },
  };
}

export const value = (points: Map<string, DataPoint<unknown>>, key: string) => points.get(key)?.value as number | undefined;
export const histogram = (points: Map<string, DataPoint<unknown>>, key: string) => points.get(key)?.value as Histogram | undefined;
