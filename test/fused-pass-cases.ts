// The fused pass's checks per layer kind, shared by the cpu and wasm files: bit-identical update, separate-pass scores, brute force.
import * as tf from '@tensorflow/tfjs';
import { attach, type AttachOptions, type Method, type StepRecord } from 'inrun';
import { expect, it } from 'vitest';
import { checkOneStep, embeddingModel, mlp, oneHot, randn, type Case } from './cases.js';
import { expectClose, losses, rng, weightsOf } from './helpers.js';

/** Seeded kernel and bias initializers, so every build has the same weights. */
function seeded(seed: number) {
  return { kernelInitializer: tf.initializers.glorotNormal({ seed }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: seed + 100 }) };
}

/** A compiled classifier on `shape` rows: a batch of 6 and two targets of one shape (one fused group). */
function classifier(layers: tf.layers.Layer[], shape: readonly number[], classes = 3): Case {
  const model = tf.sequential({ layers });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return {
    model,
    loss: losses.categorical,
    x: randn([6, ...shape], 1),
    y: oneHot(6, classes, 2),
    targets: { val: { xs: randn([3, ...shape], 3), ys: oneHot(3, classes, 4) }, probe: { xs: randn([2, ...shape], 5), ys: oneHot(2, classes, 6) } },
  };
}

/** Embedding (ids repeated inside rows and shared with the targets), pooled over positions, then Dense: the text model's shape. */
function pooledText(): Case {
  const r = rng(7);
  const ids = (n: number) => tf.tensor2d(Array.from({ length: n * 5 }, () => Math.floor(r() * 6)), [n, 5], 'int32');
  const labels = (n: number) => tf.tensor2d(Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)), [n, 1]);
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: 8, outputDim: 4, inputLength: 5, embeddingsInitializer: tf.initializers.randomNormal({ seed: 3 }) }),
      tf.layers.globalAveragePooling1d(),
      tf.layers.dense({ units: 1, activation: 'sigmoid', ...seeded(4) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'binaryCrossentropy' });
  return { model, loss: losses.binary, x: ids(6), y: labels(6), targets: { val: { xs: ids(3), ys: labels(3) }, probe: { xs: ids(2), ys: labels(2) } } };
}

/** The models each fusing kind is checked on (every kind that fuses, and the weight-free layers between). */
export const FUSED_CASES: readonly (readonly [string, () => Case])[] = [
  ['Dense MLP (relu, elu, tanh, softmax)', () => mlp(['relu', 'elu', 'tanh', 'softmax'], true)],
  ['Dense MLP without bias (relu, linear, softmax)', () => mlp(['relu', 'linear', 'softmax'], false)],
  [
    'Conv2D relu - MaxPooling2D - Conv2D same stride 2 tanh - Flatten - Dense',
    () =>
      classifier(
        [
          tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', inputShape: [7, 7, 2], ...seeded(1) }),
          tf.layers.maxPooling2d({ poolSize: 2, strides: 1 }),
          tf.layers.conv2d({ filters: 4, kernelSize: 2, strides: 2, padding: 'same', activation: 'tanh', useBias: false, ...seeded(2) }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 3, activation: 'softmax', ...seeded(3) }),
        ],
        [7, 7, 2],
      ),
  ],
  [
    'Conv2D linear - Activation relu - Conv2D elu - Flatten - Dense',
    () =>
      classifier(
        [
          tf.layers.conv2d({ filters: 2, kernelSize: 2, inputShape: [5, 5, 1], ...seeded(5) }),
          tf.layers.activation({ activation: 'relu' }),
          tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'elu', ...seeded(6) }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 3, activation: 'softmax', ...seeded(7) }),
        ],
        [5, 5, 1],
      ),
  ],
  [
    'Conv1D same stride 2 relu - Conv1D sigmoid - GlobalAveragePooling1D - Dense',
    () =>
      classifier(
        [
          tf.layers.conv1d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [8, 2], ...seeded(8) }),
          tf.layers.conv1d({ filters: 4, kernelSize: 2, activation: 'sigmoid', ...seeded(9) }),
          tf.layers.globalAveragePooling1d(),
          tf.layers.dense({ units: 3, activation: 'softmax', ...seeded(10) }),
        ],
        [8, 2],
      ),
  ],
  ['Embedding - GlobalAveragePooling1D - Dense sigmoid', pooledText],
  ['Embedding - Flatten - Dense sigmoid', embeddingModel],
];

const METHODS: Method[] = ['shapley1', 'tracin_self'];

/** Trains a fresh `make()` for `steps` steps, attached with `options` (or not at all). */
async function train(make: () => Case, optimizer: () => tf.Optimizer, options: AttachOptions | null, steps = 3) {
  const c = make();
  c.model.compile({ optimizer: optimizer(), loss: c.model.loss });
  const ids = Array.from({ length: c.x.shape[0]! }, (_, i) => i);
  const run = options === null ? null : attach(c.model, { targets: c.targets, ...options });
  const records: StepRecord[] = [];
  run?.records$.subscribe((r) => records.push(r));
  for (let step = 0; step < steps; step++) {
    if (run === null) await c.model.trainOnBatch(c.x, c.y);
    else await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
  }
  const pass = run?.info.targetPass;
  await run?.close();
  return { pass, records, weights: weightsOf(c.model) };
}

/** The fused pass's three checks for every case (those `only` keeps), on the backend the calling file set. */
export function describeFusedKinds(only: (name: string) => boolean = () => true): void {
  for (const [name, make] of FUSED_CASES.filter(([n]) => only(n))) {
    for (const [optName, optimizer] of [
      ['SGD', () => tf.train.sgd(0.05)],
      ['Adam', () => tf.train.adam(0.01)],
    ] as const) {
      it(`${name}, ${optName}: the fused update is bit-identical to an uninstrumented one; scores and target losses equal the separate pass's within 1e-6`, async () => {
        const plain = await train(make, optimizer, null);
        const fused = await train(make, optimizer, { methods: METHODS, targetPass: 'fused' });
        const separate = await train(make, optimizer, { methods: METHODS, targetPass: 'separate' });
        expect(fused.pass).toBe('fused');
        expect(fused.weights).toEqual(plain.weights);
        expect(fused.records).toHaveLength(3);
        fused.records.forEach((r, i) => {
          const other = separate.records[i]!;
          for (const column of ['shapley1:val', 'shapley1:probe', 'tracin_self']) expectClose(r.columns[column]!, other.columns[column]!, 1e-6);
          expectClose(Object.values(r.targetLosses), Object.values(other.targetLosses), 1e-6);
        });
      });
    }
    it(`${name}: the fused pass's scores equal brute force (one backward per example) within 1e-4`, async () => {
      const c = make();
      const probe = attach(c.model, { targets: c.targets, methods: METHODS, targetPass: 'fused' });
      expect(probe.info.targetPass).toBe('fused');
      await probe.close();
      await checkOneStep(c, { methods: METHODS, targetPass: 'fused' });
    });
  }

  it("Dropout (rate > 0) keeps the separate pass under 'auto' (it draws its masks over training and target rows together) and refuses 'fused'; at rate 0 it fuses", async () => {
    const withDropout = () =>
      classifier([tf.layers.dense({ units: 6, activation: 'relu', inputShape: [5], ...seeded(1) }), tf.layers.dropout({ rate: 0.5, seed: 1 }), tf.layers.dense({ units: 3, activation: 'softmax', ...seeded(2) })], [5]);
    const c = withDropout();
    const run = attach(c.model, { targets: c.targets, methods: METHODS });
    expect(run.info.targetPass).toBe('separate');
    await run.close();
    expect(() => attach(c.model, { targets: c.targets, methods: METHODS, targetPass: 'fused' })).toThrow(/Dropout draws its noise/);
    const noDrop = () => classifier([tf.layers.dense({ units: 6, activation: 'relu', inputShape: [5], ...seeded(1) }), tf.layers.dropout({ rate: 0 }), tf.layers.dense({ units: 3, activation: 'softmax', ...seeded(2) })], [5]);
    const d = noDrop();
    const fused = attach(d.model, { targets: d.targets, methods: METHODS });
    expect(fused.info.targetPass).toBe('fused');
    await fused.close();
  });
}
