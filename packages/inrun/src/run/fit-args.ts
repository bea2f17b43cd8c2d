// run.fit's arguments: checked, validation rows split off as model.fit does, ids per training row.
import * as tf from '@tensorflow/tfjs';
import { InrunError, invalid } from '../errors.js';
import { checkIds } from '../hooks/ids.js';
import { tensorList } from '../model/tensor-list.js';
import type { ExampleId } from '../types.js';
import type { FitArgs } from './api.js';

/** What run.fit trains on: the training rows and their ids, validation data, and the slices to free afterwards. */
export interface PreparedFit {
  readonly seed: number | undefined;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly epochs: number;
  /** model.fit arguments passed on unchanged. */
  readonly rest: Omit<FitArgs, 'ids' | 'seed' | 'batchSize' | 'shuffle' | 'epochs' | 'validationSplit' | 'validationData'>;
  readonly tx: tf.Tensor[];
  readonly ty: tf.Tensor[];
  /** Ids of every row of x, in row order. */
  readonly idList: readonly ExampleId[];
  /** Rows used for training (the first `train` rows). */
  readonly train: number;
  readonly validation: FitArgs['validationData'];
  /** Tensors sliced here: the caller frees them after training. */
  readonly sliced: tf.Tensor[];
}

/** Checks run.fit's arguments (InrunErrors naming `args.*`, `x`, `y`) and splits off validation rows. */
export function prepareFit(x: tf.Tensor | tf.Tensor[], y: tf.Tensor | tf.Tensor[], args: FitArgs): PreparedFit {
  const { ids, seed, batchSize = 32, shuffle = true, epochs = 1, validationSplit, validationData, ...rest } = args;
  for (const key of ['sampleWeight', 'stepsPerEpoch', 'validationSteps'] as const) {
    if (rest[key] !== undefined) throw new InrunError('is not supported by run.fit', { field: `args.${key}` });
  }
  if (shuffle !== true && shuffle !== false) {
    invalid('args.shuffle', 'true or false', shuffle);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    invalid('args.batchSize', 'a positive integer', batchSize);
  }
  const xs = tensorList(x);
  const ys = tensorList(y);
  const n = xs[0]?.shape[0] ?? 0;
  [...xs, ...ys].forEach((t, i) => {
    if (!(t instanceof tf.Tensor)) invalid(i < xs.length ? 'x' : 'y', 'tensors', t);
    if (t.shape[0] !== n) {
      throw new InrunError(`expected ${n} rows like x, got ${t.shape[0]}`, { field: i < xs.length ? `x[${i}]` : `y[${i - xs.length}]`, code: 'shape_mismatch' });
    }
  });
  const idList = ids === undefined ? Array.from({ length: n }, (_, i) => i) : checkIds(ids, 'args.ids', n);
  let train = n;
  let validation = validationData;
  const sliced: tf.Tensor[] = [];
  if (validationSplit !== undefined && validationSplit > 0 && validation === undefined) {
    if (!(validationSplit < 1)) throw new InrunError(`expected a number in [0, 1), got ${validationSplit}`, { field: 'args.validationSplit' });
    // As model.fit: the last rows, taken before shuffling.
    train = Math.floor(n * (1 - validationSplit));
    const tail = (list: tf.Tensor[]) => list.map((t) => tf.slice(t, train, n - train));
    const vx = tail(xs);
    const vy = tail(ys);
    sliced.push(...vx, ...vy);
    validation = [vx.length === 1 ? vx[0]! : vx, vy.length === 1 ? vy[0]! : vy];
  }
  const head = (list: tf.Tensor[]) => (train === n ? list : list.map((t) => tf.slice(t, 0, train)));
  const tx = head(xs);
  const ty = head(ys);
  if (train !== n) sliced.push(...tx, ...ty);
  return { seed, batchSize, shuffle, epochs, rest, tx, ty, idList, train, validation, sliced };
}
