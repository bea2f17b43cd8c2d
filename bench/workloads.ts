/**
 * The reference models as benchmark workloads: one training step on random data of the model's
 * shape, a target of K rows, and the naive per-example baseline.
 */
import * as tf from '@tensorflow/tfjs';
import { attach, type FunctionalModel, type Method } from 'inrun';
import { spamClassifier } from '../examples/spam-classifier.js';
import { tabularMlp } from '../examples/tabular.js';
import { tinyTransformer } from '../examples/tiny-transformer.js';

export interface Instance {
  /** What `attach` takes. */
  readonly model: tf.LayersModel | FunctionalModel;
  readonly x: tf.Tensor;
  readonly y: tf.Tensor;
  readonly target: { readonly xs: tf.Tensor; readonly ys: tf.Tensor };
  /** One plain optimizer step on (x, y). */
  step(): Promise<unknown>;
  /** Per-example loss `[n]`, for the naive baseline. */
  loss(ys: tf.Tensor, xs: tf.Tensor): tf.Tensor;
  readonly variables: tf.Variable[];
  dispose(): void;
}

export interface Workload {
  readonly name: string;
  /** Sequence length, where the model has one (`null` for tabular rows). */
  readonly seqLen: number | null;
  build(batch: number, targetRows: number, seqLen?: number): Instance;
}

const VOCAB = 5000;

function layersInstance(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, target: { xs: tf.Tensor; ys: tf.Tensor }, perExample: (y: tf.Tensor, p: tf.Tensor) => tf.Tensor): Instance {
  return {
    model,
    x,
    y,
    target,
    step: () => model.trainOnBatch(x, y),
    loss: (ys, xs) => perExample(ys, model.apply(xs) as tf.Tensor),
    variables: model.trainableWeights.map((w) => w.read() as tf.Variable),
    dispose: () => {
      tf.dispose([x, y, target.xs, target.ys]);
      // LayersModel.dispose() leaves the optimizer's slots.
      model.optimizer.dispose();
      model.dispose();
    },
  };
}

export const tabular: Workload = {
  name: 'tabular MLP 20-64-64-2',
  seqLen: null,
  build(batch, k) {
    const rows = (n: number) => ({ xs: tf.randomNormal([n, 20]), ys: tf.oneHot(tf.randomUniform([n], 0, 2, 'int32') as tf.Tensor1D, 2) });
    const train = rows(batch);
    return layersInstance(tabularMlp(), train.xs, train.ys, rows(k), (y, p) => tf.metrics.categoricalCrossentropy(y, p));
  },
};

export const text: Workload = {
  name: 'text: Embedding(5000,32)-pool-Dense',
  seqLen: 128,
  build(batch, k, seqLen = 128) {
    const rows = (n: number) => ({ xs: tf.randomUniform([n, seqLen], 0, VOCAB, 'int32'), ys: tf.cast(tf.randomUniform([n, 1], 0, 2, 'int32'), 'float32') });
    const train = rows(batch);
    return layersInstance(spamClassifier({ vocabSize: VOCAB, seqLen }), train.xs, train.ys, rows(k), (y, p) => tf.metrics.binaryCrossentropy(y, p));
  },
};

export const transformer: Workload = {
  name: 'tiny causal transformer (ops), vocab 2048',
  seqLen: 64,
  build(batch, k) {
    const m = tinyTransformer();
    const ids = (n: number) => tf.randomUniform([n, m.context], 0, m.vocabSize, 'int32');
    const [x, y] = [ids(batch), ids(batch)];
    const target = { xs: ids(k), ys: ids(k) };
    return {
      model: m,
      x,
      y,
      target,
      step: () => Promise.resolve(m.optimizer.minimize(() => tf.mean(m.loss(y, m.predict(x))) as tf.Scalar)),
      loss: (ys, xs) => m.loss(ys, m.predict(xs)),
      variables: m.variables,
      dispose: () => {
        tf.dispose([x, y, target.xs, target.ys]);
        m.optimizer.dispose();
        m.dispose();
      },
    };
  },
};

/**
 * How a benchmark trains: plain steps, first-order attribution (`shapley1` + `tracin_self`), the same
 * with the target pass every 16 steps, or second order (`shapley1` + `shapley2`); per-step records off.
 */
export type Mode = 'plain' | 'first' | 'every16' | 'second';
const METHODS: Record<Exclude<Mode, 'plain'>, Method[]> = { first: ['shapley1', 'tracin_self'], every16: ['shapley1', 'tracin_self'], second: ['shapley1', 'shapley2'] };

/** Runs `body` with a step function for `mode` (attached for attributed modes), closing the run after. */
export async function withMode<T>(inst: Instance, mode: Mode, body: (step: () => Promise<unknown>) => Promise<T>): Promise<T> {
  if (mode === 'plain') return body(() => inst.step());
  const run = attach(inst.model, { targets: { target: inst.target }, methods: METHODS[mode], stepRecords: false, ...(mode === 'every16' ? { targetEvery: 16 } : {}) });
  const batch = inst.x.shape[0]!;
  let next = 0;
  try {
    return await body(() => run.step(Array.from({ length: batch }, () => next++ % (batch * 16)), () => inst.step()));
  } finally {
    await run.close();
  }
}

/**
 * The naive way: one backward pass per example, then a dot product with the target gradient (and the
 * squared norm), then the plain step.
 */
export async function naiveStep(w: Instance): Promise<unknown> {
  tf.tidy(() => {
    const gradOf = (xs: tf.Tensor, ys: tf.Tensor) => {
      const { grads } = tf.variableGrads(() => tf.sum(w.loss(ys, xs)) as tf.Scalar, w.variables);
      return tf.concat(w.variables.map((v) => tf.reshape(grads[v.name] ?? tf.zerosLike(v), [-1])));
    };
    const gT = gradOf(w.target.xs, w.target.ys);
    const values: tf.Tensor[] = [];
    for (let i = 0; i < w.x.shape[0]!; i++) {
      const g = gradOf(tf.slice(w.x, i, 1), tf.slice(w.y, i, 1));
      values.push(tf.stack([tf.sum(tf.mul(gT, g)), tf.sum(tf.square(g))]));
    }
    tf.stack(values).dataSync();
  });
  return w.step();
}
