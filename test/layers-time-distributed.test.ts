// The time-distributed kind against brute force: tfjs-examples' date-conversion-attention shape (TimeDistributed(Dense) heads), a plain sequence head, and the wrappers it skips.
import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkOneStep, randn, type Case } from './cases.js';
import { rng, type PerExampleLoss } from './helpers.js';
import { describeEveryMethod } from './kind-checks.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** The model's loss per example: categorical cross-entropy averaged over time steps, as tf.layers averages it. */
const sequenceLoss = ((ys, p) => tf.mean(tf.metrics.categoricalCrossentropy(ys, p), -1)) as PerExampleLoss;

const glorot = (seed: number) => tf.initializers.glorotNormal({ seed });

/** One-hot labels for every time step: `[n, steps, classes]`. */
function sequenceLabels(n: number, steps: number, classes: number, seed: number): tf.Tensor {
  const r = rng(seed);
  return tf.oneHot(tf.tensor2d(Array.from({ length: n * steps }, () => Math.floor(r() * classes)), [n, steps], 'int32'), classes);
}

function ids(n: number, steps: number, vocab: number, seed: number): tf.Tensor {
  const r = rng(seed);
  return tf.tensor2d(Array.from({ length: n * steps }, () => 1 + Math.floor(r() * (vocab - 1))), [n, steps], 'int32');
}

/**
 * tfjs-examples' date-conversion-attention model, shrunk and on one input (its decoder reads the
 * encoder's sequence instead of a second, shifted input): Embedding -> LSTM encoder -> LSTM decoder,
 * dot attention (softmax over the encoder steps), context concatenated with the decoder, then its
 * output head TimeDistributed(Dense tanh) -> TimeDistributed(Dense softmax), one class per step.
 */
function dateConversion(): Case {
  const [steps, vocab, classes] = [4, 7, 3];
  const input = tf.input({ shape: [steps] });
  const embedded = tf.layers.embedding({ inputDim: vocab, outputDim: 4, inputLength: steps, embeddingsInitializer: tf.initializers.randomNormal({ seed: 1 }) }).apply(input);
  const encoder = tf.layers.lstm({ units: 4, returnSequences: true, kernelInitializer: glorot(2), recurrentInitializer: glorot(3) }).apply(embedded) as tf.SymbolicTensor;
  const decoder = tf.layers.lstm({ units: 4, returnSequences: true, kernelInitializer: glorot(4), recurrentInitializer: glorot(5) }).apply(encoder) as tf.SymbolicTensor;
  const scores = tf.layers.dot({ axes: [2, 2] }).apply([decoder, encoder]);
  const attention = tf.layers.activation({ activation: 'softmax' }).apply(scores);
  const context = tf.layers.dot({ axes: [2, 1] }).apply([attention as tf.SymbolicTensor, encoder]) as tf.SymbolicTensor;
  const combined = tf.layers.concatenate().apply([context, decoder]);
  const hidden = tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 5, activation: 'tanh', kernelInitializer: glorot(6), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 7 }) }) }).apply(combined);
  const output = tf.layers.timeDistributed({ layer: tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: glorot(8) }) }).apply(hidden);
  const model = tf.model({ inputs: input, outputs: output as tf.SymbolicTensor });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return {
    model,
    loss: sequenceLoss,
    x: ids(6, steps, vocab, 10),
    y: sequenceLabels(6, steps, classes, 11),
    targets: {
      val: { xs: ids(3, steps, vocab, 12), ys: sequenceLabels(3, steps, classes, 13) },
      probe: { xs: ids(2, steps, vocab, 14), ys: sequenceLabels(2, steps, classes, 15) },
    },
  };
}

/** A sequence tagger on float steps: TimeDistributed(Dense relu) -> TimeDistributed(Dense softmax, no bias). */
function tagger(): Case {
  const [steps, classes] = [5, 3];
  const model = tf.sequential({
    layers: [
      tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 6, activation: 'relu', kernelInitializer: glorot(20) }), inputShape: [steps, 4] }),
      tf.layers.timeDistributed({ layer: tf.layers.dense({ units: classes, activation: 'softmax', useBias: false, kernelInitializer: glorot(21) }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return {
    model,
    loss: sequenceLoss,
    x: randn([7, steps, 4], 22),
    y: sequenceLabels(7, steps, classes, 23),
    targets: {
      val: { xs: randn([3, steps, 4], 24), ys: sequenceLabels(3, steps, classes, 25) },
      probe: { xs: randn([4, steps, 4], 26), ys: sequenceLabels(4, steps, classes, 27) },
    },
  };
}

/** TimeDistributed over another covered kind (`inner`) on `[n, 3, ...step]` inputs, then a softmax tag per step. */
function wrapping(inner: tf.layers.Layer, step: number[]): Case {
  const steps = 3;
  const input = tf.input({ shape: [steps, ...step] });
  let h = tf.layers.timeDistributed({ layer: inner }).apply(input) as tf.SymbolicTensor;
  if (h.shape.length > 3) h = tf.layers.timeDistributed({ layer: tf.layers.flatten() }).apply(h) as tf.SymbolicTensor;
  const output = tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: glorot(31) }) }).apply(h);
  const model = tf.model({ inputs: input, outputs: output as tf.SymbolicTensor });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return {
    model,
    loss: sequenceLoss,
    x: randn([5, steps, ...step], 32),
    y: sequenceLabels(5, steps, 2, 33),
    targets: { val: { xs: randn([3, steps, ...step], 34), ys: sequenceLabels(3, steps, 2, 35) } },
  };
}

describeEveryMethod("date-conversion-attention's TimeDistributed(Dense) head", () => dateConversion(), 'time-distributed');
describeEveryMethod('a TimeDistributed(Dense) sequence tagger', () => tagger(), 'time-distributed');

describe('TimeDistributed over the other covered kinds', () => {
  for (const [label, make] of [
    ['Conv1D', () => wrapping(tf.layers.conv1d({ filters: 3, kernelSize: 2, activation: 'relu', kernelInitializer: glorot(40) }), [5, 2])],
    ['LayerNormalization', () => wrapping(tf.layers.layerNormalization({ gammaInitializer: tf.initializers.randomNormal({ mean: 1, stddev: 0.3, seed: 41 }) }), [4])],
  ] as const) {
    it(`${label}: every parameter covered, shapley1 and tracin_self equal brute force`, async () => {
      const c = make();
      const run = attach(c.model, { targets: c.targets });
      const { covered, coveredParams, trainableParams } = run.info.layers;
      expect(covered.map((l) => l.kind)).toEqual(['time-distributed', 'time-distributed']);
      expect(coveredParams).toBe(trainableParams);
      await run.close();
      await checkOneStep(c, { methods: ['shapley1', 'tracin_self'] });
    });
  }
});

describe('TimeDistributed layers inrun skips with a reason', () => {
  it('over a layer kind inrun does not cover (a SimpleRNN per step): skipped, naming the wrapped class', async () => {
    const input = tf.input({ shape: [3, 4, 2] });
    const wrapper = tf.layers.timeDistributed({ layer: tf.layers.simpleRNN({ units: 2 }) });
    const h = wrapper.apply(input) as tf.SymbolicTensor;
    const output = tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2, activation: 'softmax' }) }).apply(h);
    const model = tf.model({ inputs: input, outputs: output as tf.SymbolicTensor });
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
    const run = attach(model, { targets: { val: { xs: randn([2, 3, 4, 2], 1), ys: sequenceLabels(2, 3, 2, 2) } } });
    const skipped = run.info.layers.skipped.find((l) => l.name === wrapper.name);
    expect(skipped?.className).toBe('TimeDistributed');
    expect(skipped?.reason).toMatch(/wraps a SimpleRNN/);
    await run.close();
  });
});

describe('numTensors stays flat over steps', () => {
  it('date-conversion shape, 4 fit epochs: the same count after epoch 1 and after epoch 4', async () => {
    const c = dateConversion();
    const run = attach(c.model, { targets: c.targets, methods: ['shapley1', 'tracin_self'] });
    const names = Array.from({ length: 6 }, (_, i) => `row${i}`);
    await run.fit(c.x, c.y, { ids: names, epochs: 1, batchSize: 3, verbose: 0 });
    const after1 = tf.memory().numTensors;
    await run.fit(c.x, c.y, { ids: names, epochs: 3, batchSize: 3, verbose: 0 });
    expect(tf.memory().numTensors).toBe(after1);
    await run.close();
  });
});
