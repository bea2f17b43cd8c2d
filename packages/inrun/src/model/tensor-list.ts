// tensorList: a tensor or a tensor list as a list, for inputs and labels given either way.
import type * as tf from '@tensorflow/tfjs';

/** `[...]` of a tensor or tensor list, for inputs and labels given either way. */
export function tensorList(x: tf.Tensor | readonly tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(x) ? [...(x as readonly tf.Tensor[])] : [x as tf.Tensor];
}
