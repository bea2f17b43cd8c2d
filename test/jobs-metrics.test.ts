// OpenTelemetry metrics of the offline jobs: counts, seconds and retries of in-process runs and of a worker on a throwaway redis-server; results unchanged, a broken meter never fails a job.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Meter, MeterProvider } from '@opentelemetry/api';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributedTracin, startWorker } from '@inrun/jobs';
import { expectSame, freePort, hasRedis, histogram, memoryMetrics, startRedis, tracinCase, value, type RedisServer, type TracinCase } from './jobs-helpers.js';

const K = 3;
let dir: string;
let c: TracinCase;

beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'inrun-job-metrics-'));
  c = await tracinCase(dir, 12, K);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('job metrics in process', () => {
  it('3 shards and the merge: jobs counted by name and outcome, their seconds recorded, none running after, the result unchanged', async () => {
    const m = memoryMetrics();
    const r = await distributedTracin({ checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out: join(dir, 'local'), k: K, shards: 3, metrics: { meterProvider: m.provider, attributes: { experiment: 'e1' } } });
    expectSame(r.result, c.expected);
    const points = await m.read();
    expect(value(points, 'inrun.jobs tracin-shard completed')).toBe(3);
    expect(value(points, 'inrun.jobs tracin-merge completed')).toBe(1);
    expect(points.has('inrun.jobs tracin-shard failed')).toBe(false);
    const seconds = histogram(points, 'inrun.job.duration tracin-shard completed')!;
    expect(seconds.count).toBe(3);
    expect(seconds.sum).toBeGreaterThan(0);
    expect(histogram(points, 'inrun.job.duration tracin-merge completed')!.count).toBe(1);
    expect(value(points, 'inrun.jobs.active tracin-shard')).toBe(0);
    expect(points.has('inrun.job.retries tracin-shard')).toBe(false);
    expect(points.get('inrun.jobs tracin-shard completed')!.attributes['experiment']).toBe('e1');
    await m.provider.shutdown();
  });

  it('a shard that fails is counted failed, and its error is the job’s own', async () => {
    const m = memoryMetrics();
    const run = distributedTracin({ checkpoints: join(dir, 'missing'), train: c.trainFile, queries: c.queriesFile, out: join(dir, 'failing'), k: K, shards: 2, metrics: { meterProvider: m.provider } });
    await expect(run).rejects.toThrow(/no checkpoints in/);
    const points = await m.read();
    expect(value(points, 'inrun.jobs tracin-shard failed')).toBe(1);
    expect(histogram(points, 'inrun.job.duration tracin-shard failed')!.count).toBe(1);
    expect(value(points, 'inrun.jobs.active tracin-shard')).toBe(0);
    await m.provider.shutdown();
  });

  it('a meter whose instruments throw never fails a job', async () => {
    const broken = (): never => {
      throw new Error('exporter down');
    };
    const instrument = { add: broken, record: broken };
    const meter = { createCounter: () => instrument, createHistogram: () => instrument, createUpDownCounter: () => instrument } as unknown as Meter;
    const provider: MeterProvider = { getMeter: () => meter };
    const r = await distributedTracin({ checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out: join(dir, 'broken'), k: K, shards: 2, metrics: { meterProvider: provider } });
    expectSame(r.result, c.expected);
    const noProvider = await distributedTracin({ checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out: join(dir, 'throwing'), k: K, metrics: { meterProvider: { getMeter: broken } } });
    expectSame(noProvider.result, c.expected);
  });

  it('a metrics option that is neither a boolean nor an object is refused', async () => {
    const bad = { checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out: join(dir, 'bad'), metrics: 'yes' as unknown as boolean };
    await expect(distributedTracin(bad)).rejects.toMatchObject({ code: 'invalid_option', field: 'metrics' });
  });
});

describe.skipIf(!hasRedis)('job metrics of a worker (redis-server on a free port)', () => {
  let redis: RedisServer | undefined;

  beforeAll(async () => {
    redis = await startRedis(await freePort());
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('a shard whose checkpoints appear after its first attempt: the failure and the retry are counted by the worker and by the caller', async () => {
    const connection = { host: '127.0.0.1', port: redis!.port };
    // The checkpoints are copied aside and moved into place once the worker saw a failed attempt (the retry comes 1 s later).
    const late = join(dir, 'late-ckpt');
    const staged = join(dir, 'staged-ckpt');
    cpSync(c.checkpoints, staged, { recursive: true });
    const onWorker = memoryMetrics();
    const onCaller = memoryMetrics();
    const worker = startWorker({ connection, queueName: 'inrun-metrics', metrics: { meterProvider: onWorker.provider } });
    let failures = 0;
    worker.on('failed', () => {
      if (failures++ === 0) renameSync(staged, late);
    });
    try {
      const r = await distributedTracin({ checkpoints: late, train: c.trainFile, queries: c.queriesFile, out: join(dir, 'retried'), k: K, shards: 2, queue: { connection, queueName: 'inrun-metrics', timeoutMs: 300_000 }, metrics: { meterProvider: onCaller.provider } });
      // Same checkpoints under another folder.
      expect(r.result.checkpoints.map((k) => k.path.replace(late, c.checkpoints))).toEqual(c.expected.checkpoints.map((k) => k.path));
      expectSame(r.result, { ...c.expected, checkpoints: r.result.checkpoints });
      expect(failures).toBeGreaterThanOrEqual(1);
      const w = await onWorker.read();
      expect(value(w, 'inrun.jobs tracin-shard failed')).toBe(failures);
      expect(value(w, 'inrun.job.retries tracin-shard')).toBe(failures);
      expect(value(w, 'inrun.jobs tracin-shard completed')).toBe(2);
      expect(value(w, 'inrun.jobs tracin-merge completed')).toBe(1);
      expect(histogram(w, 'inrun.job.duration tracin-shard completed')!.count).toBe(2);
      expect(value(w, 'inrun.jobs.active tracin-shard')).toBe(0);
      const f = await onCaller.read();
      expect(value(f, 'inrun.flow.jobs tracin-shard completed')).toBe(2);
      expect(value(f, 'inrun.flow.jobs tracin-merge completed')).toBe(1);
      expect(value(f, 'inrun.flow.retries tracin-shard')).toBe(failures);
      expect(f.has('inrun.flow.jobs tracin-shard failed')).toBe(false);
    } finally {
      await worker.close();
      await Promise.all([onWorker.provider.shutdown(), onCaller.provider.shutdown()]);
    }
  });

  it('inrun worker --metrics-port serves the jobs it ran to Prometheus', async () => {
    const metricsPort = await freePort();
    const cli = join(import.meta.dirname, '..', 'packages', 'cli', 'src', 'cli', 'inrun.ts');
    const worker = spawn(process.execPath, ['--import', 'tsx', cli, 'worker', '--redis', `redis://127.0.0.1:${redis!.port}`, '--queue', 'inrun-prom', '--metrics-port', String(metricsPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        worker.once('exit', (code) => reject(new Error(`worker exited early (${String(code)})`)));
        worker.stdout!.on('data', (b: Buffer) => {
          if (b.toString().includes(`metrics at http://127.0.0.1:${metricsPort}/metrics`)) resolve();
        });
      });
      const r = await distributedTracin({ checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out: join(dir, 'prom'), k: K, shards: 2, queue: { connection: { host: '127.0.0.1', port: redis!.port }, queueName: 'inrun-prom', timeoutMs: 300_000 } });
      expectSame(r.result, c.expected);
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(text).toMatch(/^inrun_jobs_total\{[^}]*job_name="tracin-shard"[^}]*outcome="completed"[^}]*\} 2$/m);
      expect(text).toMatch(/^inrun_jobs_total\{[^}]*job_name="tracin-merge"[^}]*outcome="completed"[^}]*\} 1$/m);
      expect(text).toMatch(/^inrun_job_duration_count\{[^}]*job_name="tracin-shard"[^}]*\} 2$/m);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

if (!hasRedis) console.warn('jobs-metrics.test.ts: no redis-server binary (apt-get install -y redis-server): the worker test is skipped.');
