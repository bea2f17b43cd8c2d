// Redis restarted mid-run (append-only file on, fsync always): the workers reconnect, the caller's flow completes, and the result equals single-process tracin().
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributedTracin, startWorker } from '@inrun/jobs';
import { expectSame, freePort, hasRedis, startRedis, tracinCase, type RedisServer, type TracinCase } from './jobs-helpers.js';

const K = 4;
// Enough rows that 8 shards take a few seconds: Redis dies after the first part is written, with most shards to go.
const N = 16_000;
const SHARDS = 8;
let dir: string;
let c: TracinCase;

async function until(done: () => boolean, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(!hasRedis)('Redis restarted mid-run', () => {
  let redis: RedisServer | undefined;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'inrun-restart-'));
    c = await tracinCase(dir, N, K);
  });

  afterAll(async () => {
    await redis?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('with persistence: killed after the first shard and started again on the same port, the flow completes and equals tracin', async () => {
    const data = join(dir, 'redis');
    mkdirSync(data);
    // Every write is on disk before Redis answers it, so a SIGKILL loses nothing the clients were told.
    const persistent = ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', data];
    const port = await freePort();
    redis = await startRedis(port, persistent);
    const connection = { host: '127.0.0.1', port };
    // A reply lost with Redis (a job handed to a worker as Redis died) leaves that job locked to nobody
    // until its lock expires: a shorter lock brings it back in seconds instead of BullMQ's 30 s to 60 s.
    // Not much shorter: a lock whose renewal a loaded machine delays past it counts as a second stall
    // (BullMQ fails a job stalled twice).
    const workers = [0, 1].map(() => startWorker({ connection, lockDuration: 5000, stalledInterval: 1000 }));
    // Whether a worker's client reports the outage depends on what it was doing at that moment (a busy shard
    // sends nothing for a second, and ioredis reconnects quietly): a connection of the test's own sees it always.
    let outageSeen = false;
    const probe = connect(port, '127.0.0.1');
    probe.on('error', () => undefined);
    probe.on('close', () => (outageSeen = true));
    for (const w of workers) w.on('error', () => undefined);
    try {
      const out = join(dir, 'out');
      const flow = distributedTracin({ checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out, runId: 'kept', k: K, shards: SHARDS, queue: { connection, timeoutMs: 120_000 } });
      // Guards the test itself: the flow must still be running when Redis goes.
      let settled = false;
      void flow.then(
        () => (settled = true),
        () => (settled = true),
      );
      await until(() => existsSync(join(out, 'run=kept', 'ckpt=all', 'shard=0', 'part.parquet')), 'the first shard');
      expect(settled).toBe(false);
      await redis.stop('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      redis = await startRedis(port, persistent);
      const r = await flow;
      expectSame(r.result, c.expected);
      // The outage really happened while the flow ran (connections to Redis were cut), not slept through.
      expect(outageSeen).toBe(true);
      expect(existsSync(join(out, 'queries.parquet'))).toBe(true);
    } finally {
      probe.destroy();
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('without persistence: the restarted Redis has lost the flow, and the caller fails at once saying so (not at its timeout)', async () => {
    await redis?.stop();
    const port = await freePort();
    redis = await startRedis(port);
    const connection = { host: '127.0.0.1', port };
    const worker = startWorker({ connection, queueName: 'inrun-lost' });
    worker.on('error', () => undefined);
    try {
      const out = join(dir, 'lost');
      const flow = distributedTracin({ checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out, runId: 'lost', k: K, shards: SHARDS, queue: { connection, queueName: 'inrun-lost', timeoutMs: 600_000 } });
      const failed = expect(flow).rejects.toThrow(/gone from Redis \(restarted without persistence/);
      await until(() => existsSync(join(out, 'run=lost', 'ckpt=all', 'shard=0', 'part.parquet')), 'the first shard');
      await redis.stop('SIGKILL');
      redis = await startRedis(port);
      await failed;
      expect(existsSync(join(out, 'queries.parquet'))).toBe(false);
    } finally {
      await worker.close();
    }
  });

  it('timeoutMs bounds the wait: no worker, and no Redis at all', async () => {
    await redis?.stop();
    redis = await startRedis(await freePort());
    const port = redis.port;
    const base = { checkpoints: c.checkpoints, train: c.trainFile, queries: c.queriesFile, out: join(dir, 'never'), k: K };
    await expect(distributedTracin({ ...base, queue: { connection: { host: '127.0.0.1', port }, queueName: 'inrun-idle', timeoutMs: 1500 } })).rejects.toThrow(/no result from job .* before the flow's timeout \(timeoutMs\)/);
    const nothing = await freePort();
    await expect(distributedTracin({ ...base, queue: { connection: { host: '127.0.0.1', port: nothing }, timeoutMs: 1500 } })).rejects.toThrow(/reaching Redis at 127\.0\.0\.1:\d+ did not finish before the flow's timeout/);
  });
});

if (!hasRedis) console.warn('scaleout-restart.test.ts: no redis-server binary (apt-get install -y redis-server): the test is skipped.');
