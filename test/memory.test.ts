import * as tf from '@tensorflow/tfjs';
import { attach, useFastEmbeddingGradient, type AttachOptions } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Runs `steps` custom-loop steps; returns tf.memory().numTensors after step 10 and after the last. */
async function tensorsAcross(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, options: AttachOptions, freshIds: boolean, steps = 1000): Promise<[number, number]> {
  const run = attach(model, { flushEvery: 10, ...options });
  let seen = 0;
  run.records$.subscribe(() => seen++);
  const counts: number[] = [];
  const n = x.shape[0]!;
  for (let step = 1; step <= steps; step++) {
    const ids = Array.from({ length: n }, (_, i) => (freshIds ? step * n + i : i));
    await run.step(ids, () => model.trainOnBatch(x, y));
    if (step === 10 || step === steps) counts.push(tf.memory().numTensors);
  }
  expect(seen).toBe(steps);
  await run.close();
  return [counts[0]!, counts[1]!];
}

/** A 4-hidden-2 classifier under Adam, a batch of 8 rows and a 3-row target. */
function classifier(hidden: number, activation: 'relu' | 'tanh') {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: hidden, activation, inputShape: [4] }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const x = tf.randomNormal([8, 4]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32'), 2);
  const val = { xs: tf.randomNormal([3, 4]), ys: tf.oneHot(tf.tensor1d([0, 1, 1], 'int32'), 2) };
  return { model, x, y, val };
}

describe('no tensor leaks across steps', () => {
  it('dense model, records on, new ids every step (device totals grow)', async () => {
    const { model, x, y, val } = classifier(8, 'relu');
    const [at10, at1000] = await tensorsAcross(model, x, y, { targets: { val } }, true);
    expect(at1000).toBe(at10);
  });

  it("optimizer-aware second order (Adam, update: 'optimizer', shapley2 by finite differences)", async () => {
    const { model, x, y, val } = classifier(6, 'tanh');
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

  it('conv, depthwise conv and LayerNorm; bidirectional GRU and LSTM: second order, Adam-aware, sketches', async () => {
    const image = tf.sequential({
      layers: [
        tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', inputShape: [6, 6, 2] }),
        tf.layers.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2 }),
        tf.layers.layerNormalization(),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    const sequence = tf.sequential({
      layers: [
        tf.layers.bidirectional({ layer: tf.layers.gru({ units: 3, returnSequences: true }) as tf.RNN, inputShape: [4, 3] }),
        tf.layers.lstm({ units: 3 }),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    const labels = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1], 'int32'), 2);
    for (const [model, x] of [
      [image, tf.randomNormal([6, 6, 6, 2])],
      [sequence, tf.randomNormal([6, 4, 3])],
    ] as const) {
      model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
      const val = { xs: tf.slice(x, 0, 2), ys: tf.slice(labels, 0, 2) };
      const options: AttachOptions = { targets: { val }, methods: ['shapley1', 'shapley2', 'tracin_self'], update: 'optimizer', sketch: { size: 4 } };
      const [at10, at100] = await tensorsAcross(model, x, labels, options, true, 100);
      expect(at100).toBe(at10);
    }
  });

  it('attach and close leave no tensor behind, whatever the options (double backward refused included)', async () => {
    const restore = useFastEmbeddingGradient();
    const dense = tf.sequential({ layers: [tf.layers.dense({ units: 6, activation: 'tanh', inputShape: [4] }), tf.layers.dense({ units: 2, activation: 'softmax' })] });
    dense.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const text = tf.sequential({
      layers: [tf.layers.embedding({ inputDim: 20, outputDim: 4, inputLength: 5 }), tf.layers.globalAveragePooling1d(), tf.layers.dense({ units: 1, activation: 'sigmoid' })],
    });
    text.compile({ optimizer: tf.train.rmsprop(0.01), loss: 'binaryCrossentropy' });
    const x = tf.randomNormal([8, 4]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32'), 2);
    const ids = tf.tensor2d(Array.from({ length: 30 }, (_, i) => (i * 7) % 20), [6, 5], 'int32');
    const labels = tf.tensor2d([1, 0, 1, 0, 1, 0], [6, 1]);
    const cases: [tf.LayersModel, tf.Tensor, tf.Tensor, AttachOptions][] = [
      [dense, x, y, { targets: { val: { xs: tf.slice(x, 0, 3), ys: tf.slice(y, 0, 3) } }, methods: ['shapley1', 'shapley2', 'tracin_self'] }],
      [dense, x, y, { targets: { val: { xs: tf.slice(x, 0, 3), ys: tf.slice(y, 0, 3) } }, methods: ['shapley1', 'shapley2'], update: 'optimizer', sketch: { size: 3 } }],
      [text, ids, labels, { targets: { val: { xs: tf.slice(ids, 0, 2), ys: tf.slice(labels, 0, 2) } }, methods: ['shapley1', 'tracin_we', 'tracin_self'], update: 'optimizer' }],
      [text, ids, labels, { targets: { val: { xs: tf.slice(ids, 0, 2), ys: tf.slice(labels, 0, 2) } }, methods: ['shapley1', 'tracin_we'], targetEvery: 2 }],
    ];
    // Optimizer slots and the probes' shared seed scalar are created once, by the first steps: make them first.
    await dense.trainOnBatch(x, y);
    await text.trainOnBatch(ids, labels);
    const warm = attach(dense, {});
    await warm.step([0, 1, 2, 3, 4, 5, 6, 7], () => dense.trainOnBatch(x, y));
    await warm.close();
    for (const [model, xs, ys, options] of cases) {
      const before = tf.memory().numTensors;
      const run = attach(model, options);
      for (let step = 0; step < 3; step++) await run.step(Array.from({ length: xs.shape[0]! }, (_, i) => step * 10 + i), () => model.trainOnBatch(xs, ys));
      await run.close();
      expect(tf.memory().numTensors).toBe(before);
    }
    restore();
  });
});
