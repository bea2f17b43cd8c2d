import * as tf from '@tensorflow/tfjs';
import type { EmbeddingRows, GhostPath, TargetLayout } from './rows.js';

/**
 * Per-position terms of `<G_i, G_T>` for one embedding layer: `[n, T, targets]`. Position p of
 * example i contributes b_ip . (sum of the target's b rows at the same id); summing over positions
 * gives the example's product, and the terms themselves are TracIn-WE's per-token contributions.
 * Call inside `tf.tidy`.
 */
export function embeddingTargetTerms(
  train: EmbeddingRows,
  target: EmbeddingRows,
  layout: TargetLayout,
  vocab: number,
  path: GhostPath,
): tf.Tensor3D {
  const [n, t] = train.ids.shape;
  const dim = train.b.shape[2];
  const [k, tk] = target.ids.shape;
  const targets = layout.ranges.length;
  const b = tf.reshape(train.b, [n * t, dim]);
  if (path === 'pairwise') {
    const same = tf.cast(tf.equal(tf.reshape(train.ids, [n * t, 1]), tf.reshape(target.ids, [1, k * tk])), 'float32');
    const gb = tf.matMul(b, tf.reshape(target.b, [k * tk, dim]), false, true);
    const perRow = tf.sum(tf.reshape(tf.mul(same, gb), [n * t, k, tk]), 2);
    return tf.reshape(tf.matMul(perRow, layout.membership), [n, t, targets]);
  }
  // Materialised: a [vocab, targets * dim] table of the targets' summed b rows per id (scatterND
  // adds duplicate ids), gathered at the training ids.
  const rowTargets = tf.reshape(tf.tile(tf.reshape(layout.membership, [k, 1, targets]), [1, tk, 1]), [k * tk, targets, 1]);
  const values = tf.reshape(tf.mul(tf.reshape(target.b, [k * tk, 1, dim]), rowTargets), [k * tk, targets * dim]);
  const table = tf.scatterND(tf.reshape(target.ids, [k * tk, 1]), values, [vocab, targets * dim]);
  const looked = tf.reshape(tf.gather(table, tf.reshape(train.ids, [n * t])), [n * t, targets, dim]);
  return tf.reshape(tf.sum(tf.mul(looked, tf.reshape(b, [n * t, 1, dim])), 2), [n, t, targets]);
}

/** `||G_i||^2` for one embedding layer: sum over position pairs with equal ids of b_p . b_q. `[n]`. */
export function embeddingSelfProducts(train: EmbeddingRows): tf.Tensor1D {
  const [n, t] = train.ids.shape;
  if (t === 1) return tf.sum(tf.square(train.b), [1, 2]);
  const same = tf.cast(tf.equal(tf.reshape(train.ids, [n, t, 1]), tf.reshape(train.ids, [n, 1, t])), 'float32');
  const gb = tf.matMul(train.b, train.b, false, true);
  return tf.sum(tf.mul(same, gb), [1, 2]);
}
