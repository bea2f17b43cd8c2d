// The conv kind (Conv2D, Conv1D, DepthwiseConv2D) against brute force in several geometries, and the conv layers it leaves out.
import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { convPatches, type ConvGeometry } from '../packages/inrun/src/layers/conv.js';
import { oneHot, randn, type Case } from './cases.js';
import { expectClose, losses } from './helpers.js';
import { describeEveryMethod } from './kind-checks.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const N = 5;
const CLASSES = 3;

/** Seeded kernel and bias initializers, so every `make()` builds the same weights. */
function seeded(seed: number) {
  return {
    kernelInitializer: tf.initializers.glorotNormal({ seed }),
    biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: seed + 100 }),
  };
}

/** Compiles `model` and pairs it with a batch of `N` rows and two targets of inputs shaped `shape`. */
function classifier(model: tf.LayersModel, shape: readonly number[]): Case {
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return {
    model,
    loss: losses.categorical,
    x: randn([N, ...shape], 1),
    y: oneHot(N, CLASSES, 2),
    targets: {
      val: { xs: randn([3, ...shape], 3), ys: oneHot(3, CLASSES, 4) },
      probe: { xs: randn([4, ...shape], 5), ys: oneHot(4, CLASSES, 6) },
    },
  };
}

function head(seed: number): tf.layers.Layer[] {
  return [tf.layers.flatten(), tf.layers.dense({ units: CLASSES, activation: 'softmax', ...seeded(seed) })];
}

/** Conv2D layers on 6x6x2 images, then flatten and a softmax Dense. */
function images(convs: readonly Parameters<typeof tf.layers.conv2d>[0][]): Case {
  const layers = convs.map((args, i) => tf.layers.conv2d({ ...seeded(10 + i), ...args, ...(i === 0 ? { inputShape: [6, 6, 2] } : {}) }));
  return classifier(tf.sequential({ layers: [...layers, ...head(30)] }), [6, 6, 2]);
}

describe('conv patches', () => {
  // Forward only, so dilation is checked too (tf.js has no gradient for dilated convolutions).
  const geometries: [number[], ConvGeometry][] = [
    [[7, 6, 2], { kernel: [3, 2], strides: [1, 1], dilation: [1, 1], padding: 'valid' }],
    [[7, 6, 2], { kernel: [3, 2], strides: [1, 1], dilation: [1, 1], padding: 'same' }],
    [[7, 6, 2], { kernel: [2, 3], strides: [2, 3], dilation: [1, 1], padding: 'same' }],
    [[7, 6, 2], { kernel: [2, 3], strides: [2, 3], dilation: [1, 1], padding: 'valid' }],
    [[7, 6, 2], { kernel: [3, 2], strides: [1, 1], dilation: [2, 3], padding: 'same' }],
    [[7, 6, 2], { kernel: [3, 2], strides: [1, 1], dilation: [2, 3], padding: 'valid' }],
    [[5, 5, 3], { kernel: [1, 1], strides: [2, 2], dilation: [1, 1], padding: 'valid' }],
    [[1, 9, 2], { kernel: [1, 4], strides: [1, 2], dilation: [1, 1], padding: 'same' }],
  ];
  for (const [shape, g] of geometries) {
    it(`times the flattened kernel equal tf.conv2d: input ${shape.join('x')}, ${JSON.stringify(g)}`, () => {
      const [x, kernel] = [randn([2, ...shape], 1) as tf.Tensor4D, randn([...g.kernel, shape[2]!, 3], 2) as tf.Tensor4D];
      const [got, want] = tf.tidy(() => {
        const p = convPatches(x, g);
        const conv = tf.conv2d(x, kernel, [...g.strides], g.padding, 'NHWC', [...g.dilation]);
        expect(p.shape[1]).toBe(conv.shape[1] * conv.shape[2]);
        return [tf.matMul(tf.reshape(p, [-1, p.shape[2]]), tf.reshape(kernel, [-1, 3])).dataSync(), conv.dataSync()];
      });
      expectClose(got, want, 1e-5);
    });
  }
});

describeEveryMethod('Conv2D 3x3 valid, stride 1, bias, relu (fused)', () => images([{ filters: 3, kernelSize: 3, activation: 'relu' }]), 'conv');

describeEveryMethod(
  "Conv2D 3x2 'same', stride 2, no bias, tanh (unfused; padding 0 before, 1 after)",
  () => images([{ filters: 3, kernelSize: [3, 2], strides: 2, padding: 'same', useBias: false, activation: 'tanh' }]),
  'conv',
);

describeEveryMethod(
  "Conv2D 2x2 'same' (padding 0 before, 1 after), elu (fused)",
  () => images([{ filters: 3, kernelSize: 2, padding: 'same', activation: 'elu' }]),
  'conv',
);

describeEveryMethod(
  "Conv1D 'same' stride 2 (relu), then 'valid' 3 wide (sigmoid), pooled over time",
  () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv1d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [8, 2], ...seeded(1) }),
        tf.layers.conv1d({ filters: 4, kernelSize: 3, activation: 'sigmoid', ...seeded(2) }),
        tf.layers.globalAveragePooling1d(),
        tf.layers.dense({ units: CLASSES, activation: 'softmax', ...seeded(3) }),
      ],
    });
    return classifier(model, [8, 2]);
  },
  'conv',
);

describeEveryMethod(
  'Conv2D inside a nested model (a tf.sequential used as a layer)',
  () => {
    const inner = tf.sequential({ layers: [tf.layers.conv2d({ filters: 3, kernelSize: 2, strides: 2, activation: 'relu', inputShape: [6, 6, 2], ...seeded(4) })] });
    const input = tf.input({ shape: [6, 6, 2] });
    let h = inner.apply(input) as tf.SymbolicTensor;
    for (const layer of head(5)) h = layer.apply(h) as tf.SymbolicTensor;
    return classifier(tf.model({ inputs: input, outputs: h }), [6, 6, 2]);
  },
  'conv',
);

describeEveryMethod(
  "two Conv2D stacked ('same' linear, then 'valid' stride 2 relu)",
  () =>
    images([
      { filters: 3, kernelSize: 3, padding: 'same' },
      { filters: 3, kernelSize: 3, strides: 2, activation: 'relu' },
    ]),
  'conv',
);

describeEveryMethod(
  'one Conv2D called twice per pass (on the input, then on its own output: 16 then 4 positions)',
  () => {
    const shared = tf.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'tanh', ...seeded(6) });
    const input = tf.input({ shape: [6, 6, 2] });
    let h = shared.apply(shared.apply(input)) as tf.SymbolicTensor;
    for (const layer of head(7)) h = layer.apply(h) as tf.SymbolicTensor;
    return classifier(tf.model({ inputs: input, outputs: h }), [6, 6, 2]);
  },
  'conv',
);

describeEveryMethod(
  "DepthwiseConv2D 3x3 'same' stride 2, depth multiplier 2, bias, relu, then a Conv2D",
  () => {
    const depthwise = tf.layers.depthwiseConv2d({
      kernelSize: 3,
      depthMultiplier: 2,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      inputShape: [6, 6, 2],
      depthwiseInitializer: tf.initializers.glorotNormal({ seed: 8 }),
      biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 9 }),
    });
    const pointwise = tf.layers.conv2d({ filters: 3, kernelSize: 1, ...seeded(10) });
    return classifier(tf.sequential({ layers: [depthwise, pointwise, ...head(11)] }), [6, 6, 2]);
  },
  'conv',
);

describeEveryMethod(
  'DepthwiseConv2D 2x3 valid, no bias, tanh, called twice per pass (dilationRate set: tf.js ignores it)',
  () => {
    const depthwise = tf.layers.depthwiseConv2d({
      kernelSize: [2, 3],
      useBias: false,
      dilationRate: 2,
      activation: 'tanh',
      depthwiseInitializer: tf.initializers.glorotNormal({ seed: 12 }),
    });
    const input = tf.input({ shape: [6, 6, 2] });
    let h = depthwise.apply(depthwise.apply(input)) as tf.SymbolicTensor;
    for (const layer of head(13)) h = layer.apply(h) as tf.SymbolicTensor;
    return classifier(tf.model({ inputs: input, outputs: h }), [6, 6, 2]);
  },
  'conv',
);

describe('conv layers the conv kind leaves out', () => {
  async function expectSkipped(model: tf.LayersModel, shape: number[], className: string, reason: RegExp): Promise<void> {
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
    const run = attach(model);
    const { skipped, covered, coveredParams, trainableParams } = run.info.layers;
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ className });
    expect(skipped[0]!.reason).toMatch(reason);
    expect(covered.map((l) => l.kind)).toEqual(['dense']);
    expect(coveredParams).toBeLessThan(trainableParams);
    // The rest still trains and is scored.
    await run.fit(randn([4, ...shape], 7), oneHot(4, CLASSES, 8), { verbose: 0, batchSize: 4 });
    const scores = await run.close();
    expect(scores.columns['tracin_self']!.every((v) => v > 0)).toBe(true);
  }

  it("channelsFirst: skipped with its reason (tf.js runs it on cpu by transposing)", async () => {
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3, dataFormat: 'channelsFirst', inputShape: [2, 6, 6], ...seeded(1) });
    await expectSkipped(tf.sequential({ layers: [conv, ...head(2)] }), [2, 6, 6], 'Conv2D', /channelsFirst/);
  });

  it('SeparableConv2D: skipped with its reason', async () => {
    const separable = tf.layers.separableConv2d({ filters: 2, kernelSize: 3, inputShape: [6, 6, 2] });
    await expectSkipped(tf.sequential({ layers: [separable, ...head(2)] }), [6, 6, 2], 'SeparableConv2D', /depthwise then a pointwise/);
  });

  it('dilation above 1: skipped, since tf.js has no gradient for dilated convolutions', () => {
    const dilated = tf.sequential({ layers: [tf.layers.conv2d({ filters: 2, kernelSize: 2, dilationRate: 2, inputShape: [6, 6, 2] }), ...head(2)] });
    const x = randn([1, 6, 6, 2], 3);
    expect(() => tf.grad((t: tf.Tensor) => tf.sum(dilated.apply(t) as tf.Tensor))(x)).toThrow(/dilation rates greater than 1/);
    dilated.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
    const run = attach(dilated);
    expect(run.info.layers.skipped).toEqual([{ name: dilated.layers[0]!.name, className: 'Conv2D', reason: expect.stringMatching(/dilation/) as string }]);
    return run.close();
  });

  it("causal padding: tf.js' convolutions throw for it, and the kind says so", () => {
    const causal = tf.sequential({ layers: [tf.layers.conv1d({ filters: 2, kernelSize: 2, padding: 'causal', inputShape: [5, 1] })] });
    expect(() => causal.predict(tf.zeros([1, 5, 1]))).toThrow(/CAUSAL/);
    causal.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    expect(() => attach(causal)).toThrow(/padding 'causal'/);
  });
});
