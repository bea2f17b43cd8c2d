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
  // Materialised: per target, a [vocab, dim] table of its summed b rows per id (scatterND adds
  // duplicate ids; targets are contiguous row ranges), side by side, gathered at the training ids.
  const tables = layout.ranges.map(({ start, rows }) =>
    tf.scatterND(
      tf.reshape(tf.slice(target.ids, [start, 0], [rows, tk]), [rows * tk, 1]),
      tf.reshape(tf.slice(target.b, [start, 0, 0], [rows, tk, dim]), [rows * tk, dim]),
      [vocab, dim],
    ),
  );
  const table = tables.length === 1 ? tables[0]! : tf.concat(tables, 1);
  const looked = tf.reshape(tf.gather(table, tf.reshape(train.ids, [n * t])), [n * t, targets, dim]);
  return tf.reshape(tf.sum(tf.mul(looked, tf.reshape(b, [n * t, 1, dim])), 2), [n, t, targets]);
}

/**
 * `||G_i||^2` for one embedding layer: the table gradient of example i has one row per distinct id,
 * the sum of b over the positions holding it. `unique` numbers the (example, id) pairs, `scatterND`
 * sums b rows per pair, and the squared sums are added back per example: O(n T dim), where comparing
 * every pair of positions would cost O(n T^2 dim). `[n]`.
 */
export function embeddingSelfProducts(train: EmbeddingRows, vocab: number): tf.Tensor1D {
  const [n, t] = train.ids.shape;
  const dim = train.b.shape[2];
  if (t === 1) return tf.sum(tf.square(train.b), [1, 2]);
  const example = tf.reshape(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(vocab, 'int32')), [n, 1]);
  const keys = tf.reshape(tf.add(train.ids, example), [n * t]);
  const { values, indices } = tf.unique(keys);
  const pairs = values.shape[0]!;
  const sums = tf.scatterND(tf.reshape(indices, [n * t, 1]), tf.reshape(train.b, [n * t, dim]), [pairs, dim]);
  const owner = tf.reshape(tf.floorDiv(values, tf.scalar(vocab, 'int32')), [pairs, 1]);
  return tf.scatterND(owner, tf.sum(tf.square(sums), 1), [n]);
}
