// distributedTrak(): 2 and 3 row shards in process (and 3 on BullMQ workers, through the API and `inrun trak --redis`) give trak()'s scores on the same rows (within 1e-6 relative).
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { distributedTrak, startWorker } from '@inrun/jobs';
import { trak, type TrakResult } from 'inrun';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { openStore } from '@inrun/cli';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../packages/cli/src/cli/program.js';
import { freePort, hasRedis, readLines, redisForSuite, tracinCase } from './jobs-helpers.js';

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
  const redis = redisForSuite();

  it('3 shards on a worker equal trak()', async () => {
    const queueName = 'inrun-trak';
    const worker = startWorker({ connection: redis.connection, queueName });
    try {
      const got = await distributedTrak({ runs: [c.checkpoints], train: c.trainFile, queries: c.queriesFile, out: join(dir, 'queue'), shards: 3, queue: { connection: redis.connection, queueName, timeoutMs: 300_000 }, ...settings });
      expect(got.trainingRows).toBe(16);
      expectTrak(got.result, 'queue');
    } finally {
      await worker.close();
    }
  });

  it('inrun trak --redis --shards 3 writes the lists and the stored run of the in-process command', async () => {
    const flags = (out: string) => ['trak', '--checkpoints', c.checkpoints, '--train', c.trainFile, '--queries', c.queriesFile, '--out', out, '--k', '16', '--dim', '4', '--lambda', '0.01', '--seed', '3'];
    const here = join(dir, 'cli-here');
    const queued = join(dir, 'cli-queued');
    const io = { out: () => undefined, err: (e: string) => process.stderr.write(e) };
    expect(await main(flags(here), io)).toBe(0);
    const worker = startWorker({ connection: redis.connection, queueName: 'inrun-trak-cli' });
    try {
      expect(await main([...flags(queued), '--redis', redis.url, '--shards', '3', '--queue', 'inrun-trak-cli', '--timeout', '120', '--run-id', 'trak-q'], io)).toBe(0);
    } finally {
      await worker.close();
    }
    expect(readdirSync(join(queued, 'run=trak-q', 'ckpt=all')).sort()).toEqual(['shard=0', 'shard=1', 'shard=2']);
    const lists = async (out: string) => (await parquetReadObjects({ file: await asyncBufferFromFile(join(out, 'queries.parquet')) })) as Record<string, unknown>[];
    const [a, b] = [await lists(here), await lists(queued)];
    expect(b.map((r) => [r['query_id'], r['kind'], r['rank'], r['train_id']])).toEqual(a.map((r) => [r['query_id'], r['kind'], r['rank'], r['train_id']]));
    b.forEach((r, i) => expect(Math.abs((r['score'] as number) - (a[i]!['score'] as number))).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(a[i]!['score'] as number))));
    const stored = async (out: string) => {
      const store = await openStore(out);
      try {
        return (await store.all("SELECT example_id, value FROM example_scores WHERE column_name = 'trak:queries' ORDER BY example_id")).map((r) => [String(r['example_id']), Number(r['value'])] as const);
      } finally {
        await store.close();
      }
    };
    const [sa, sb] = [await stored(here), await stored(queued)];
    expect(sb.map(([id]) => id)).toEqual(sa.map(([id]) => id));
    expect(sa).toHaveLength(16);
    sb.forEach(([, v], i) => expect(v).toBeCloseTo(sa[i]![1], 5));
    // The run id names the stored run too.
    expect(existsSync(join(queued, 'trak-q', 'run.json'))).toBe(true);
  });

  it('inrun trak --redis: no Redis listening fails with exit 2 naming the address, and no worker fails at --timeout, leaving no run folder', async () => {
    const errors: string[] = [];
    const io = { out: () => undefined, err: (e: string) => errors.push(e) };
    const nothing = await freePort();
    const out = join(dir, 'cli-no-redis');
    const base = ['trak', '--checkpoints', c.checkpoints, '--train', c.trainFile, '--queries', c.queriesFile, '--out', out];
    expect(await main([...base, '--redis', `redis://127.0.0.1:${nothing}`], io)).toBe(2);
    expect(errors.join('')).toContain(`cannot reach Redis at 127.0.0.1:${nothing}`);
    expect(await main([...base, '--redis', redis.url, '--queue', 'inrun-trak-idle', '--timeout', '1.5'], io)).toBe(2);
    expect(errors.join('')).toMatch(/before the flow's timeout/);
    expect(errors.join('')).not.toContain('unexpected failure');
    // Neither a run folder nor the --out folder the refused run created is left behind.
    expect(existsSync(out)).toBe(false);
  });
});
