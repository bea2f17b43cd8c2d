import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';
import { beforeAll, expect, it } from 'vitest';
import { losses, perExampleGradients, targetGradient } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

it('TracIn-WE per-token scores: each word is c <g_i[w], g_T[w]> (rows of the table gradients), and they add up to the example score', async () => {
  const vocab = ['<pad>', 'free', 'money', 'meeting', 'lunch', 'now', 'win'];
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: vocab.length, outputDim: 3, inputLength: 4, embeddingsInitializer: tf.initializers.randomNormal({ seed: 1 }) }),
      tf.layers.globalAveragePooling1d(),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
    ],
  });
  const lr = 0.2;
  model.compile({ optimizer: tf.train.sgd(lr), loss: 'binaryCrossentropy' });
  const x = tf.tensor2d([[1, 2, 1, 6], [3, 4, 0, 0], [5, 1, 2, 0], [3, 3, 5, 4]], [4, 4], 'int32');
  const y = tf.tensor2d([1, 0, 1, 0], [4, 1]);
  const val = { xs: tf.tensor2d([[1, 6, 2, 0], [4, 3, 0, 0]], [2, 4], 'int32'), ys: tf.tensor2d([1, 0], [2, 1]) };
  const table = model.layers[0]!.trainableWeights[0]!.read() as tf.Variable;
  const forward = (t: tf.Tensor) => model.apply(t) as tf.Tensor;
  const g = perExampleGradients(forward, losses.binary, x, y, [table]);
  const gT = targetGradient(forward, losses.binary, val.xs, val.ys, [table]);

  const run = attach(model, { targets: { val }, methods: ['tracin_we'], tokens: { vocabulary: vocab, topK: 10 } });
  await run.step(['a', 'b', 'c', 'd'], () => model.trainOnBatch(x, y));
  const scores = await run.close();
  const tokens = scores.tokens['tracin_we:val']!;
  const rows = x.arraySync();
  rows.forEach((ids, i) => {
    const expected = new Map<number, number>();
    for (const w of new Set(ids)) {
      let s = 0;
      for (let d = 0; d < 3; d++) s += g[i]![w * 3 + d]! * gT[w * 3 + d]!;
      expected.set(w, (lr / 4) * s);
    }
    expect(tokens[i]!.map((t) => t.token).sort()).toEqual([...expected.keys()].sort());
    for (const t of tokens[i]!) {
      expect(t.word).toBe(vocab[t.token]);
      expect(t.score).toBeCloseTo(expected.get(t.token)!, 6);
    }
    // Sorted by |score|, and the words add up to the example's TracIn-WE value.
    const abs = tokens[i]!.map((t) => Math.abs(t.score));
    expect(abs).toEqual([...abs].sort((a, b) => b - a));
    expect(tokens[i]!.reduce((s, t) => s + t.score, 0)).toBeCloseTo(scores.columns['tracin_we:val']![i]!, 6);
  });
});

it('ignored ids (padding) are left out of top tokens', async () => {
  const model = tf.sequential({ layers: [tf.layers.embedding({ inputDim: 5, outputDim: 2, inputLength: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 1 })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
  const run = attach(model, { targets: { val: { xs: tf.tensor2d([[1, 0, 0]], [1, 3], 'int32'), ys: tf.ones([1, 1]) } }, methods: ['tracin_we'], tokens: { ignore: [0], topK: 1 } });
  await run.step([1, 2], () => model.trainOnBatch(tf.tensor2d([[1, 2, 0], [0, 0, 3]], [2, 3], 'int32'), tf.ones([2, 1])));
  const { tokens } = await run.close();
  expect(tokens['tracin_we:val']!.map((t) => t.map((s) => s.token))).toEqual([[1], [3]]);
});

it('per-token scores are the same whichever materialised variant runs', async () => {
  const wordScores = async (targetRows: number) => {
    const model = tf.sequential({
      layers: [
        tf.layers.embedding({ inputDim: 200, outputDim: 3, inputLength: 4, embeddingsInitializer: tf.initializers.randomNormal({ seed: 3 }) }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.5), loss: 'binaryCrossentropy' });
    // The first two target rows share ids with the training rows; the others only widen the target.
    const shared = [[5, 6, 5, 7], [8, 6, 9, 9]];
    const extra = Array.from({ length: targetRows - 2 }, (_, i) => [20 + 4 * i, 21 + 4 * i, 22 + 4 * i, 23 + 4 * i]);
    const xs = tf.tensor2d([...shared, ...extra], [targetRows, 4], 'int32');
    const run = attach(model, { targets: { val: { xs, ys: tf.ones([targetRows, 1]) } }, methods: ['tracin_we'], tokens: { topK: 4 }, ghostPath: 'materialised' });
    // Widening the target with unrelated ids changes no training word's score, only the variant.
    await run.step([1, 2], () => model.trainOnBatch(tf.tensor2d([[5, 6, 7, 5], [9, 8, 8, 1]], [2, 4], 'int32'), tf.tensor2d([1, 0], [2, 1])));
    const scores = await run.close();
    return { path: run.info.layers.covered[0]!.path, tokens: scores.tokens['tracin_we:val']! };
  };
  const compact = await wordScores(2);
  const gather = await wordScores(40);
  expect([compact.path, gather.path]).toEqual(['compact', 'materialised']);
  expect(gather.tokens.map((t) => t.map((s) => s.token))).toEqual(compact.tokens.map((t) => t.map((s) => s.token)));
  gather.tokens.forEach((t, i) => t.forEach((s, j) => expect(s.score).toBeCloseTo(compact.tokens[i]![j]!.score, 7)));
});
