// The optimizer seam: every training path ends in computeGradients, which inrun wraps.
import type * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { Restore } from './restore.js';

export type Gradients = { value: tf.Scalar; grads: tf.NamedTensorMap };
type Compute = (f: () => tf.Scalar, varList?: tf.Variable[]) => Gradients;

/** Runs the original computation, optionally on a wrapped loss function (the fused target pass's). */
export type RunCompute = (wrap?: (f: () => tf.Scalar) => () => tf.Scalar) => Gradients;

/**
 * The one seam every tf.js training path goes through: `fit`, `fitDataset`, `trainOnBatch` and
 * custom loops all call `optimizer.minimize`, which calls `this.computeGradients(f, varList)` and
 * then applies what it returns. `handler` gets the original computation to run (inside its capture)
 * and returns its result unchanged, so the update is exactly the uninstrumented one.
 */
export function hookOptimizer(optimizer: tf.Optimizer, handler: (compute: RunCompute) => Gradients): Restore {
  const target = optimizer as unknown as { computeGradients: Compute };
  const hadOwn = Object.prototype.hasOwnProperty.call(target, 'computeGradients');
  const original = target.computeGradients;
  target.computeGradients = (f, varList) => handler((wrap) => original.call(optimizer, wrap === undefined ? f : wrap(f), varList));
  return () => {
    if (hadOwn) target.computeGradients = original;
    else delete (target as { computeGradients?: Compute }).computeGradients;
  };
}

/** The optimizer's current learning rate (read every step, so schedules are followed). */
export function readLearningRate(optimizer: tf.Optimizer): number {
  const lr = (optimizer as unknown as { learningRate?: unknown }).learningRate;
  if (typeof lr !== 'number' || !Number.isFinite(lr)) {
    throw new InrunError(`expected a finite number, got ${String(lr)}`, { field: 'optimizer.learningRate', code: 'unsupported_model' });
  }
  return lr;
}
