import * as tf from '@tensorflow/tfjs';
import { attach, type AttachOptions, type StepRecord } from 'inrun';
import { expect } from 'vitest';
import { dot, expectClose, layerVariables, losses, perExampleGradients, rng, targetGradient, type PerExampleLoss } from './helpers.js';

/** Models and the one-step brute-force check shared by the ghost tests on each backend. */
export interface Case {
  readonly model: tf.LayersModel;
  readonly loss: PerExampleLoss;
  readonly x: tf.Tensor;
  readonly y: tf.Tensor;
  readonly targets: Record<string, { xs: tf.Tensor; ys: tf.Tensor }>;
  /** Layers whose parameters tracin_we covers (embedding layers). */
  readonly embeddingLayers?: readonly string[];
}

/**
 * One optimizer step through inrun vs the brute-force reference at the same weights:
 * shapley1 = lr/n <g_T, g_i>, tracin_self = lr/n ||g_i||^2, tracin_we = the same over embeddings.
 */
export async function checkOneStep(c: Case, options: AttachOptions): Promise<(string | null)[]> {
  const lr = 0.05;
  const n = c.x.shape[0]!;
  const forward = (x: tf.Tensor) => c.model.apply(x, { training: true }) as tf.Tensor;
  const vars = layerVariables(c.model);
  const g = perExampleGradients(forward, c.loss, c.x, c.y, vars);
  const gT = Object.fromEntries(Object.entries(c.targets).map(([k, t]) => [k, targetGradient(forward, c.loss, t.xs, t.ys, vars)]));
  const embVars = c.embeddingLayers ? layerVariables(c.model, c.embeddingLayers) : [];
  const gE = embVars.length ? perExampleGradients(forward, c.loss, c.x, c.y, embVars) : [];
  const gTE = Object.fromEntries(
    Object.entries(c.targets).map(([k, t]) => [k, embVars.length ? targetGradient(forward, c.loss, t.xs, t.ys, embVars) : new Float64Array()]),
  );

  (c.model.optimizer as unknown as { learningRate: number }).learningRate = lr;
  const run = attach(c.model, { targets: c.targets, ...options });
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  const ids = Array.from({ length: n }, (_, i) => `row${i}`);
  await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
  await run.flush();
  expect(records).toHaveLength(1);
  const rec = records[0]!;
  expect(rec.ids).toEqual(ids);
  for (const name of Object.keys(c.targets)) {
    if (rec.columns[`shapley1:${name}`]) {
      expectClose(rec.columns[`shapley1:${name}`]!, g.map((gi) => (lr / n) * dot(gT[name]!, gi)));
    }
    if (rec.columns[`tracin_we:${name}`]) {
      expectClose(rec.columns[`tracin_we:${name}`]!, gE.map((gi) => (lr / n) * dot(gTE[name]!, gi)));
    }
  }
  if (rec.columns['tracin_self']) expectClose(rec.columns['tracin_self'], g.map((gi) => (lr / n) * dot(gi, gi)));
  await run.close();
  return run.info.layers.covered.map((l) => l.path);
}

export function randn(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

export function oneHot(n: number, classes: number, seed: number): tf.Tensor {
  const r = rng(seed);
  return tf.oneHot(tf.tensor1d(Array.from({ length: n }, () => Math.floor(r() * classes)), 'int32'), classes);
}

export function mlp(activations: readonly string[], useBias: boolean): Case {
  const layers: tf.layers.Layer[] = activations.map((activation, i) =>
    tf.layers.dense({
      units: i === activations.length - 1 ? 3 : 6,
      activation: activation as 'relu',
      useBias,
      ...(i === 0 ? { inputShape: [5] } : {}),
      kernelInitializer: tf.initializers.glorotNormal({ seed: 10 + i }),
      biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 20 + i }),
    }),
  );
  const model = tf.sequential({ layers });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return {
    model,
    loss: losses.categorical,
    x: randn([7, 5], 1),
    y: oneHot(7, 3, 2),
    targets: { val: { xs: randn([3, 5], 3), ys: oneHot(3, 3, 4) }, probe: { xs: randn([5, 5], 5), ys: oneHot(5, 3, 6) } },
  };
}

/** Dense on sequences: rank-3 inputs of variable length, so targets of other lengths form separate groups. */
export function sequenceModel(): Case {
  const input = tf.input({ shape: [null, 3] });
  const h = tf.layers.dense({ units: 6, activation: 'swish', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input);
  const h2 = tf.layers.dense({ units: 4, activation: 'tanh', useBias: false, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h);
  const pooled = tf.layers.globalAveragePooling1d().apply(h2);
  const out = tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(pooled);
  const model = tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return {
    model,
    loss: losses.categorical,
    x: randn([6, 4, 3], 7),
    y: oneHot(6, 2, 8),
    targets: { long: { xs: randn([3, 4, 3], 9), ys: oneHot(3, 2, 10) }, short: { xs: randn([2, 2, 3], 11), ys: oneHot(2, 2, 12) } },
  };
}

/** A binary text classifier: Embedding -> flatten -> Dense(sigmoid), with seeded weights. */
function embeddingCase(vocab: number, dim: number, length: number, seed: number, data: (r: () => number) => Pick<Case, 'x' | 'y' | 'targets'>): Case {
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: vocab, outputDim: dim, inputLength: length, embeddingsInitializer: tf.initializers.randomNormal({ seed }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'binaryCrossentropy' });
  return { model, loss: losses.binary, ...data(rng(seed + 2)), embeddingLayers: [model.layers[0]!.name] };
}

function binaryLabels(r: () => number, n: number): tf.Tensor {
  return tf.tensor2d(Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)), [n, 1]);
}

/** Embedding with repeated ids inside examples and shared with the targets. */
export function embeddingModel(): Case {
  return embeddingCase(9, 4, 6, 1, (r) => {
    const ids = (n: number) => tf.tensor2d(Array.from({ length: n * 6 }, () => (Math.floor(r() * 5) * (r() < 0.3 ? 1 : 2)) % 9), [n, 6], 'int32');
    return { x: ids(8), y: binaryLabels(r, 8), targets: { val: { xs: ids(4), ys: binaryLabels(r, 4) }, probe: { xs: ids(3), ys: binaryLabels(r, 3) } } };
  });
}

/**
 * An embedding model whose target holds many more distinct ids than the batch has positions, so the
 * materialised path reads a vocabulary-sized table (the gather variant) rather than the compact one.
 */
export function wideTargetEmbeddingModel(): Case {
  return embeddingCase(300, 4, 3, 5, (r) => {
    const ids = (n: number, spread: number) => tf.tensor2d(Array.from({ length: n * 3 }, () => Math.floor(r() * spread)), [n, 3], 'int32');
    // Training ids repeat within the batch; the target covers most of the vocabulary.
    return { x: ids(2, 4), y: binaryLabels(r, 2), targets: { val: { xs: ids(60, 300), ys: binaryLabels(r, 60) } } };
  });
}
