import * as tf from '@tensorflow/tfjs';
import { useFastEmbeddingGradient } from 'inrun';
import { beforeAll, expect, it } from 'vitest';
import { expectClose } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function tableGradient(table: tf.Variable, ids: tf.Tensor, weights: tf.Tensor): Float32Array {
  return tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, ids), weights)) as tf.Scalar, [table]);
    return grads[table.name]!.dataSync() as Float32Array;
  });
}

it('the fast GatherV2 gradient equals the stock one (repeated ids summed), and restore puts the stock one back', () => {
  const table = tf.variable(tf.randomNormal([30, 4], 0, 1, 'float32', 1));
  const ids = tf.tensor2d([[1, 5, 5, 29], [0, 1, 1, 1], [7, 7, 7, 7]], [3, 4], 'int32');
  const weights = tf.randomNormal([3, 4, 4], 0, 1, 'float32', 2);
  const stockGrad = tf.getGradient('GatherV2')!;
  const stock = tableGradient(table, ids, weights);

  const restore = useFastEmbeddingGradient();
  expect(tf.getGradient('GatherV2')).not.toBe(stockGrad);
  expect(useFastEmbeddingGradient()).toBe(restore);
  const fast = tableGradient(table, ids, weights);
  expectClose(fast, stock, 1e-6);
  // Other axes fall back to the stock gradient.
  const byColumn = tf.tidy(() => tf.variableGrads(() => tf.sum(tf.gather(table, [0, 3, 3], 1)) as tf.Scalar, [table]).grads[table.name]!.dataSync());
  expect(Array.from(byColumn.slice(0, 4))).toEqual([1, 0, 0, 2]);

  restore();
  expect(tf.getGradient('GatherV2')).toBe(stockGrad);
});
