// The TRAK jobs against hostile payloads, as test/hostile-jobs.test.ts for tracin: the worker refuses a bad field before it reads or writes.
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { InrunError } from 'inrun';
import { describe, expect, it } from 'vitest';
import { processJob } from '../packages/jobs/src/queue.js';

const root = mkdtempSync(join(tmpdir(), 'inrun-hostile-trak-'));
const out = join(root, 'a', 'b', 'out');
mkdirSync(out, { recursive: true });
const files = () => readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();

describe('the worker checks every field of a TRAK job before it runs', () => {
  const shard = () => ({ runs: [join(root, 'ckpt')], train: join(root, 't.jsonl'), queries: join(root, 'q.jsonl'), out, runId: 'r1', range: { start: 0, end: 4 }, shard: 0, dim: 4, seed: 0, batchSize: 8, output: 'margin', layers: 'all', sketches: 'stored' });
  const merge = () => ({ parts: [join(out, 'run=r1', 'ckpt=all', 'shard=0', 'trak-part.json')], k: 2, out, runId: 'r1' });

  it.each([
    ['trak-shard', 'job.runId', () => ({ ...shard(), runId: '../x' })],
    ['trak-shard', 'job.runId', () => ({ ...shard(), runId: '..' })],
    ['trak-shard', 'job.shard', () => ({ ...shard(), shard: '../../y' })],
    ['trak-shard', 'job.range', () => ({ ...shard(), range: { start: 5, end: 2 } })],
    ['trak-shard', 'job.runs', () => ({ ...shard(), runs: [] })],
    ['trak-shard', 'job.dim', () => ({ ...shard(), dim: 0 })],
    ['trak-shard', 'job.layers', () => ({ ...shard(), layers: 'some' })],
    ['trak-merge', 'job.parts[0]', () => ({ ...merge(), parts: [join(out, 'run=r1', 'trak-part.f64')] })],
    ['trak-merge', 'job.parts[0]', () => ({ ...merge(), parts: [join(out, '..', '..', 'x.json')] })],
    ['trak-merge', 'job.lambda', () => ({ ...merge(), lambda: -1 })],
    ['trak-merge', 'job.k', () => ({ ...merge(), k: 0 })],
    // The merge stores the run as <out>/<runId>/: the id must not climb out of the folder.
    ['trak-merge', 'job.runId', () => ({ ...merge(), runId: '../../x' })],
    ['trak-merge', 'job.sqlite', () => ({ ...merge(), sqlite: 7 })],
  ] as [string, string, () => unknown][])('%s: a bad field is refused naming %s, writing nothing', async (name, field, data) => {
    const before = files();
    const e = await processJob({ name, data: data() } as Job).then(() => null, (error: unknown) => error);
    expect(e).toBeInstanceOf(InrunError);
    expect((e as InrunError).code).toBe('invalid_input');
    expect((e as InrunError).message).toContain(`[inrun-error invalid_input ${field}]`);
    expect(files()).toEqual(before);
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
