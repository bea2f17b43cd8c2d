import * as tf from '@tensorflow/tfjs';
import { attach, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkOneStep, embeddingModel, mlp, oneHot, randn, sequenceModel, wideTargetEmbeddingModel } from './cases.js';
import { dot, expectClose, layerVariables, perExampleGradients, targetGradient } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const paths = ['pairwise', 'materialised', 'auto'] as const;

describe('ghost products equal brute-force per-example gradient products', () => {
  for (const ghostPath of paths) {
    it(`dense MLP with bias, fused and unfused activations (${ghostPath})`, async () => {
      await checkOneStep(mlp(['relu', 'elu', 'tanh', 'sigmoid', 'linear', 'softmax'], true), { ghostPath, methods: ['shapley1', 'tracin_self'] });
    });
    it(`dense MLP without bias (${ghostPath})`, async () => {
      await checkOneStep(mlp(['selu', 'softplus', 'relu6', 'softmax'], false), { ghostPath, methods: ['shapley1', 'tracin_self'] });
    });
    it(`dense on rank-3 sequences, targets of two lengths (${ghostPath})`, async () => {
      await checkOneStep(sequenceModel(), { ghostPath, methods: ['shapley1', 'tracin_self'] });
    });
    it(`embedding with repeated tokens, TracIn-WE (${ghostPath})`, async () => {
      await checkOneStep(embeddingModel(), { ghostPath, methods: ['shapley1', 'tracin_self', 'tracin_we'] });
    });
  }

  it('embedding, materialised over the whole vocabulary (wide target) and over the target ids (compact)', async () => {
    // Wide: 6 training positions against ~150 distinct target ids: reading a vocabulary table is cheaper.
    const wide = wideTargetEmbeddingModel();
    const paths = await checkOneStep(wide, { methods: ['shapley1', 'tracin_self', 'tracin_we'] });
    expect(paths[0]).toBe('materialised');
    // Without self-influence, no (example, id) pairs are needed either.
    await checkOneStep(wideTargetEmbeddingModel(), { methods: ['tracin_we'] });
    const narrow = await checkOneStep(embeddingModel(), { methods: ['shapley1', 'tracin_we'] });
    expect(narrow[0]).toBe('compact');
  });

  it('embedding pairs numbered on the device (backends whose memory is not the host\'s) give the same products', async () => {
    // A backend under another name with the cpu kernels: inrun treats it like a GPU backend and
    // numbers (example, id) pairs with tf.unique instead of reading the ids back.
    if (!tf.findBackend('device-like')) {
      tf.registerBackend('device-like', () => new (tf.findBackend('cpu')!.constructor as new () => tf.KernelBackend)());
      for (const kernel of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...kernel, backendName: 'device-like' });
    }
    await tf.setBackend('device-like');
    try {
      await checkOneStep(embeddingModel(), { methods: ['shapley1', 'tracin_self', 'tracin_we'] });
      await checkOneStep(wideTargetEmbeddingModel(), { methods: ['shapley1', 'tracin_self', 'tracin_we'] });
    } finally {
      await tf.setBackend('cpu');
    }
  });

  it('picks the path by cost and reports it per layer', async () => {
    // Embedding (n 8, T 6, K 7, T' 6, dim 4, vocab 9, 2 targets): pairwise 10,080 vs materialised 792,
    // over the target's few distinct ids (compact). Its Dense (dIn 24, dOut 1, K 7): pairwise 1,400 vs 552.
    const c = embeddingModel();
    const run = attach(c.model, { targets: c.targets });
    await run.step(Array.from({ length: 8 }, (_, i) => i), () => c.model.trainOnBatch(c.x, c.y));
    expect(run.info.layers.covered.map((l) => l.path)).toEqual(['compact', 'materialised']);
    await run.close();
    // A wide MLP layer with a one-row target (n 7, dIn 5, dOut 64): pairwise 483 vs materialised 2,560.
    const wide = tf.sequential({ layers: [tf.layers.dense({ units: 64, inputShape: [5] }), tf.layers.dense({ units: 3, activation: 'softmax' })] });
    wide.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
    const run2 = attach(wide, { targets: { one: { xs: randn([1, 5], 1), ys: oneHot(1, 3, 1) } } });
    await run2.step([0, 1, 2, 3, 4, 5, 6], () => wide.trainOnBatch(randn([7, 5], 2), oneHot(7, 3, 3)));
    expect(run2.info.layers.covered[0]!.path).toBe('pairwise');
    await run2.close();
  });

  it('the layers option restricts attribution to the named layers', async () => {
    const c = mlp(['relu', 'softmax'], true);
    const [first, second] = c.model.layers.map((l) => l.name);
    const lr = 0.05;
    const forward = (x: tf.Tensor) => c.model.apply(x) as tf.Tensor;
    const vars = layerVariables(c.model, [second!]);
    const g = perExampleGradients(forward, c.loss, c.x, c.y, vars);
    const gT = targetGradient(forward, c.loss, c.targets['val']!.xs, c.targets['val']!.ys, vars);
    const run = attach(c.model, { targets: { val: c.targets['val']! }, layers: [second!] });
    expect(run.info.layers.skipped).toEqual([{ name: first, className: 'Dense', reason: 'not selected by the layers option' }]);
    const recs: StepRecord[] = [];
    run.records$.subscribe((r) => recs.push(r));
    await run.step([0, 1, 2, 3, 4, 5, 6], () => c.model.trainOnBatch(c.x, c.y));
    await run.flush();
    expectClose(recs[0]!.columns['shapley1:val']!, g.map((gi) => (lr / 7) * dot(gT, gi)));
    await run.close();
  });
});
