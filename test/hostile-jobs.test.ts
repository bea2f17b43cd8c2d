// The offline jobs against hostile payloads (anyone on the same Redis can enqueue one): the worker checks every field before it reads or writes.
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Job } from 'bullmq';
import { InrunError } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { processJob } from '../packages/jobs/src/queue.js';
import { tracinCase } from './jobs-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'inrun-hostile-jobs-'));
const out = join(root, 'a', 'b', 'c', 'out');
let checkpoints = '';
let trainFile = '';
let queriesFile = '';

beforeAll(async () => {
  await tf.setBackend('cpu');
  mkdirSync(out, { recursive: true });
  ({ checkpoints, trainFile, queriesFile } = await tracinCase(root, 12, 2));
});

/** Runs `data` as job `name` the way a worker does; the InrunError it fails with. */
async function refused(name: string, data: unknown): Promise<InrunError> {
  const e = await processJob({ name, data } as Job).then(() => null, (error: unknown) => error);
  expect(e).toBeInstanceOf(InrunError);
  return e as InrunError;
}

/** Every file under the temporary root, to see that a refused job wrote nothing anywhere. */
const files = () => readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();

describe('the worker checks every field of a job before it runs', () => {
  const shard = () => ({ checkpoints, train: trainFile, queries: queriesFile, range: { start: 0, end: 12 }, shard: 0, k: 2, layers: 'all', out, runId: 'r1' });
  const untracJob = () => ({ model: checkpoints, sources: { a: trainFile }, targets: { val: queriesFile }, unlearn: 'a', out, runId: 'r1', method: 'untrac', epochs: 1, batchSize: 4, maxSteps: 1 });

  it('a well-formed shard job still runs and writes inside its output folder', async () => {
    const path = (await processJob({ name: 'tracin-shard', data: { ...shard(), runId: 'fine' } } as Job)) as string;
    expect(path.startsWith(join(out, 'run=fine'))).toBe(true);
  });

  it.each([
    ['tracin-shard', 'job.runId', () => ({ ...shard(), runId: '../../../x' })],
    ['tracin-shard', 'job.runId', () => ({ ...shard(), runId: '..' })],
    ['tracin-shard', 'job.shard', () => ({ ...shard(), shard: '../../y' })],
    ['tracin-shard', 'job.checkpoint', () => ({ ...shard(), checkpoint: '../z' })],
    ['tracin-shard', 'job.range.end', () => ({ ...shard(), range: { start: 0, end: -1 } })],
    ['tracin-shard', 'job.range', () => ({ ...shard(), range: { start: 5, end: 2 } })],
    ['tracin-shard', 'job.k', () => ({ ...shard(), k: 0 })],
    ['tracin-shard', 'job.layers', () => ({ ...shard(), layers: 'some' })],
    ['tracin-shard', 'job.out', () => ({ ...shard(), out: 7 })],
    ['untrac', 'job.sources.../../x', () => ({ ...untracJob(), sources: { '../../x': trainFile }, unlearn: '../../x' })],
    ['untrac', 'job.sources...', () => ({ ...untracJob(), sources: { '..': trainFile }, unlearn: '..' })],
    ['untrac', 'job.unlearn', () => ({ ...untracJob(), unlearn: 'b' })],
    ['untrac', 'job.runId', () => ({ ...untracJob(), runId: 'a/../../b' })],
    ['untrac', 'job.method', () => ({ ...untracJob(), method: 'other' })],
    ['untrac', 'job.learningRate', () => ({ ...untracJob(), learningRate: -1 })],
    ['untrac', 'job.epochs', () => ({ ...untracJob(), epochs: 1.5 })],
    ['tracin-merge', 'job.parts[0]', () => ({ parts: [join(root, 'elsewhere.parquet')], checkpoints, queries: queriesFile, k: 2, out })],
    ['tracin-merge', 'job.parts[0]', () => ({ parts: [join(out, '..', '..', 'x.parquet')], checkpoints, queries: queriesFile, k: 2, out })],
    ['untrac-merge', 'job.parts[0]', () => ({ parts: ['/etc/passwd'], targets: ['val'], sources: ['a'], out })],
    ['untrac-merge', 'job.out', () => ({ parts: [], targets: ['val'], sources: ['a'], out: '' })],
    ['tracin-shard', 'job.data', () => null],
  ] as [string, string, () => unknown][])('%s: a bad field is refused naming %s, writing nothing', async (name, field, data) => {
    const before = files();
    const e = await refused(name, data());
    expect(e.code).toBe('invalid_input');
    // The worker tags the message with the code and field for the caller on the other side of Redis.
    expect(e.message).toContain(`[inrun-error invalid_input ${field}]`);
    expect(files()).toEqual(before);
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
