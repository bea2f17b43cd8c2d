// Types of the training side (tensors, models) and the record types re-exported from @inrun/store.
import type * as tf from '@tensorflow/tfjs';

export type {
  ColumnInfo,
  CoveredLayer,
  ExampleId,
  ExampleInfo,
  Method,
  RunInfo,
  Scores,
  SkippedLayer,
  SourceInfluenceRow,
  StepRecord,
  TokenScore,
} from '@inrun/store';

/** Tensors of one target: inputs as the model takes them and labels as its loss takes them. */
export interface TargetData {
  readonly xs: tf.Tensor | readonly tf.Tensor[];
  readonly ys: tf.Tensor | readonly tf.Tensor[];
}

/** A model trained by hand-written code: the pieces inrun needs for the targets' gradients. */
export interface FunctionalModel {
  /** Forward pass for target inputs; training code keeps its own forward. */
  readonly predict: (xs: tf.Tensor | tf.Tensor[]) => tf.Tensor | tf.Tensor[];
  /** Per-example loss: a tensor whose first axis is the example (other axes are averaged). */
  readonly loss: (ys: tf.Tensor | tf.Tensor[], predictions: tf.Tensor | tf.Tensor[]) => tf.Tensor;
  /** The optimizer whose `minimize` steps the loop. */
  readonly optimizer: tf.Optimizer;
  /**
   * How the training loss reduces per-example losses. Only self-influence depends on it.
   * @defaultValue 'mean'
   */
  readonly lossReduction?: 'mean' | 'sum';
  /** A name for reports. @defaultValue 'model' */
  readonly name?: string;
}
