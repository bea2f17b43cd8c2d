import * as tf from '@tensorflow/tfjs';
import type { DenseRows, GhostPath, TargetLayout } from './rows.js';

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
  // Materialised: G_T = A_T^T B_T per target, side by side as [dIn, targets * dOut].
  const gT = tf.concat(
    layout.ranges.map(({ start, rows }) =>
      tf.matMul(
        tf.reshape(tf.slice(target.a, [start, 0, 0], [rows, tk, dIn]), [rows * tk, dIn]),
        tf.reshape(tf.slice(target.b, [start, 0, 0], [rows, tk, dOut]), [rows * tk, dOut]),
        true,
        false,
      ),
    ),
    1,
  );
  const targets = layout.ranges.length;
  const projected = tf.reshape(tf.matMul(a, gT), [n * t, targets, dOut]);
  const perPosition = tf.sum(tf.mul(projected, tf.reshape(b, [n * t, 1, dOut])), 2);
  let out = tf.sum(tf.reshape(perPosition, [n, t, targets]), 1) as tf.Tensor2D;
  if (hasBias) {
    const bTrain = tf.sum(train.b, 1); // [n, dOut]
    const bTarget = tf.matMul(layout.membership, tf.sum(target.b, 1), true, false); // [targets, dOut]
    out = tf.add(out, tf.matMul(bTrain, bTarget, false, true));
  }
  return out;
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
