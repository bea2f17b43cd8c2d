// checkBatchLabels: a batch's labels checked as run.fit checks them (one-hot width; sparse ids in range).
import * as tf from '@tensorflow/tfjs';
import { checkLabels } from '../scoring/labels.js';

/**
 * Checks labels given as a tensor or a list of tensors against a LayersModel's outputs (one small read of
 * sparse labels per call); skips hand-written models (`model` null) and labels that are not all tensors.
 */
export function checkBatchLabels(model: tf.LayersModel | null, labels: unknown, field: string): void {
  const ys = labels instanceof tf.Tensor ? [labels] : Array.isArray(labels) ? (labels as unknown[]) : [];
  if (model !== null && ys.every((y) => y instanceof tf.Tensor)) {
    checkLabels(model, ys as tf.Tensor[], field);
  }
}
