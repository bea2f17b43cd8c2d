// distributedTrak(): 2 and 3 row shards in process (and 3 on BullMQ workers) give trak()'s scores on the same rows (within 1e-6 relative).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { distributedTrak, startWorker } from '@inrun/jobs';
import { trak, type TrakResult } from 'inrun';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, hasRedis, readLines, startRedis, tracinCase, type RedisServer } from './jobs-helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Every (query, training id) score of a result whose k covers all rows. */
function scores(r: TrakResult): Map<string, number> {
  const m = new Map<string, number>();
  for (const q of r.queries) for (const p of [...q.proponents, ...q.opponents]) m.set(`${String(q.id)}/${String(p.id)}`, p.score);
  return m;
}

const settings = { k: 16, dim: 4, lambda: 0.01, seed: 3 };
let dir: string;
let c: { checkpoints: string; trainFile: string; queriesFile: string };
let wanted: Map<string, number>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inrun-trak-sharded-'));
  c = await tracinCase(dir, 16, 3);
  const back = (path: string) => JSON.parse(`[${readLines(path).join(',')}]`) as { id: string | number; xs: number[]; ys: number[] }[];
  const rows = (r: ReturnType<typeof back>) => ({ xs: tf.tensor2d(r.map((x) => x.xs)), ys: tf.tensor2d(r.map((x) => x.ys)), ids: r.map((x) => x.id) });
  wanted = scores(await trak({ runs: [c.checkpoints], train: rows(back(c.trainFile)), queries: rows(back(c.queriesFile)), ...settings }));
});

/** Within 1e-6 relative of trak(), every (query, row) pair present. */
function expectTrak(got: TrakResult, label: string): void {
  const s = scores(got);
  expect([...s.keys()].sort(), label).toEqual([...wanted.keys()].sort());
  for (const [key, w] of wanted) expect(Math.abs(s.get(key)! - w), `${label} ${key}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(w)));
}

describe('distributedTrak', () => {
  it('equals trak() with 2 and 3 shards in process', async () => {
    expect(wanted.size).toBeGreaterThan(3 * 8);
    for (const shards of [2, 3]) {
      const got = await distributedTrak({ runs: [c.checkpoints], train: c.trainFile, queries: c.queriesFile, out: join(dir, `out-${shards}`), shards, ...settings });
      expect(got.parts).toHaveLength(shards);
      expect(got.trainingRows).toBe(16);
      expectTrak(got.result, `${shards} shards`);
    }
  });
});

describe.skipIf(!hasRedis)('distributedTrak on BullMQ (redis-server on a free port, no persistence)', () => {
  let redis: RedisServer | undefined;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('3 shards on a worker equal trak()', async () => {
    const connection = { host: '127.0.0.1', port };
    const queueName = 'inrun-trak';
    const worker = startWorker({ connection, queueName });
    try {
      const got = await distributedTrak({ runs: [c.checkpoints], train: c.trainFile, queries: c.queriesFile, out: join(dir, 'queue'), shards: 3, queue: { connection, queueName, timeoutMs: 60_000 }, ...settings });
      expect(got.trainingRows).toBe(16);
      expectTrak(got.result, 'queue');
    } finally {
      await worker.close();
    }
  });
});
