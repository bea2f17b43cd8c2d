import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, layerVariables, losses, perExampleGradients, spearman, type PerExampleLoss } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const B = 7;

/** A small classifier; `relu` + linear + MSE supports double backward in tf.js, `tanh` + softmax does not. */
function classifier(kind: 'softmax' | 'linear', lr: number) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 5, activation: kind === 'softmax' ? 'tanh' : 'relu', inputShape: [3], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }),
      tf.layers.dense({ units: 2, activation: kind === 'softmax' ? 'softmax' : 'linear', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(lr), loss: kind === 'softmax' ? 'categoricalCrossentropy' : 'meanSquaredError' });
  const x = tf.randomNormal([B, 3], 0, 1.5, 'float32', 3);
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 1], 'int32'), 2);
  const target = { xs: tf.randomNormal([5, 3], 0, 1.5, 'float32', 4), ys: tf.oneHot(tf.tensor1d([0, 1, 1, 0, 1], 'int32'), 2) };
  return { model, x, y, target, loss: kind === 'softmax' ? losses.categorical : losses.mse };
}

async function oneStep(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, target: { xs: tf.Tensor; ys: tf.Tensor }, hvp: 'auto' | 'double-backward' | 'finite-difference' = 'auto') {
  const run = attach(model, { targets: { val: target }, methods: ['shapley1', 'shapley2'], hvp });
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  await run.step(Array.from({ length: B }, (_, i) => i), () => model.trainOnBatch(x, y));
  await run.close();
  return { first: records[0]!.columns['shapley1:val']!, second: records[0]!.columns['shapley2:val']!, hvp: run.info.hvp };
}

/**
 * Exact Shapley values of the real one-step utility U(S) = L_T(w) - L_T(w - c sum_{i in S} g_i),
 * c = lr / B (mean loss), by enumerating every subset of the batch.
 */
function exactShapley(model: tf.LayersModel, loss: PerExampleLoss, x: tf.Tensor, y: tf.Tensor, target: { xs: tf.Tensor; ys: tf.Tensor }, lr: number): { phi: number[]; full: number } {
  const vars = layerVariables(model);
  const forward = (t: tf.Tensor) => model.apply(t) as tf.Tensor;
  const g = perExampleGradients(forward, loss, x, y, vars);
  const w0 = vars.map((v) => v.clone());
  const c = lr / B;
  const utility = new Float64Array(1 << B);
  const base = tf.tidy(() => tf.sum(loss(target.ys, forward(target.xs))).dataSync()[0]!);
  for (let mask = 0; mask < 1 << B; mask++) {
    const step = new Float32Array(g[0]!.length);
    for (let i = 0; i < B; i++) if (mask & (1 << i)) g[i]!.forEach((v, j) => (step[j]! += c * v));
    let at = 0;
    vars.forEach((v, k) => {
      const size = v.size;
      v.assign(tf.tidy(() => tf.sub(w0[k]!, tf.tensor(step.subarray(at, at + size), v.shape))));
      at += size;
    });
    utility[mask] = base - tf.tidy(() => tf.sum(loss(target.ys, forward(target.xs))).dataSync()[0]!);
  }
  vars.forEach((v, k) => v.assign(w0[k]!));
  const factorial = (n: number): number => (n <= 1 ? 1 : n * factorial(n - 1));
  const phi = Array.from({ length: B }, (_, i) => {
    let value = 0;
    for (let mask = 0; mask < 1 << B; mask++) {
      if (mask & (1 << i)) continue;
      let size = 0;
      for (let m = mask; m; m &= m - 1) size++;
      value += ((factorial(size) * factorial(B - size - 1)) / factorial(B)) * (utility[mask | (1 << i)]! - utility[mask]!);
    }
    return value;
  });
  return { phi, full: utility[(1 << B) - 1]! };
}

const meanAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;
const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);

describe('second-order In-Run Data Shapley', () => {
  it('matches the exact Shapley values of the one-step utility: both orders at a small lr, second order closer at a large one', async () => {
    const small = classifier('softmax', 0.05);
    const exactSmall = exactShapley(small.model, small.loss, small.x, small.y, small.target, 0.05);
    const valuesSmall = await oneStep(small.model, small.x, small.y, small.target);
    expect(valuesSmall.hvp).toBe('finite-difference'); // cross-entropy: double backward is not available
    expect(spearman(exactSmall.phi, valuesSmall.first)).toBeGreaterThanOrEqual(0.99);
    expect(spearman(exactSmall.phi, valuesSmall.second)).toBeGreaterThanOrEqual(0.99);
    // Efficiency: a step's values add up to the predicted change, close to the real one.
    expect(Math.abs(sum(valuesSmall.second) - exactSmall.full)).toBeLessThan(0.02 * Math.abs(exactSmall.full));

    const large = classifier('softmax', 3);
    const exactLarge = exactShapley(large.model, large.loss, large.x, large.y, large.target, 3);
    const valuesLarge = await oneStep(large.model, large.x, large.y, large.target);
    const firstError = meanAbs(exactLarge.phi, valuesLarge.first);
    const secondError = meanAbs(exactLarge.phi, valuesLarge.second);
    expect(secondError).toBeLessThan(firstError);
    expect(Math.abs(sum(valuesLarge.second) - exactLarge.full)).toBeLessThan(Math.abs(sum(valuesLarge.first) - exactLarge.full));
  });

  it('double backward and finite differences agree on a model that supports both at a small step; along a large step the secant is closer to the real change', async () => {
    const a = classifier('linear', 0.01);
    const b = classifier('linear', 0.01);
    const exact = await oneStep(a.model, a.x, a.y, a.target, 'double-backward');
    const approx = await oneStep(b.model, b.x, b.y, b.target, 'finite-difference');
    expect([exact.hvp, approx.hvp]).toEqual(['double-backward', 'finite-difference']);
    const secondTerm = (v: { first: Float32Array; second: Float32Array }) => Array.from(v.second, (s, i) => s - v.first[i]!);
    expectClose(secondTerm(approx), secondTerm(exact), 1e-2);
    expect(Math.max(...secondTerm(exact).map(Math.abs))).toBeGreaterThan(0);
    // At a large step, finite differences take the secant along the step (grad L_T(w) - grad L_T(w - u)),
    // which contains the curvature the step really meets: the step's values add up closer to the real change.
    const errors: number[] = [];
    for (const hvp of ['double-backward', 'finite-difference'] as const) {
      const c = classifier('linear', 0.5);
      const loss = () => tf.tidy(() => tf.sum(c.loss(c.target.ys, c.model.apply(c.target.xs) as tf.Tensor)).dataSync()[0]!);
      const before = loss();
      const v = await oneStep(c.model, c.x, c.y, c.target, hvp);
      errors.push(Math.abs(sum(v.second) - (before - loss())));
    }
    expect(errors[1]!).toBeLessThan(errors[0]!);
    // auto picks double backward where it is right, and refuses to force it where it is not.
    expect((await oneStep(classifier('linear', 0.5).model, a.x, a.y, a.target)).hvp).toBe('double-backward');
    const softmax = classifier('softmax', 0.5);
    expect(() => attach(softmax.model, { targets: { val: softmax.target }, methods: ['shapley2'], hvp: 'double-backward' })).toThrow(InrunError);
  });

  it('ReLU: second order adds up to the real change of the target loss where a small finite difference would not', async () => {
    // A ReLU MLP with cross-entropy: many units near their kink, so an infinitesimal difference of the
    // gradient is unstable; the secant along the step is what the step's real loss change contains.
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 64, activation: 'relu', inputShape: [6], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.3), loss: 'categoricalCrossentropy' });
    const x = tf.randomNormal([B, 6], 0, 1, 'float32', 8);
    const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 1], 'int32'), 2);
    const target = { xs: tf.randomNormal([32, 6], 0, 1, 'float32', 9), ys: tf.oneHot(tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 2), 'int32'), 2) };
    const loss = () => tf.tidy(() => tf.sum(losses.categorical(target.ys, model.apply(target.xs) as tf.Tensor)).dataSync()[0]!);
    const before = loss();
    const v = await oneStep(model, x, y, target);
    const realChange = before - loss();
    expect(v.hvp).toBe('finite-difference');
    expect(Math.abs(sum(v.second) - realChange)).toBeLessThan(0.25 * Math.abs(sum(v.first) - realChange));
  });
  // Every layer kind's second-order term against a brute-force Hessian-vector product: test/kind-checks.ts.
});
