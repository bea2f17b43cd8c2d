// ModelAdapter and adaptModel: what inrun needs from a tf.layers model or a hand-written one (forward, per-example loss, optimizer).
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { FunctionalModel } from '../types.js';
import { tensorList } from './tensor-list.js';

/** What inrun needs from a model, whether tf.layers or hand-written. */
export interface ModelAdapter {
  readonly name: string;
  readonly className: string;
  readonly params: number;
  readonly optimizer: tf.Optimizer;
  readonly lossReduction: 'mean' | 'sum';
  /** Input count and per-input shapes without the batch axis (null = any size), when known. */
  readonly inputShapes: readonly (readonly (number | null)[])[] | null;
  readonly outputs: number | null;
  /** Forward pass for target rows (inference mode). */
  forward(xs: readonly tf.Tensor[]): tf.Tensor[];
  /** Per-example loss `[K]`: the model's loss, averaged over non-batch axes, summed over outputs. */
  perExampleLoss(ys: readonly tf.Tensor[], predictions: readonly tf.Tensor[]): tf.Tensor1D;
  /** The LayersModel, when there is one. */
  readonly layersModel: tf.LayersModel | null;
}

type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

function perExample(loss: tf.Tensor): tf.Tensor1D {
  if (loss.rank === 0) {
    throw new InrunError('the loss returned a scalar; inrun needs one loss per example (a tensor whose first axis is the example)', { code: 'unsupported_model' });
  }
  return (loss.rank === 1 ? loss : tf.mean(loss, Array.from({ length: loss.rank - 1 }, (_, i) => i + 1))) as tf.Tensor1D;
}

function adaptLayersModel(model: tf.LayersModel, optimizer: tf.Optimizer | undefined): ModelAdapter {
  const inner = model as unknown as { lossFunctions?: LossFn[]; model?: { lossFunctions?: LossFn[] } };
  const lossFunctions = inner.lossFunctions ?? inner.model?.lossFunctions;
  const opt = optimizer ?? (model.optimizer);
  if (lossFunctions === undefined || lossFunctions.length === 0 || opt == null) {
    throw new InrunError('compile the model before attach: inrun reads its loss and optimizer', { field: 'model', code: 'unsupported_model' });
  }
  return {
    name: model.name,
    className: model.getClassName(),
    params: model.countParams(),
    optimizer: opt,
    lossReduction: 'mean', // tf.layers always averages the loss over the batch
    inputShapes: model.inputs.map((input) => input.shape.slice(1)),
    outputs: model.outputs.length,
    forward: (xs) => tensorList(model.apply(xs.length === 1 ? xs[0]! : [...xs], { training: false }) as tf.Tensor | tf.Tensor[]),
    perExampleLoss: (ys, predictions) =>
      tf.tidy(() =>
        lossFunctions
          .map((fn, i) => perExample(fn(ys[i]!, predictions[i]!)))
          .reduce((sum, l) => tf.add(sum, l) as tf.Tensor1D),
      ),
    layersModel: model,
  };
}

function adaptFunctional(model: FunctionalModel): ModelAdapter {
  if (typeof model.predict !== 'function') throw new InrunError('expected a function', { field: 'model.predict' });
  if (typeof model.loss !== 'function') throw new InrunError('expected a function', { field: 'model.loss' });
  if (!(model.optimizer instanceof tf.Optimizer)) {
    throw new InrunError('expected a tf.Optimizer', { field: 'model.optimizer' });
  }
  const reduction = model.lossReduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') {
    throw new InrunError(`expected 'mean' or 'sum', got ${String(reduction)}`, { field: 'model.lossReduction' });
  }
  return {
    name: model.name ?? 'model',
    className: 'FunctionalModel',
    params: 0,
    optimizer: model.optimizer,
    lossReduction: reduction,
    inputShapes: null,
    outputs: null,
    forward: (xs) => tensorList(model.predict(xs.length === 1 ? xs[0]! : [...xs])),
    perExampleLoss: (ys, predictions) =>
      tf.tidy(() => perExample(model.loss(ys.length === 1 ? ys[0]! : [...ys], predictions.length === 1 ? predictions[0]! : [...predictions]))),
    layersModel: null,
  };
}

export function adaptModel(model: tf.LayersModel | FunctionalModel, optimizer: tf.Optimizer | undefined): ModelAdapter {
  if (model instanceof tf.LayersModel) return adaptLayersModel(model, optimizer);
  if (model === null || typeof model !== 'object') {
    throw new InrunError('expected a tf.LayersModel or { predict, loss, optimizer }', { field: 'model' });
  }
  return adaptFunctional(model);
}
