import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/** Per-example loss as the tests' models define it: one value per row. */
export type PerExampleLoss = (ys: tf.Tensor, predictions: tf.Tensor) => tf.Tensor1D;

export const losses = {
  categorical: ((ys, p) => tf.metrics.categoricalCrossentropy(ys, p) as tf.Tensor1D) as PerExampleLoss,
  binary: ((ys, p) => tf.metrics.binaryCrossentropy(ys, p) as tf.Tensor1D) as PerExampleLoss,
  mse: ((ys, p) => tf.mean(tf.square(tf.sub(ys, p)), -1) as tf.Tensor1D) as PerExampleLoss,
};

/** Gradient of the summed loss of all rows of (x, y) w.r.t. `vars`, flattened in `vars` order. */
export function targetGradient(
  forward: (x: tf.Tensor) => tf.Tensor,
  loss: PerExampleLoss,
  x: tf.Tensor,
  y: tf.Tensor,
  vars: tf.Variable[],
): Float64Array {
  const flat = tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.sum(loss(y, forward(x))) as tf.Scalar, vars);
    return tf.concat(vars.map((v) => tf.reshape(grads[v.name]!, [-1])));
  });
  const out = Float64Array.from(flat.dataSync());
  flat.dispose();
  return out;
}

/**
 * The brute-force reference: one backward pass per example. Returns each example's gradient of its
 * own (unscaled) loss w.r.t. `vars`, flattened and concatenated in `vars` order.
 */
export function perExampleGradients(
  forward: (x: tf.Tensor) => tf.Tensor,
  loss: PerExampleLoss,
  x: tf.Tensor,
  y: tf.Tensor,
  vars: tf.Variable[],
): Float64Array[] {
  return Array.from({ length: x.shape[0]! }, (_, i) => {
    const [xi, yi] = [tf.slice(x, i, 1), tf.slice(y, i, 1)];
    const g = targetGradient(forward, loss, xi, yi, vars);
    tf.dispose([xi, yi]);
    return g;
  });
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Every |actual - expected| within `rel` times the largest |expected| (a scale-aware relative error). */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  expect(scale).toBeGreaterThan(0);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst / scale).toBeLessThanOrEqual(rel);
}

function ranks(values: ArrayLike<number>): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const r = new Array<number>(values.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && values[idx[j + 1]!] === values[idx[i]!]) j++;
    for (let k = i; k <= j; k++) r[idx[k]!] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const n = ra.length;
  const ma = ra.reduce((s, v) => s + v, 0) / n;
  const mb = rb.reduce((s, v) => s + v, 0) / n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += (ra[i]! - ma) * (rb[i]! - mb);
    da += (ra[i]! - ma) ** 2;
    db += (rb[i]! - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}

/** Trainable tf.Variables of the named layers, kernel then bias, in layer order. */
export function layerVariables(model: tf.LayersModel, names?: readonly string[]): tf.Variable[] {
  return model.layers
    .filter((l) => l.trainableWeights.length > 0 && (names === undefined || names.includes(l.name)))
    .flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
}

/** Deterministic pseudo-random numbers for test data. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    s ^= s >>> 13;
    return (s >>> 0) / 4294967296;
  };
}

/** Copies of a model's weights, to start another model from the same point. */
export function snapshot(model: tf.LayersModel): tf.Tensor[] {
  return model.getWeights().map((w) => w.clone());
}

export function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}
