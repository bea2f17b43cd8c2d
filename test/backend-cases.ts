// One small seeded model per layer kind for the GPU backend suite: tf.js only (no vitest, no Node built-ins), so a page can run them.
import * as tf from '@tensorflow/tfjs';
import type { Method } from 'inrun';

/** Per-example loss of a case's model: one value per row. */
export type RowLoss = (ys: tf.Tensor, predictions: tf.Tensor) => tf.Tensor1D;

/** A model of one layer kind with its data and targets; `make()` is deterministic on every backend. */
export interface BackendCase {
  readonly model: tf.LayersModel;
  readonly loss: RowLoss;
  readonly x: tf.Tensor;
  readonly y: tf.Tensor;
  readonly targets: Record<string, { xs: tf.Tensor; ys: tf.Tensor }>;
  /** Layers tracin_we covers (embedding layers); empty when the case has none. */
  readonly embeddingLayers: readonly string[];
}

/** A named case: the layer kind inrun must report covered and the methods to check. */
export interface BackendCaseSpec {
  readonly name: string;
  readonly kind: string;
  /** The target pass `targetPass: 'auto'` (the default) must resolve to for this model on `backend`. */
  readonly pass: (backend: string) => 'fused' | 'separate';
  readonly methods: readonly Method[];
  readonly make: () => BackendCase;
}

const categorical: RowLoss = (ys, p) => tf.metrics.categoricalCrossentropy(ys, p) as tf.Tensor1D;
const binary: RowLoss = (ys, p) => tf.metrics.binaryCrossentropy(ys, p) as tf.Tensor1D;

/** A small LCG: the same integers on every backend and in every JS engine. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Standard normal values from the LCG (Box-Muller), so inputs never depend on a backend's random kernels. */
function randn(shape: number[], seed: number): tf.Tensor {
  const r = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
  return tf.tensor(values, shape, 'float32');
}

function oneHot(n: number, classes: number, seed: number): tf.Tensor {
  const r = lcg(seed);
  const rows = Array.from({ length: n }, () => {
    const k = Math.floor(r() * classes);
    return Array.from({ length: classes }, (_, j) => (j === k ? 1 : 0));
  });
  return tf.tensor2d(rows, [n, classes], 'float32');
}

function compiled(model: tf.LayersModel, loss: string): tf.LayersModel {
  model.compile({ optimizer: tf.train.sgd(0.05), loss });
  return model;
}

const glorot = (seed: number) => tf.initializers.glorotNormal({ seed });

function dense(): BackendCase {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 6, activation: 'relu', inputShape: [5], kernelInitializer: glorot(1), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 2 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: glorot(3) }),
    ],
  });
  return {
    model: compiled(model, 'categoricalCrossentropy'),
    loss: categorical,
    x: randn([6, 5], 4),
    y: oneHot(6, 3, 5),
    targets: { val: { xs: randn([3, 5], 6), ys: oneHot(3, 3, 7) }, probe: { xs: randn([2, 5], 8), ys: oneHot(2, 3, 9) } },
    embeddingLayers: [],
  };
}

function conv(): BackendCase {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', inputShape: [5, 5, 2], kernelInitializer: glorot(11), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 12 }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: glorot(13) }),
    ],
  });
  return {
    model: compiled(model, 'categoricalCrossentropy'),
    loss: categorical,
    x: randn([4, 5, 5, 2], 14),
    y: oneHot(4, 3, 15),
    targets: { val: { xs: randn([2, 5, 5, 2], 16), ys: oneHot(2, 3, 17) } },
    embeddingLayers: [],
  };
}

function embedding(): BackendCase {
  const r = lcg(21);
  const ids = (n: number) => tf.tensor2d(Array.from({ length: n * 5 }, () => (Math.floor(r() * 5) * (r() < 0.3 ? 1 : 2)) % 9), [n, 5], 'int32');
  const labels = (n: number) => tf.tensor2d(Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)), [n, 1], 'float32');
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: 9, outputDim: 4, inputLength: 5, embeddingsInitializer: tf.initializers.randomNormal({ seed: 22 }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: glorot(23) }),
    ],
  });
  return {
    model: compiled(model, 'binaryCrossentropy'),
    loss: binary,
    x: ids(6),
    y: labels(6),
    targets: { val: { xs: ids(3), ys: labels(3) } },
    embeddingLayers: [model.layers[0]!.name],
  };
}

/** Embedding, Conv1D and Dense in one chain: every kind the fused target pass takes (docs/hooks.md). */
function fusedChain(): BackendCase {
  const r = lcg(51);
  const ids = (n: number) => tf.tensor2d(Array.from({ length: n * 6 }, () => Math.floor(r() * 9)), [n, 6], 'int32');
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: 9, outputDim: 4, inputLength: 6, embeddingsInitializer: tf.initializers.randomNormal({ seed: 52 }) }),
      tf.layers.conv1d({ filters: 3, kernelSize: 2, activation: 'relu', kernelInitializer: glorot(53), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 54 }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: glorot(55) }),
    ],
  });
  return {
    model: compiled(model, 'categoricalCrossentropy'),
    loss: categorical,
    x: ids(5),
    y: oneHot(5, 3, 56),
    targets: { val: { xs: ids(3), ys: oneHot(3, 3, 57) }, probe: { xs: ids(2), ys: oneHot(2, 3, 58) } },
    embeddingLayers: [model.layers[0]!.name],
  };
}

function layerNorm(): BackendCase {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 5, activation: 'tanh', inputShape: [4], kernelInitializer: glorot(31) }),
      tf.layers.layerNormalization({ epsilon: 0.05, gammaInitializer: tf.initializers.randomNormal({ mean: 1, stddev: 0.2, seed: 32 }), betaInitializer: tf.initializers.randomNormal({ stddev: 0.2, seed: 33 }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: glorot(34) }),
    ],
  });
  return {
    model: compiled(model, 'categoricalCrossentropy'),
    loss: categorical,
    x: randn([5, 4], 35),
    y: oneHot(5, 3, 36),
    targets: { val: { xs: randn([3, 4], 37), ys: oneHot(3, 3, 38) } },
    embeddingLayers: [],
  };
}

function recurrent(): BackendCase {
  const model = tf.sequential({
    layers: [
      tf.layers.simpleRNN({
        units: 4,
        inputShape: [3, 3],
        kernelInitializer: glorot(41),
        recurrentInitializer: glorot(42),
        biasInitializer: tf.initializers.randomNormal({ stddev: 0.5, seed: 43 }),
      }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: glorot(44) }),
    ],
  });
  return {
    model: compiled(model, 'categoricalCrossentropy'),
    loss: categorical,
    x: randn([4, 3, 3], 45),
    y: oneHot(4, 3, 46),
    targets: { val: { xs: randn([2, 3, 3], 47), ys: oneHot(2, 3, 48) } },
    embeddingLayers: [],
  };
}

const fused = () => 'fused' as const;
const separate = () => 'separate' as const;
// Conv keeps the separate pass on webgpu, Embedding on webgpu and webgl (docs/hooks.md): webgpu's conv shaders
// round rows differently with the batch size, and both concatenate small host-resident ids on the CPU.
const fusedOffWebgpu = (backend: string) => (backend === 'webgpu' ? 'separate' : 'fused');
const fusedOffGpu = (backend: string) => (backend === 'webgpu' || backend === 'webgl' ? 'separate' : 'fused');

/** Every layer kind inrun covers, smallest models that exercise it (a software GPU is slow). */
export const BACKEND_CASES: readonly BackendCaseSpec[] = [
  { name: 'dense', kind: 'dense', pass: fused, methods: ['shapley1', 'tracin_self'], make: dense },
  { name: 'conv', kind: 'conv', pass: fusedOffWebgpu, methods: ['shapley1', 'tracin_self'], make: conv },
  // tracin_we needs the separate pass (first-order shapley1 and tracin_self only fuse).
  { name: 'embedding', kind: 'embedding', pass: separate, methods: ['shapley1', 'tracin_self', 'tracin_we'], make: embedding },
  { name: 'fused-chain', kind: 'conv', pass: fusedOffGpu, methods: ['shapley1', 'tracin_self'], make: fusedChain },
  { name: 'layer-norm', kind: 'layer-norm', pass: separate, methods: ['shapley1', 'tracin_self'], make: layerNorm },
  { name: 'recurrent', kind: 'recurrent', pass: separate, methods: ['shapley1', 'tracin_self'], make: recurrent },
];
