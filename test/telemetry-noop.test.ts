import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';
import { beforeAll, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// No OpenTelemetry SDK is registered in this process (a file runs in its own process): the global
// API hands out no-op instruments.
it('with no SDK registered, a run with metrics trains, attributes and closes without throwing', async () => {
  const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
  m.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  const run = attach(m, { metrics: true, examples: [{ id: 0, source: 'a' }] });
  await run.fit(tf.randomNormal([8, 3]), tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], 'int32'), 2), { batchSize: 4, epochs: 2, verbose: 0 });
  const scores = await run.close();
  expect(scores.ids).toHaveLength(8);
  expect(scores.columns['tracin_self']!.every((v) => v > 0)).toBe(true);
});
