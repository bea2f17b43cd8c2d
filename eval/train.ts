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
 * seeded order. Each pass is the seeded permutation of all rows of xs with the rows not in `keep` left
 * out, so two subsets train in the same order except for the rows one of them lacks: a reshuffle of each
 * subset would change every batch and drown a deletion's effect in the noise of retraining. Same step
 * count, same seed. `after(step)` runs after every step (step counts from 1).
 */
export async function trainSeeded(
  model: tf.LayersModel,
  data: { readonly xs: tf.Tensor; readonly ys: tf.Tensor },
  keep: readonly number[],
  options: { readonly steps: number; readonly seed: number; readonly batchSize?: number; readonly after?: (step: number) => void | Promise<void> },
): Promise<void> {
  const batchSize = options.batchSize ?? 32;
  const random = uniform(options.seed);
  const all = [...Array(data.xs.shape[0]).keys()];
  const kept = new Set(keep);
  let order: number[] = [];
  for (let step = 1; step <= options.steps; step++) {
    if (order.length < batchSize) order = order.concat(shuffle(all, random).filter((i) => kept.has(i)));
    const idx = tf.tensor1d(order.splice(0, batchSize), 'int32');
    const xs = tf.gather(data.xs, idx);
    const ys = tf.gather(data.ys, idx);
    await model.trainOnBatch(xs, ys);
    tf.dispose([idx, xs, ys]);
    await options.after?.(step);
  }
}
