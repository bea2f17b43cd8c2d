import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, loadCheckpoint, readCheckpointInfo, tracin, type TracInResult } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { dot, layerVariables, losses, perExampleGradients, spearman } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const N = 20;
const x = tf.randomNormal([N, 12], 0, 1, 'float32', 1);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: N }, (_, i) => (i * 7) % 3), 'int32'), 3);
const qx = tf.randomNormal([3, 12], 0, 1, 'float32', 2);
const qy = tf.oneHot(tf.tensor1d([0, 1, 2], 'int32'), 3);
const ids = Array.from({ length: N }, (_, i) => `t${i}`);

/** Trains 3 epochs with a checkpoint after each; returns the checkpoint folder. */
async function trainWithCheckpoints(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'inrun-tracin-')), 'ckpt');
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 24, activation: 'tanh', inputShape: [12], kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.3), loss: 'categoricalCrossentropy' });
  const run = attach(model, { checkpoints: { dir, everyEpochs: 1 }, seed: 5 });
  await run.fit(x, y, { ids, epochs: 3, batchSize: 5, verbose: 0 });
  await run.close();
  return dir;
}

/** Brute force: sum over checkpoints of lr_c <g_z, g_q> (one backward per example), and self-influence. */
async function bruteForce(dir: string, lastOnly: boolean) {
  const scores = Array.from({ length: N }, () => [0, 0, 0]);
  const self = new Array<number>(N).fill(0);
  for (const step of [3, 7, 11]) {
    const path = join(dir, `step-${String(step).padStart(9, '0')}`);
    const model = await loadCheckpoint(path);
    const lr = readCheckpointInfo(path).learningRate;
    const vars = layerVariables(model, lastOnly ? [model.layers.at(-1)!.name] : undefined);
    const forward = (t: tf.Tensor) => model.apply(t) as tf.Tensor;
    const g = perExampleGradients(forward, losses.categorical, x, y, vars);
    const gq = perExampleGradients(forward, losses.categorical, qx, qy, vars);
    g.forEach((gi, i) => {
      gq.forEach((gj, j) => (scores[i]![j]! += lr * dot(gi, gj)));
      self[i]! += lr * dot(gi, gi);
    });
    model.dispose();
  }
  return { scores, self };
}

function expectMatches(result: TracInResult, expected: { scores: number[][]; self: number[] }, k: number): void {
  result.queries.forEach((query, j) => {
    const ranked = expected.scores.map((s, i) => ({ id: ids[i]!, score: s[j]! }));
    const best = ranked.filter((r) => r.score > 0).sort((a, b) => b.score - a.score).slice(0, k);
    const worst = ranked.filter((r) => r.score < 0).sort((a, b) => a.score - b.score).slice(0, k);
    expect(query.proponents.map((p) => p.id)).toEqual(best.map((p) => p.id));
    expect(query.opponents.map((p) => p.id)).toEqual(worst.map((p) => p.id));
    query.proponents.forEach((p, i) => expect(p.score).toBeCloseTo(best[i]!.score, 4));
    query.opponents.forEach((p, i) => expect(p.score).toBeCloseTo(worst[i]!.score, 4));
  });
  result.selfInfluence!.values.forEach((v, i) => expect(v).toBeCloseTo(expected.self[i]!, 4));
}

describe('TracIn from checkpoints', () => {
  it('equals the brute-force sum over checkpoints; streaming in small batches changes nothing', async () => {
    const dir = await trainWithCheckpoints();
    const expected = await bruteForce(dir, false);
    const result = await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: 4 });
    expect(result.checkpoints.map((c) => c.step)).toEqual([3, 7, 11]);
    expect(result.checkpoints.every((c) => c.learningRate === 0.3)).toBe(true);
    expectMatches(result, expected, 4);
    const streamed = await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: 4, batchSize: 3, ghostPath: 'pairwise', matrix: true });
    expectMatches(streamed, expected, 4);
    // matrix: every score, row-major in training order.
    expect(result.matrix).toBeNull();
    expect(streamed.matrix!.length).toBe(N * 3);
    expected.scores.forEach((row, i) => row.forEach((v, j) => expect(streamed.matrix![i * 3 + j]!).toBeCloseTo(v, 4)));
  });

  it('gives timers a turn every batch (a queued shard renews its job lock on a timer)', async () => {
    const dir = await trainWithCheckpoints();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, batchSize: 2 });
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(1);
  });

  it("layers: 'last' is the last-layer fast path, equal to brute force over that layer's weights", async () => {
    const dir = await trainWithCheckpoints();
    const expected = await bruteForce(dir, true);
    expectMatches(await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: 6, layers: 'last' }), expected, 6);
  });

  it('sketches: unbiased over seeds, and closer to the exact scores as the sketch grows', async () => {
    const dir = await trainWithCheckpoints();
    const { scores: exact } = await bruteForce(dir, false);
    const full = (r: TracInResult) => {
      const m = Array.from({ length: N }, () => [0, 0, 0]);
      r.queries.forEach((q, j) => [...q.proponents, ...q.opponents].forEach((p) => (m[ids.indexOf(p.id as string)]![j] = p.score)));
      return m.flat();
    };
    const truth = exact.flat();
    const rho: number[] = [];
    // Layers: 13 x 24 (inputs + bias, outputs) and 25 x 3; a side no wider than the size is kept whole.
    for (const size of [2, 6, 12]) {
      const estimates: number[][] = [];
      for (let seed = 0; seed < (size === 12 ? 64 : 4); seed++) {
        estimates.push(full(await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: N, selfInfluence: false, sketch: { size, seed } })));
      }
      rho.push(estimates.reduce((s, e) => s + spearman(e, truth), 0) / estimates.length);
      if (size === 12) {
        // Unbiased: the mean estimate over seeds sits on the exact scores (least-squares slope 1, no
        // offset); a mis-scaled projection would tilt the slope.
        const mean = truth.map((_, i) => estimates.reduce((s, e) => s + e[i]!, 0) / estimates.length);
        const slope = truth.reduce((s, t, i) => s + t * mean[i]!, 0) / truth.reduce((s, t) => s + t * t, 0);
        const scale = Math.max(...truth.map(Math.abs));
        expect(Math.abs(slope - 1)).toBeLessThan(0.08);
        expect(Math.abs(mean.reduce((s, m, i) => s + m - truth[i]!, 0) / truth.length) / scale).toBeLessThan(0.03);
      }
    }
    expect(rho[1]!).toBeGreaterThan(rho[0]!);
    expect(rho[2]!).toBeGreaterThan(rho[1]!);
    expect(rho[2]!).toBeGreaterThan(0.7);
    // A seed draws the same projections every time, 0 (the default) included: tf.js reads a seed of 0 as none.
    for (const seed of [0, 1]) {
      const call = () => tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: N, selfInfluence: false, sketch: { size: 6, seed } });
      expect(full(await call())).toEqual(full(await call()));
    }
    // At a size no smaller than any side, nothing is projected: the scores are exact.
    const whole = full(await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: N, selfInfluence: false, sketch: { size: 25, seed: 1 } }));
    const scale = Math.max(...truth.map(Math.abs));
    whole.forEach((v, i) => expect(Math.abs(v - truth[i]!) / scale).toBeLessThan(1e-4));
  });
});

describe('TracIn summed per source', () => {
  it('sums each source\'s brute-force scores per query (per-row list or map by id); errors name the field', async () => {
    const dir = await trainWithCheckpoints();
    const { scores } = await bruteForce(dir, false);
    const names = ids.map((_, i) => ['web', 'news', 'books'][(i * 5) % 3]!);
    const result = await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: 2, batchSize: 7, sources: names });
    expect(result.sources!.map((s) => s.source)).toEqual(['web', 'books', 'news']);
    for (const s of result.sources!) {
      const rows = names.flatMap((n, i) => (n === s.source ? [i] : []));
      expect(s.examples).toBe(rows.length);
      const wanted = [0, 1, 2].map((j) => rows.reduce((sum, i) => sum + scores[i]![j]!, 0));
      s.scores.forEach((v, j) => expect(v).toBeCloseTo(wanted[j]!, 4));
      expect(s.mean).toBeCloseTo(wanted.reduce((a, b) => a + b, 0) / 3, 4);
    }
    const byId = await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: 2, sources: new Map(ids.map((id, i) => [id, names[i]!])) });
    expect(byId.sources!.map((s) => [s.source, ...s.scores].join())).toEqual(result.sources!.map((s) => [s.source, ...s.scores].join()));
    expect((await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: 2 })).sources).toBeNull();
    const call = (sources: readonly string[] | ReadonlyMap<string, string>) => tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, sources });
    await expect(call(names.slice(1))).rejects.toMatchObject({ code: 'invalid_option', field: 'sources' });
    await expect(call(new Map([[ids[0]!, 'web']]))).rejects.toMatchObject({ code: 'invalid_option', field: 'sources[1]' });
    await expect(tracin({ checkpoints: dir, train: 'sketches', queries: { xs: qx, ys: qy }, sources: names })).rejects.toMatchObject({ field: 'sources' });
  });
});

describe('sketches saved during the run', () => {
  it("tracin({ train: 'sketches' }) scores queries from the checkpoint's stored sketches, with no pass over the training data", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'inrun-sketch-')), 'ckpt');
    const model = tf.sequential({
      layers: [tf.layers.dense({ units: 24, activation: 'tanh', inputShape: [12], kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }), tf.layers.dense({ units: 3, activation: 'softmax' })],
    });
    const optimizer = tf.train.sgd(0.3);
    model.compile({ optimizer, loss: 'categoricalCrossentropy' });
    const run = attach(model, { sketch: { size: 8, seed: 11 } });
    await run.step(ids.slice(0, 10), () => model.trainOnBatch(tf.slice(x, 0, 10), tf.slice(y, 0, 10)));
    // A full-batch step at learning rate 0: every stored sketch is then of a gradient at the checkpoint's weights.
    optimizer.setLearningRate(0); // not `learningRate = 0`: tf.js SGD keeps its own copy of the rate
    await run.step(ids, () => model.trainOnBatch(x, y));
    await run.checkpoint(dir);
    await run.close();

    const stored = await tracin({ checkpoints: dir, train: 'sketches', queries: { xs: qx, ys: qy }, k: N, learningRates: [1] });
    const recomputed = await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries: { xs: qx, ys: qy }, k: N, learningRates: [1], sketch: { size: 8, seed: 11 } });
    expect(stored.selfInfluence).toBeNull();
    stored.queries.forEach((query, j) => {
      const other = recomputed.queries[j]!;
      expect(query.proponents.map((p) => p.id)).toEqual(other.proponents.map((p) => p.id));
      query.proponents.forEach((p, i) => expect(p.score).toBeCloseTo(other.proponents[i]!.score, 5));
      expect(query.opponents.map((p) => p.id)).toEqual(other.opponents.map((p) => p.id));
    });
    expect(stored.queries[0]!.proponents.length + stored.queries[0]!.opponents.length).toBe(N);
  });
});
