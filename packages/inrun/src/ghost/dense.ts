// Ghost maths of outer pieces (a x b per position): target, parameter and self products, gradients.
import * as tf from '@tensorflow/tfjs';
import type { DenseRows, GhostPath, TargetLayout } from './types.js';

/**
 * `<G_i, G_T>` for every training example i and every target T, for one dense layer: `[n, targets]`.
 * G_i = sum_t a_it (outer) b_it (+ bias gradient sum_t b_it when the layer has a bias).
 * Call inside `tf.tidy`.
 */
export function denseTargetProducts(
  train: DenseRows,
  target: DenseRows,
  layout: TargetLayout,
  hasBias: boolean,
  path: GhostPath,
): tf.Tensor2D {
  const [n, t, dIn] = train.a.shape;
  const dOut = train.b.shape[2];
  const [k, tk] = target.a.shape;
  const a = tf.reshape(train.a, [n * t, dIn]);
  const b = tf.reshape(train.b, [n * t, dOut]);
  if (path === 'pairwise') {
    // sum_{t,t'} (a_it . a_kt' + 1[bias]) * (b_it . b_kt'), then summed over each target's rows.
    let ga = tf.matMul(a, tf.reshape(target.a, [k * tk, dIn]), false, true);
    if (hasBias) ga = tf.add(ga, 1);
    const gb = tf.matMul(b, tf.reshape(target.b, [k * tk, dOut]), false, true);
    const perRow = tf.sum(tf.reshape(tf.mul(ga, gb), [n, t, k, tk]), [1, 3]);
    return tf.matMul(perRow, layout.membership);
  }
  // Materialised: G_T = A_T^T B_T once per target, then one extra forward matMul per training row.
  return denseParamProducts(train, denseGradients(target, layout.ranges, hasBias));
}

/** Parameter-shaped tensors of one dense layer, one set per target (gradients, Hessian-vector products). */
export interface DenseParams {
  /** `[sets, dIn, dOut]`. */
  readonly kernels: tf.Tensor3D;
  /** `[sets, dOut]`, or null for a layer without bias. */
  readonly biases: tf.Tensor2D | null;
}

/** The summed weight gradient of each range of rows: A^T B (and sum of b for the bias). Call inside `tf.tidy`. */
export function denseGradients(rows: DenseRows, ranges: readonly { readonly start: number; readonly rows: number }[], hasBias: boolean): DenseParams {
  const [, t, dIn] = rows.a.shape;
  const dOut = rows.b.shape[2];
  const slices = ranges.map(({ start, rows: count }) => ({
    a: tf.reshape(tf.slice(rows.a, [start, 0, 0], [count, t, dIn]), [count * t, dIn]),
    b: tf.reshape(tf.slice(rows.b, [start, 0, 0], [count, t, dOut]), [count * t, dOut]),
  }));
  return {
    kernels: tf.stack(slices.map(({ a, b }) => tf.matMul(a, b, true, false))) as tf.Tensor3D,
    biases: hasBias ? (tf.stack(slices.map(({ b }) => tf.sum(b, 0))) as tf.Tensor2D) : null,
  };
}

/** `<G_i, P_j>` for every example i and parameter set j of one dense layer: `[n, sets]`. Call inside `tf.tidy`. */
export function denseParamProducts(train: DenseRows, params: DenseParams): tf.Tensor2D {
  const [n, t, dIn] = train.a.shape;
  const dOut = train.b.shape[2];
  const sets = params.kernels.shape[0];
  const a = tf.reshape(train.a, [n * t, dIn]);
  const b = tf.reshape(train.b, [n * t, dOut]);
  // All sets side by side as [dIn, sets * dOut]: one matMul.
  const side = tf.reshape(tf.transpose(params.kernels, [1, 0, 2]), [dIn, sets * dOut]);
  const projected = tf.reshape(tf.matMul(a, side), [n * t, sets, dOut]);
  const perPosition = tf.sum(tf.mul(projected, tf.reshape(b, [n * t, 1, dOut])), 2);
  const out = tf.sum(tf.reshape(perPosition, [n, t, sets]), 1) as tf.Tensor2D;
  return params.biases === null ? out : (tf.add(out, tf.matMul(tf.sum(train.b, 1), params.biases, false, true)) as tf.Tensor2D);
}

/** `||G_i||^2` for every training example of one dense layer: `[n]`. Call inside `tf.tidy`. */
export function denseSelfProducts(train: DenseRows, hasBias: boolean): tf.Tensor1D {
  const [, t, dIn] = train.a.shape;
  const dOut = train.b.shape[2];
  const bias = hasBias ? 1 : 0;
  if (t === 1) {
    // ||a (outer) b||^2 = ||a||^2 ||b||^2; the bias adds ||b||^2.
    return tf.mul(tf.add(tf.sum(tf.square(train.a), [1, 2]), bias), tf.sum(tf.square(train.b), [1, 2]));
  }
  if (t * (dIn + dOut) <= dIn * dOut) {
    // Per-example Gram matrices over positions: cost n T^2 (dIn + dOut), no n x dIn x dOut tensor.
    const ga = tf.add(tf.matMul(train.a, train.a, false, true), bias);
    const gb = tf.matMul(train.b, train.b, false, true);
    return tf.sum(tf.mul(ga, gb), [1, 2]);
  }
  const g = tf.matMul(train.a, train.b, true, false); // [n, dIn, dOut]
  const norms = tf.sum(tf.square(g), [1, 2]);
  return (hasBias ? tf.add(norms, tf.sum(tf.square(tf.sum(train.b, 1)), 1)) : norms) as tf.Tensor1D;
}
