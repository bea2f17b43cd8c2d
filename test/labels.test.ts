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

  it('a sparse label out of range (or not an integer) is an error, not a silent zero score', async () => {
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
    // In range: trains.
    const model = classifier('sparseCategoricalCrossentropy');
    const run = attach(model);
    await run.fit(tf.randomNormal([4, 4]), tf.tensor1d([0, 1, 2, 2]), { epochs: 1, batchSize: 2 });
    expect((await run.close()).ids).toHaveLength(4);
  });
});
