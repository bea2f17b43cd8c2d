import * as tf from '@tensorflow/tfjs';
import { attach, InrunError } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function classifier(loss: string) {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, activation: 'softmax', inputShape: [4] })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss });
  return model;
}

async function failure(p: Promise<unknown>): Promise<InrunError> {
  const error = await p.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(InrunError);
  return error as InrunError;
}

describe('labels', () => {
  it('a one-hot y of the wrong width is an InrunError naming y, in run.fit and model.fit', async () => {
    for (const width of [2, 1]) {
      const model = classifier('categoricalCrossentropy');
      const run = attach(model);
      const x = tf.randomNormal([6, 4]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 0], 'int32'), 2).slice([0, 0], [6, width]);
      const error = await failure(run.fit(x, y, { epochs: 1, batchSize: 3 }));
      expect(error.field).toBe('y');
      expect(error.code).toBe('shape_mismatch');
      expect(error.message).toContain('[3]');
      expect((await failure(model.fit(x, y, { shuffle: false }))).field).toBe('y');
      await run.close();
    }
  });

  it('a target with one-hot labels of the wrong width is refused at attach, naming targets.<name>.ys', () => {
    expect(() => attach(classifier('categoricalCrossentropy'), { targets: { val: { xs: tf.zeros([2, 4]), ys: tf.zeros([2, 1]) } } })).toThrow(
      expect.objectContaining({ field: 'targets.val.ys', code: 'shape_mismatch' }),
    );
  });

  it('a sparse label out of range (or not an integer) is an error, not a silent zero score (run.fit, targets, fitDataset elements)', async () => {
    for (const labels of [[0, 1, 3, 2], [0, -1, 1, 2], [0, 1.5, 1, 2]]) {
      const model = classifier('sparseCategoricalCrossentropy');
      const run = attach(model);
      const error = await failure(run.fit(tf.randomNormal([4, 4]), tf.tensor1d(labels), { epochs: 1, batchSize: 2 }));
      expect(error.field).toBe('y');
      expect(error.code).toBe('invalid_input');
      await run.close();
    }
    expect(() => attach(classifier('sparseCategoricalCrossentropy'), { targets: { val: { xs: tf.zeros([2, 4]), ys: tf.tensor1d([0, 7]) } } })).toThrow(
      expect.objectContaining({ field: 'targets.val.ys' }),
    );
    // fitDataset: each element's labels, before its step runs (no weight moves).
    const ds = classifier('sparseCategoricalCrossentropy');
    const before = ds.getWeights().map((w) => w.dataSync().slice());
    const dsRun = attach(ds);
    const elements = [
      { xs: tf.randomNormal([2, 4]), ys: tf.tensor1d([0, 1]), ids: [0, 1] },
      { xs: tf.randomNormal([2, 4]), ys: tf.tensor1d([2, 5]), ids: [2, 3] },
    ];
    const datasetError = await failure(dsRun.fitDataset(tf.data.array(elements), { epochs: 1 }));
    expect(datasetError).toMatchObject({ field: 'dataset element ys', code: 'invalid_input' });
    expect(dsRun.stats().steps).toBe(1);
    expect(ds.getWeights()[0]!.dataSync()).not.toEqual(before[0]);
    await dsRun.close();
    // In range: trains.
    const model = classifier('sparseCategoricalCrossentropy');
    const run = attach(model);
    await run.fit(tf.randomNormal([4, 4]), tf.tensor1d([0, 1, 2, 2]), { epochs: 1, batchSize: 2 });
    expect((await run.close()).ids).toHaveLength(4);
  });
});
