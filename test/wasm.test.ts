import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, useFastEmbeddingGradient } from 'inrun';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOneStep, embeddingModel, mlp, sequenceModel } from './cases.js';
import { weightsOf } from './helpers.js';

// The same brute-force checks on tf.js' wasm backend, where UnsortedSegmentSum (the stock gather
// gradient) is not registered: Embedding models train only with the fast gather gradient.
let restore: () => void = () => undefined;
beforeAll(async () => {
  await tf.setBackend('wasm');
  restore = useFastEmbeddingGradient();
});
afterAll(() => restore());

describe('wasm backend', () => {
  for (const ghostPath of ['pairwise', 'materialised'] as const) {
    it(`dense MLP (${ghostPath})`, async () => {
      await checkOneStep(mlp(['relu', 'elu', 'tanh', 'softmax'], true), { ghostPath, methods: ['shapley1', 'tracin_self'] });
    });
    it(`dense on sequences (${ghostPath})`, async () => {
      await checkOneStep(sequenceModel(), { ghostPath, methods: ['shapley1', 'tracin_self'] });
    });
    it(`embedding with TracIn-WE (${ghostPath})`, async () => {
      await checkOneStep(embeddingModel(), { ghostPath, methods: ['shapley1', 'tracin_self', 'tracin_we'] });
    });
  }

  it('the update stays bit-identical', async () => {
    const a = mlp(['relu', 'softmax'], true);
    const b = mlp(['relu', 'softmax'], true);
    b.model.setWeights(a.model.getWeights());
    await a.model.fit(a.x, a.y, { epochs: 2, batchSize: 3, shuffle: false, verbose: 0 });
    const run = attach(b.model, { targets: a.targets });
    await run.fit(b.x, b.y, { epochs: 2, batchSize: 3, shuffle: false, verbose: 0 });
    await run.close();
    expect(weightsOf(b.model)).toEqual(weightsOf(a.model));
  });
});
