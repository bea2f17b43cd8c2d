// Row writes into device-resident tables (rows replaced or added by slot), shared by the accumulators.
import * as tf from '@tensorflow/tfjs';

function hasTensorScatterUpdate(): boolean {
  return tf.getKernel('TensorScatterUpdate', tf.getBackend()) !== undefined;
}

/**
 * `sums` with `rows` added at `indices` (`[n, 1]`, unique). tf.js has no in-place update, so every
 * write copies the whole tensor; `tensorScatterUpdate` makes that a buffer copy plus n row writes,
 * where scattering into zeros and adding would run two full passes of element-wise JS arithmetic on
 * the cpu backend. Backends without the kernel use the scatter-and-add form. Call inside `tf.tidy`.
 */
export function addRows(sums: tf.Tensor, indices: tf.Tensor2D, rows: tf.Tensor): tf.Tensor {
  if (hasTensorScatterUpdate()) {
    const current = tf.gather(sums, tf.reshape(indices, [-1]));
    return tf.tensorScatterUpdate(sums, indices, tf.add(current, rows));
  }
  return tf.add(sums, tf.scatterND(indices, rows, sums.shape));
}

/** `values` with the rows at `indices` (`[n, 1]`, unique) replaced by `rows`. Call inside `tf.tidy`. */
export function setRows(values: tf.Tensor, indices: tf.Tensor2D, rows: tf.Tensor): tf.Tensor {
  if (hasTensorScatterUpdate()) return tf.tensorScatterUpdate(values, indices, rows);
  const n = indices.shape[0];
  const touched = tf.scatterND(indices, tf.ones([n], 'int32'), [values.shape[0]!]);
  const mask = tf.greater(tf.reshape(touched, [values.shape[0]!, ...values.shape.slice(1).map(() => 1)]), 0);
  return tf.where(tf.broadcastTo(mask, values.shape), tf.scatterND(indices, rows, values.shape), values);
}
