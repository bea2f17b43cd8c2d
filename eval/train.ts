import * as tf from '@tensorflow/tfjs';
import { uniform } from './metrics.js';

/** A seeded Fisher-Yates shuffle. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Trains `model` for `steps` steps of `batchSize` rows drawn from `keep` (row indices of xs/ys) in a
 * seeded order: each pass over `keep` is a fresh shuffle, so two subsets of the same data train on the
 * same schedule (same step count, same seed). `after(step)` runs after every step (step counts from 1).
 */
export async function trainSeeded(
  model: tf.LayersModel,
  data: { readonly xs: tf.Tensor; readonly ys: tf.Tensor },
  keep: readonly number[],
  options: { readonly steps: number; readonly seed: number; readonly batchSize?: number; readonly after?: (step: number) => void | Promise<void> },
): Promise<void> {
  const batchSize = options.batchSize ?? 32;
  const random = uniform(options.seed);
  let order: number[] = [];
  for (let step = 1; step <= options.steps; step++) {
    if (order.length < batchSize) order = order.concat(shuffle(keep, random));
    const idx = tf.tensor1d(order.splice(0, batchSize), 'int32');
    const xs = tf.gather(data.xs, idx);
    const ys = tf.gather(data.ys, idx);
    await model.trainOnBatch(xs, ys);
    tf.dispose([idx, xs, ys]);
    await options.after?.(step);
  }
}
