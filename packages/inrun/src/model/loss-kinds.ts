// The loss a LayersModel's outputs were compiled with, by name, and which classification labels it takes.
import type * as tf from '@tensorflow/tfjs';

/** The label form of a classification loss inrun knows: 0/1, one-hot rows, or class ids. */
export type ClassificationLabels = 'binary' | 'categorical' | 'sparse';

const CLASSIFICATION: Readonly<Record<string, ClassificationLabels>> = {
  binaryCrossentropy: 'binary',
  binary_crossentropy: 'binary',
  categoricalCrossentropy: 'categorical',
  categorical_crossentropy: 'categorical',
  sparseCategoricalCrossentropy: 'sparse',
  sparse_categorical_crossentropy: 'sparse',
};

/** Each output's compiled loss name (one name for all outputs when compiled with one), or null where it is a function. */
export function lossNames(model: tf.LayersModel): (string | null)[] {
  const loss = (model as unknown as { loss?: unknown }).loss;
  const list = Array.isArray(loss) ? (loss as unknown[]) : model.outputs.map(() => loss);
  return list.map((l) => (typeof l === 'string' ? l : null));
}

/** The label form of a loss given by name, or null when it is not a classification loss inrun knows. */
export function classificationLabels(name: string | null | undefined): ClassificationLabels | null {
  return name === null || name === undefined ? null : (CLASSIFICATION[name] ?? null);
}
