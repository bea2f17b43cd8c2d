// The recurrent kind (SimpleRNN, GRU, LSTM, Bidirectional) against brute force, and the configurations it declines.
import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { oneHot, randn, type Case } from './cases.js';
import { losses, rng } from './helpers.js';
import { describeEveryMethod } from './kind-checks.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const D = 3;
const UNITS = 4;
const CLASSES = 3;

/** Seeded initializers with a non-zero bias, so `make()` is deterministic and the bias matters. */
function init(seed: number) {
  return {
    kernelInitializer: tf.initializers.glorotNormal({ seed }),
    recurrentInitializer: tf.initializers.glorotNormal({ seed: seed + 1 }),
    biasInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed: seed + 2 }),
  };
}

function head(h: tf.SymbolicTensor, seed: number): tf.SymbolicTensor {
  return tf.layers.dense({ units: CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed }) }).apply(h) as tf.SymbolicTensor;
}

function compiled(inputs: tf.SymbolicTensor, outputs: tf.SymbolicTensor): tf.LayersModel {
  const model = tf.model({ inputs, outputs });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return model;
}

/** Float sequences `[n, T, 3]` of any length; targets of length 4 and 2. */
function sequences(model: tf.LayersModel, seed: number): Case {
  return {
    model,
    loss: losses.categorical,
    x: randn([5, 4, D], seed),
    y: oneHot(5, CLASSES, seed + 1),
    targets: {
      long: { xs: randn([3, 4, D], seed + 2), ys: oneHot(3, CLASSES, seed + 3) },
      short: { xs: randn([2, 2, D], seed + 4), ys: oneHot(2, CLASSES, seed + 5) },
    },
  };
}

/** `rnn` on `[null, 3]` sequences, optionally average-pooled over time, then a softmax Dense. */
function rnnModel(rnn: () => tf.layers.Layer, pool: boolean, seed: number): Case {
  const input = tf.input({ shape: [null, D] });
  let h = rnn().apply(input) as tf.SymbolicTensor;
  if (pool) h = tf.layers.globalAveragePooling1d().apply(h) as tf.SymbolicTensor;
  return sequences(compiled(input, head(h, seed + 40)), seed);
}

/** Embedding(maskZero) -> LSTM: padded positions are masked, so their steps carry no gradient. */
function maskedModel(): Case {
  const input = tf.input({ shape: [5], dtype: 'int32' });
  const e = tf.layers.embedding({ inputDim: 7, outputDim: D, maskZero: true, embeddingsInitializer: tf.initializers.randomNormal({ seed: 60 }) }).apply(input);
  const h = tf.layers.lstm({ units: UNITS, recurrentActivation: 'sigmoid', ...init(61) }).apply(e) as tf.SymbolicTensor;
  const r = rng(62);
  // Ids 1..6 then zero padding of a random length (at least one real token).
  const ids = (n: number) =>
    tf.tensor2d(
      Array.from({ length: n }, () => {
        const len = 1 + Math.floor(r() * 5);
        return Array.from({ length: 5 }, (_, t) => (t < len ? 1 + Math.floor(r() * 6) : 0));
      }),
      [n, 5],
      'int32',
    );
  return {
    model: compiled(input, head(h, 63)),
    loss: losses.categorical,
    x: ids(5),
    y: oneHot(5, CLASSES, 64),
    targets: { val: { xs: ids(3), ys: oneHot(3, CLASSES, 65) }, probe: { xs: ids(2), ys: oneHot(2, CLASSES, 66) } },
  };
}

/**
 * LSTM with returnState, the head on the final cell state c only: the last step's output gate then
 * gets no gradient (a gate slot the call misses, which must count as zero).
 */
function returnStateModel(): Case {
  const input = tf.input({ shape: [null, D] });
  const [, , c] = tf.layers.lstm({ units: UNITS, returnState: true, recurrentActivation: 'sigmoid', ...init(70) }).apply(input) as tf.SymbolicTensor[];
  return sequences(compiled(input, head(c!, 73)), 74);
}

/**
 * Bidirectional(LSTM). Both directions are built from one config, so they start with the same seeded
 * weights; the backward ones are rescaled so that a mix-up of the directions' weights would show.
 */
function bidirectionalModel(inner: tf.RNN, mergeMode: 'concat' | 'ave', pool: boolean, seed: number): Case {
  const input = tf.input({ shape: [null, D] });
  const bi = tf.layers.bidirectional({ layer: inner, mergeMode });
  let h = bi.apply(input) as tf.SymbolicTensor;
  if (pool) h = tf.layers.globalAveragePooling1d().apply(h) as tf.SymbolicTensor;
  const c = sequences(compiled(input, head(h, seed)), seed + 1);
  const weights = bi.getWeights();
  bi.setWeights(weights.map((w, i) => (i < weights.length / 2 ? w : tf.mul(w, tf.add(0.5, tf.randomUniform(w.shape, 0, 1, 'float32', seed + 2 + i))))));
  return c;
}

describeEveryMethod('SimpleRNN (tanh) -> Dense softmax', () => rnnModel(() => tf.layers.simpleRNN({ units: UNITS, ...init(10) }), false, 11), 'recurrent');
describeEveryMethod(
  'LSTM returnSequences -> average pool -> Dense',
  () => rnnModel(() => tf.layers.lstm({ units: UNITS, returnSequences: true, recurrentActivation: 'sigmoid', ...init(20) }), true, 21),
  'recurrent',
);
describeEveryMethod('GRU goBackwards (hardSigmoid gates) -> Dense', () => rnnModel(() => tf.layers.gru({ units: UNITS, goBackwards: true, ...init(30) }), false, 31), 'recurrent');
describeEveryMethod('LSTM without bias', () => rnnModel(() => tf.layers.lstm({ units: UNITS, useBias: false, recurrentActivation: 'sigmoid', ...init(40) }), false, 41), 'recurrent');
describeEveryMethod(
  'GRU returnSequences -> average pool',
  () => rnnModel(() => tf.layers.gru({ units: UNITS, returnSequences: true, recurrentActivation: 'sigmoid', ...init(50) }), true, 51),
  'recurrent',
);
describeEveryMethod(
  'Bidirectional(LSTM), concatenated',
  () => bidirectionalModel(tf.layers.lstm({ units: UNITS, recurrentActivation: 'sigmoid', ...init(80) }) as tf.RNN, 'concat', false, 83),
  'recurrent',
);
describeEveryMethod(
  'Bidirectional(GRU returnSequences), averaged, pooled',
  () => bidirectionalModel(tf.layers.gru({ units: UNITS, returnSequences: true, recurrentActivation: 'sigmoid', ...init(90) }) as tf.RNN, 'ave', true, 93),
  'recurrent',
);
describeEveryMethod('Embedding(maskZero) -> LSTM on padded ids', maskedModel, 'recurrent');
describeEveryMethod('LSTM returnState, head on the cell state', returnStateModel, 'recurrent');

it('no tensor leaks across attributed steps (Bidirectional GRU, first and second order)', async () => {
  const c = bidirectionalModel(tf.layers.gru({ units: UNITS, ...init(100) }) as tf.RNN, 'concat', false, 103);
  const run = attach(c.model, { targets: c.targets, methods: ['shapley1', 'shapley2', 'tracin_self'] });
  const ids = Array.from({ length: c.x.shape[0]! }, (_, i) => i);
  const counts: number[] = [];
  for (let step = 1; step <= 12; step++) {
    await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
    if (step === 4 || step === 12) counts.push(tf.memory().numTensors);
  }
  await run.close();
  expect(counts[1]).toBe(counts[0]);
});

describe('recurrent configurations inrun declines', () => {
  const skipped = (layer: tf.layers.Layer, batch?: number) => {
    const input = tf.input(batch === undefined ? { shape: [4, D] } : { batchShape: [batch, 4, D] });
    const model = compiled(input, head(layer.apply(input) as tf.SymbolicTensor, 1));
    const run = attach(model, {});
    const info = run.info.layers;
    void run.close();
    return info.skipped.find((s) => s.name === layer.name)?.reason ?? null;
  };
  it('dropout and recurrentDropout: the masks are not recorded', () => {
    expect(skipped(tf.layers.lstm({ units: UNITS, dropout: 0.2 }))).toMatch(/dropout/);
    expect(skipped(tf.layers.gru({ units: UNITS, recurrentDropout: 0.2 }))).toMatch(/dropout/);
    expect(skipped(tf.layers.bidirectional({ layer: tf.layers.simpleRNN({ units: UNITS, dropout: 0.1 }) as tf.RNN }))).toMatch(/dropout/);
  });
  it('stateful: target passes would advance the carried state', () => {
    expect(skipped(tf.layers.simpleRNN({ units: UNITS, stateful: true }), 5)).toMatch(/stateful/);
  });
  it('a Bidirectional layer with one direction frozen on its own', () => {
    const input = tf.input({ shape: [4, D] });
    const bi = tf.layers.bidirectional({ layer: tf.layers.gru({ units: UNITS }) as tf.RNN });
    const model = compiled(input, head(bi.apply(input) as tf.SymbolicTensor, 1));
    (bi as unknown as { backwardLayer: tf.layers.Layer }).backwardLayer.trainable = false;
    const run = attach(model, {});
    expect(run.info.layers.skipped.find((l) => l.name === bi.name)?.reason).toMatch(/one direction alone is frozen/);
    void run.close();
  });
  it('a generic RNN over any cell is skipped with a reason', () => {
    const cell = tf.layers.stackedRNNCells({ cells: [tf.layers.simpleRNNCell({ units: UNITS }), tf.layers.simpleRNNCell({ units: UNITS })] });
    expect(skipped(tf.layers.rnn({ cell }))).toMatch(/generic RNN/);
  });
  it('an unsupported RNN named in layers throws unsupported_layer', () => {
    const input = tf.input({ shape: [4, D] });
    const lstm = tf.layers.lstm({ units: UNITS, recurrentDropout: 0.5 });
    const model = compiled(input, head(lstm.apply(input) as tf.SymbolicTensor, 1));
    expect(() => attach(model, { layers: [lstm.name] })).toThrow(expect.objectContaining({ code: 'unsupported_layer' }));
  });
});
