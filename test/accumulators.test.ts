import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';
import { beforeAll, expect, it } from 'vitest';
import { embeddingModel } from './cases.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Totals and token scores after three steps of the embedding case (new ids at the last step). */
async function threeSteps() {
  const c = embeddingModel();
  const run = attach(c.model, { targets: c.targets, methods: ['shapley1', 'tracin_self', 'tracin_we'], tokens: { topK: 20 } });
  for (const ids of [[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0], [8, 9, 10, 11, 12, 13, 14, 15]]) {
    await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
  }
  return run.close();
}

it('backends without TensorScatterUpdate get the same totals from the scatter-and-add path', async () => {
  const fast = await threeSteps();
  const kernel = tf.getKernel('TensorScatterUpdate', 'cpu')!;
  tf.unregisterKernel('TensorScatterUpdate', 'cpu');
  try {
    const fallback = await threeSteps();
    expect(fallback.ids).toEqual(fast.ids);
    for (const [name, values] of Object.entries(fast.columns)) {
      Array.from(values).forEach((v, i) => expect(fallback.columns[name]![i]).toBeCloseTo(v, 7));
    }
    expect(Array.from(fallback.steps)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(fallback.tokens).toEqual(fast.tokens);
  } finally {
    tf.registerKernel(kernel);
  }
});
