import * as tf from '@tensorflow/tfjs';
import { attach, type StepRecord } from 'inrun';
import { beforeAll, expect, it } from 'vitest';
import { layerVariables, losses, perExampleGradients, rng, spearman } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const B = 32;

function setup(lr: number) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 16, activation: 'tanh', inputShape: [6], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(lr), loss: 'categoricalCrossentropy' });
  const r = rng(5);
  const labels = (n: number) => tf.oneHot(tf.tensor1d(Array.from({ length: n }, () => Math.floor(r() * 3)), 'int32'), 3);
  const x = tf.randomNormal([B, 6], 0, 1, 'float32', 11);
  const y = labels(B);
  const target = { xs: tf.randomNormal([16, 6], 0, 1, 'float32', 12), ys: labels(16) };
  return { model, x, y, target };
}

/** Summed target loss after applying `w0 - (lr/B) * (sum of the given gradients)`. */
function lossAfter(model: tf.LayersModel, vars: tf.Variable[], w0: tf.Tensor[], delta: Float64Array, target: { xs: tf.Tensor; ys: tf.Tensor }): number {
  let at = 0;
  vars.forEach((v, k) => {
    const size = v.size;
    const upd = tf.tidy(() => tf.sub(w0[k]!, tf.tensor(Float32Array.from(delta.subarray(at, at + size)), v.shape)));
    v.assign(upd);
    upd.dispose();
    at += size;
  });
  return tf.tidy(() => tf.sum(losses.categorical(target.ys, model.predict(target.xs) as tf.Tensor)).dataSync()[0]!);
}

it('one step: first-order values rank like the real leave-one-out change of the target loss (Spearman >= 0.95), and add up to the predicted change', async () => {
  const lr = 0.05;
  const { model, x, y, target } = setup(lr);
  const vars = layerVariables(model);
  const w0 = vars.map((v) => v.clone());
  const g = perExampleGradients((t) => model.apply(t) as tf.Tensor, losses.categorical, x, y, vars);

  const run = attach(model, { targets: { val: target }, methods: ['shapley1'] });
  const records: StepRecord[] = [];
  run.records$.subscribe((rec) => records.push(rec));
  await run.step(Array.from({ length: B }, (_, i) => i), () => model.trainOnBatch(x, y));
  await run.close();
  const values = records[0]!.columns['shapley1:val']!;

  // Real utility: target loss with example i left out of this one step, minus with everyone in.
  const c = lr / B;
  const sumAll = new Float64Array(g[0]!.length);
  for (const gi of g) gi.forEach((v, j) => (sumAll[j]! += c * v));
  const before = lossAfter(model, vars, w0, new Float64Array(sumAll.length), target);
  const full = lossAfter(model, vars, w0, sumAll, target);
  const loo = g.map((gi) => lossAfter(model, vars, w0, sumAll.map((v, j) => v - c * gi[j]!), target) - full);

  expect(spearman(values, loo)).toBeGreaterThanOrEqual(0.95);
  const predicted = values.reduce((s, v) => s + v, 0);
  expect(Math.abs(predicted - (before - full)) / Math.abs(before - full)).toBeLessThan(0.05);
});
