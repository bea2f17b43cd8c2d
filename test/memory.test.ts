import * as tf from '@tensorflow/tfjs';
import { attach, useFastEmbeddingGradient, type AttachOptions } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Runs `steps` custom-loop steps; returns tf.memory().numTensors after step 10 and after the last. */
async function tensorsAcross(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, options: AttachOptions, freshIds: boolean): Promise<[number, number]> {
  const run = attach(model, { flushEvery: 10, ...options });
  let seen = 0;
  run.records$.subscribe(() => seen++);
  const counts: number[] = [];
  const n = x.shape[0]!;
  for (let step = 1; step <= 1000; step++) {
    const ids = Array.from({ length: n }, (_, i) => (freshIds ? step * n + i : i));
    await run.step(ids, () => model.trainOnBatch(x, y));
    if (step === 10 || step === 1000) counts.push(tf.memory().numTensors);
  }
  expect(seen).toBe(1000);
  await run.close();
  return [counts[0]!, counts[1]!];
}

describe('no tensor leaks across steps', () => {
  it('dense model, records on, new ids every step (device totals grow)', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 8, activation: 'relu', inputShape: [4] }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const x = tf.randomNormal([8, 4]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32'), 2);
    const val = { xs: tf.randomNormal([3, 4]), ys: tf.oneHot(tf.tensor1d([0, 1, 1], 'int32'), 2) };
    const [at10, at1000] = await tensorsAcross(model, x, y, { targets: { val } }, true);
    expect(at1000).toBe(at10);
  });

  it("optimizer-aware second order (Adam, update: 'optimizer', shapley2 by finite differences)", async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 6, activation: 'tanh', inputShape: [4] }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const x = tf.randomNormal([8, 4]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32'), 2);
    const val = { xs: tf.randomNormal([3, 4]), ys: tf.oneHot(tf.tensor1d([0, 1, 1], 'int32'), 2) };
    const [at10, at1000] = await tensorsAcross(model, x, y, { targets: { val }, methods: ['shapley1', 'shapley2'], update: 'optimizer' }, false);
    expect(at1000).toBe(at10);
  });

  it('embedding model with TracIn-WE token totals', async () => {
    const restore = useFastEmbeddingGradient();
    const model = tf.sequential({
      layers: [tf.layers.embedding({ inputDim: 20, outputDim: 4, inputLength: 5 }), tf.layers.globalAveragePooling1d(), tf.layers.dense({ units: 1, activation: 'sigmoid' })],
    });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'binaryCrossentropy' });
    const x = tf.tensor2d(Array.from({ length: 30 }, (_, i) => (i * 7) % 20), [6, 5], 'int32');
    const y = tf.tensor2d([1, 0, 1, 0, 1, 0], [6, 1]);
    const val = { xs: tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2, 5], 'int32'), ys: tf.tensor2d([1, 0], [2, 1]) };
    const [at10, at1000] = await tensorsAcross(model, x, y, { targets: { val }, methods: ['shapley1', 'tracin_self', 'tracin_we'] }, false);
    expect(at1000).toBe(at10);
    restore();
  });
});
