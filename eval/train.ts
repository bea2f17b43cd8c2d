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

/** What trainSeeded steps: a compiled LayersModel, or an optimizer with a one-batch step of a hand-written model. */
export interface Trainable {
  readonly optimizer: tf.Optimizer;
  trainOnBatch(xs: tf.Tensor, ys: tf.Tensor): unknown;
}

/**
 * Trains `model` for `steps` steps of `batchSize` rows drawn from `keep` (row indices of xs/ys) in a
 * seeded order. Each pass is the seeded permutation of all rows of xs with the rows not in `keep` left
 * out, so two subsets train in the same order except for the rows one of them lacks: a reshuffle of each
 * subset would change every batch and drown a deletion's effect in the noise of retraining. Same step
 * count, same seed. `after(step)` runs after every step (step counts from 1). `learningRate(step)`, when
 * given, sets the compiled optimizer's rate before each step (a schedule); `around(rows, train)` wraps
 * each step, e.g. in `run.step` with the rows' ids. `distinct` keeps a row from appearing twice in the
 * batch that spans two passes (run.step needs distinct ids): the next pass's rows already in that batch
 * move just past it.
 */
export async function trainSeeded(
  model: Trainable,
  data: { readonly xs: tf.Tensor; readonly ys: tf.Tensor },
  keep: readonly number[],
  options: {
    readonly steps: number;
    readonly seed: number;
    readonly batchSize?: number;
    readonly after?: (step: number) => void | Promise<void>;
    readonly learningRate?: (step: number) => number;
    readonly around?: (rows: readonly number[], train: () => Promise<unknown>) => Promise<unknown>;
    readonly distinct?: boolean;
  },
): Promise<void> {
  const batchSize = options.batchSize ?? 32;
  const random = uniform(options.seed);
  const all = [...Array(data.xs.shape[0]).keys()];
  const kept = new Set(keep);
  let order: number[] = [];
  for (let step = 1; step <= options.steps; step++) {
    if (order.length < batchSize) {
      const pass = shuffle(all, random).filter((i) => kept.has(i));
      if (options.distinct === true) {
        const pending = new Set(order);
        const first: number[] = [];
        const rest: number[] = [];
        for (const i of pass) (first.length < batchSize - order.length && !pending.has(i) ? first : rest).push(i);
        order = order.concat(first, rest);
      } else {
        order = order.concat(pass);
      }
    }
    const rows = order.splice(0, batchSize);
    const idx = tf.tensor1d(rows, 'int32');
    const xs = tf.gather(data.xs, idx);
    const ys = tf.gather(data.ys, idx);
    if (options.learningRate !== undefined) setRate(model.optimizer, options.learningRate(step));
    const train = async () => await model.trainOnBatch(xs, ys);
    await (options.around === undefined ? train() : options.around(rows, train));
    tf.dispose([idx, xs, ys]);
    await options.after?.(step);
  }
}

/** Sets an optimizer's rate: tf.js' SGD keeps its own copy (setLearningRate); Adam and the others read `learningRate` at each step. */
function setRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}
