// distributedTrak(): 2 and 3 row shards in process give trak()'s scores on the same rows (within 1e-6 relative).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { distributedTrak } from '@inrun/jobs';
import { trak, type TrakResult } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { readLines, tracinCase } from './jobs-helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Every (query, training id) score of a result whose k covers all rows. */
function scores(r: TrakResult): Map<string, number> {
  const m = new Map<string, number>();
  for (const q of r.queries) for (const p of [...q.proponents, ...q.opponents]) m.set(`${String(q.id)}/${String(p.id)}`, p.score);
  return m;
}

describe('distributedTrak', () => {
  it('equals trak() with 2 and 3 shards in process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inrun-trak-sharded-'));
    const { checkpoints, trainFile, queriesFile } = await tracinCase(dir, 16, 3);
    const back = (path: string) => JSON.parse(`[${readLines(path).join(',')}]`) as { id: string | number; xs: number[]; ys: number[] }[];
    const [t, q] = [back(trainFile), back(queriesFile)];
    const rows = (r: typeof t) => ({ xs: tf.tensor2d(r.map((x) => x.xs)), ys: tf.tensor2d(r.map((x) => x.ys)), ids: r.map((x) => x.id) });
    const settings = { k: 16, dim: 4, lambda: 0.01, seed: 3 };
    const wanted = scores(await trak({ runs: [checkpoints], train: rows(t), queries: rows(q), ...settings }));
    expect(wanted.size).toBeGreaterThan(3 * 8);
    for (const shards of [2, 3]) {
      const got = await distributedTrak({ runs: [checkpoints], train: trainFile, queries: queriesFile, out: join(dir, `out-${shards}`), shards, ...settings });
      expect(got.parts).toHaveLength(shards);
      expect(got.trainingRows).toBe(16);
      const s = scores(got.result);
      expect([...s.keys()].sort(), `${shards} shards`).toEqual([...wanted.keys()].sort());
      for (const [key, w] of wanted) expect(Math.abs(s.get(key)! - w), `${shards} shards ${key}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(w)));
    }
  });
});
