// Label checks against a LayersModel's outputs: one-hot width, and sparse class ids in range.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import { classificationLabels, lossNames } from '../model/loss-kinds.js';
import { whenRead } from './host-values.js';


/**
 * Checks labels `ys` (one per model output) before they reach tf.js, whose broadcasting would turn
 * a one-hot label of the wrong width into a raw shape error (or, for width 1, silently wrong losses)
 * and whose sparse cross-entropy scores a class id out of range as a zero loss. One read of the sparse
 * labels' range per call (never inside a step), never synchronous (see {@link whenRead}): where it
 * must wait, its promise goes to `pending` (or, without `pending`, the check is skipped: callers that
 * can wait use {@link checkBatchLabels}). `field` names the labels (`y`, `targets.val.ys`).
 */
export function checkLabels(model: tf.LayersModel, ys: readonly tf.Tensor[], field: string, pending?: Promise<void>[]): void {
  const names = lossNames(model);
  model.outputs.forEach((output, i) => {
    const y = ys[i];
    if (y === undefined) return;
    const at = ys.length > 1 ? `${field}[${i}]` : field;
    const shape = output.shape;
    const classes = shape.at(-1);
    if (classificationLabels(names[i]) === 'sparse') {
      if (typeof classes !== 'number') return;
      if (y.size === 0) return;
      // One tensor of [min, max, any fractional]: a single read.
      const range = tf.tidy(() => {
        const v = tf.cast(y, 'float32');
        return tf.stack([tf.min(v), tf.max(v), tf.cast(tf.any(tf.notEqual(v, tf.floor(v))), 'float32')]);
      });
      const later = whenRead([range], ([values]) => {
        const [min, max, fractional] = [values![0]!, values![1]!, values![2]!];
        if (min < 0 || max >= classes || fractional === 1) {
          throw new InrunError(`sparse labels must be class ids in [0, ${classes - 1}] (the model has ${classes} outputs), got values in [${min}, ${max}]${fractional === 1 ? ', some not integers' : ''}`, {
            field: at,
            code: 'invalid_input',
          });
        }
      });
      if (later !== null) pending?.push(later);
      return;
    }
    const want = shape.slice(1);
    const got = y.shape.slice(1);
    if (want.length === got.length && want.some((d, j) => d !== null && d !== got[j])) {
      throw new InrunError(`expected labels of shape [${want.map((d) => d ?? '*').join(', ')}] per row (the model's output${names[i]?.includes('ategorical') ? '; one-hot labels need one column per class' : ''}), got [${got.join(', ')}]`, {
        field: at,
        code: 'shape_mismatch',
      });
    }
  });
}

/**
 * {@link checkLabels} for callers that can wait (run.fit, each fitDataset batch): the range read is
 * awaited, never synchronous. `labels` is a tensor or a list of tensors as a batch carries them; a
 * hand-written model (`model` null) or labels that are not all tensors are not checked.
 */
export async function checkBatchLabels(model: tf.LayersModel | null, labels: unknown, field: string): Promise<void> {
  const ys = labels instanceof tf.Tensor ? [labels] : Array.isArray(labels) ? (labels as unknown[]) : [];
  if (model === null || !ys.every((y) => y instanceof tf.Tensor)) return;
  const pending: Promise<void>[] = [];
  checkLabels(model, ys as tf.Tensor[], field, pending);
  await Promise.all(pending);
}
