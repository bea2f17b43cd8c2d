// The opt-in fast GatherV2 gradient (scatterND) for Embedding layers on tf.js' cpu and wasm backends.
import * as tf from '@tensorflow/tfjs';
import { warn } from '../warn.js';
import { InrunError } from '../errors.js';

/**
 * Gradient of `gather(table, ids, axis 0)` with respect to the table, by `scatterND`.
 *
 * tf.js' stock gradient uses `unsortedSegmentSum`, which loops over every vocabulary row on the cpu
 * backend (28 s for one call at vocab 5,000, see docs/embedding-gradient.md) and is not registered
 * on wasm. `scatterND` sums duplicate ids the same way in about a millisecond.
 */
export function tableGradient(tableShape: readonly number[], ids: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const n = ids.size;
  const rows = tf.reshape(dy, [n, ...tableShape.slice(1)]);
  const indices = tf.reshape(ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32'), [n, 1]);
  return tf.scatterND(indices, rows, [...tableShape]);
}

let restoreStock: (() => void) | null = null;

/** Whether {@link useFastEmbeddingGradient} is in effect. */
export function fastEmbeddingGradientActive(): boolean {
  return restoreStock !== null;
}

let warnedSlowGather = false;

/**
 * An Embedding layer trained on cpu or wasm without {@link useFastEmbeddingGradient}: on wasm tf.js'
 * stock gradient is not registered at all (training fails mid-step with "Kernel 'UnsortedSegmentSum'
 * not registered"), so this throws; on cpu it works but takes seconds a step at real vocabularies, so
 * this warns once. Says what to call either way.
 */
export function checkEmbeddingGradient(layer: string): void {
  const backend = tf.getBackend();
  if ((backend !== 'wasm' && backend !== 'cpu') || fastEmbeddingGradientActive()) return;
  const advice = "call useFastEmbeddingGradient() (from 'inrun') once before attach; docs/embedding-gradient.md";
  if (backend === 'wasm') {
    throw new InrunError(`Embedding layer "${layer}" cannot train on the wasm backend with tf.js' stock gradient (UnsortedSegmentSum is not registered there): ${advice}`, {
      field: 'model',
      code: 'unsupported_model',
    });
  }
  if (!warnedSlowGather) {
    warnedSlowGather = true;
    warn(`inrun: Embedding layer "${layer}" on the cpu backend uses tf.js' stock gradient, which loops over every vocabulary row (seconds a step at 5,000 words): ${advice}`);
  }
}

/**
 * Registers a fast gradient for tf.js' `GatherV2` kernel (what `tf.layers.embedding` and `tf.gather`
 * use) for the common case (axis 0, no batch dims); other cases keep the stock gradient.
 *
 * This changes global tf.js state for every model in the process, so it is opt-in: call it once
 * before training an Embedding model on the cpu or wasm backend. Returns a function that puts the
 * stock gradient back. Calling it again while active returns the same restore function.
 */
export function useFastEmbeddingGradient(): () => void {
  if (restoreStock !== null) return restoreStock;
  const stock = tf.getGradient('GatherV2');
  if (stock === undefined) throw new InrunError('tf.js has no GatherV2 gradient to replace', { code: 'unsupported_model' });
  tf.registerGradient({
    kernelName: 'GatherV2',
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved as [tf.Tensor, tf.Tensor];
      const axis = Number((attrs as { axis?: number }).axis ?? 0);
      const batchDims = Number((attrs as { batchDims?: number }).batchDims ?? 0);
      if ((axis === 0 || axis === -x.rank) && batchDims === 0) {
        const grad = dy as tf.Tensor;
        return { x: () => tableGradient(x.shape, indices, grad), indices: () => indices };
      }
      return stock.gradFunc(dy, saved, attrs);
    },
  });
  const restore = (): void => {
    if (restoreStock !== restore) return;
    tf.registerGradient(stock);
    restoreStock = null;
  };
  restoreStock = restore;
  return restore;
}
