/**
 * Reference model 2: the demo's text classifier (Embedding -> GlobalAveragePooling1D -> Dense(sigmoid))
 * on SpamAssassin, with seeded initializers so that every run gives the same numbers. Shared by the
 * demo, the benchmarks and the evaluations.
 */
import * as tf from '@tensorflow/tfjs';
import type { SplitRows } from './spam-data.js';

export interface SpamClassifierOptions {
  readonly vocabSize: number;
  readonly seqLen: number;
  /** @defaultValue 32 */
  readonly dim?: number;
  /** @defaultValue 0.005 (Adam) */
  readonly learningRate?: number;
  /** Initializer seed. @defaultValue 1 */
  readonly seed?: number;
}

export function spamClassifier(options: SpamClassifierOptions): tf.Sequential {
  const { vocabSize, seqLen, dim = 32, learningRate = 0.005, seed = 1 } = options;
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({
        inputDim: vocabSize,
        outputDim: dim,
        inputLength: seqLen,
        embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed }),
      }),
      tf.layers.globalAveragePooling1d(),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(learningRate), loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** Rows of a split as tensors (`pick`: row indices, default all): token ids `[rows, seqLen]` and labels `[rows, 1]`. */
export function splitTensors(split: SplitRows, seqLen: number, pick?: readonly number[]): { xs: tf.Tensor2D; ys: tf.Tensor2D } {
  const rows = pick ?? split.emails.map((_, i) => i);
  const ids = new Int32Array(rows.length * seqLen);
  rows.forEach((r, k) => ids.set(split.ids.subarray(r * seqLen, (r + 1) * seqLen), k * seqLen));
  return { xs: tf.tensor2d(ids, [rows.length, seqLen], 'int32'), ys: tf.tensor2d(rows.map((r) => split.labels[r]!), [rows.length, 1]) };
}
