/**
 * The reference models as benchmark workloads: one training step on random data of the model's
 * shape, a target of K rows, and the naive per-example baseline.
 */
import * as tf from '@tensorflow/tfjs';
import { attach, type FunctionalModel, type Method } from 'inrun';
import { median } from './report.js';
import { digitsCnn, digitsData } from '../examples/digits-cnn.js';
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

export const cnn: Workload = {
  name: 'CNN on digits: Conv 3x3x8 - Conv 3x3x16 s2 - Dense 10',
  seqLen: null,
  build(batch, k) {
    const train = digitsData({ rows: batch });
    const target = digitsData({ rows: k, offset: 500 });
    return layersInstance(digitsCnn(), train.xs, train.ys, { xs: target.xs, ys: target.ys }, (y, p) => tf.metrics.categoricalCrossentropy(y, p));
  },
};

/** A seeded sequence classifier: LSTM(32) over `seqLen` steps of 16 features, then Dense 2. */
export const recurrent: Workload = {
  name: 'LSTM(32) on 16 features - Dense 2',
  seqLen: 32,
  build(batch, k, seqLen = 32) {
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const model = tf.sequential({
      layers: [
        tf.layers.lstm({ units: 32, inputShape: [seqLen, 16], kernelInitializer: init(1), recurrentInitializer: init(2) }),
        tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: init(3) }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.003), loss: 'categoricalCrossentropy' });
    const rows = (n: number) => ({ xs: tf.randomNormal([n, seqLen, 16]), ys: tf.oneHot(tf.randomUniform([n], 0, 2, 'int32') as tf.Tensor1D, 2) });
    const train = rows(batch);
    return layersInstance(model, train.xs, train.ys, rows(k), (y, p) => tf.metrics.categoricalCrossentropy(y, p));
  },
};

/** The tabular MLP with a LayerNormalization after each hidden layer. */
export const layerNormMlp: Workload = {
  name: 'MLP with LayerNorm 20-64-LN-64-LN-2',
  seqLen: null,
  build(batch, k) {
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 64, activation: 'relu', inputShape: [20], kernelInitializer: init(1) }),
        tf.layers.layerNormalization(),
        tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(2) }),
        tf.layers.layerNormalization(),
        tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: init(3) }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.003), loss: 'categoricalCrossentropy' });
    const rows = (n: number) => ({ xs: tf.randomNormal([n, 20]), ys: tf.oneHot(tf.randomUniform([n], 0, 2, 'int32') as tf.Tensor1D, 2) });
    const train = rows(batch);
    return layersInstance(model, train.xs, train.ys, rows(k), (y, p) => tf.metrics.categoricalCrossentropy(y, p));
  },
};

/**
 * How a benchmark trains: plain steps, first-order attribution (`shapley1` + `tracin_self`), the same
 * with the target pass every 16 steps, or second order (`shapley1` + `shapley2`); per-step records off.
 */
export type Mode = 'plain' | 'first' | 'every16' | 'second';
const METHODS: Record<Exclude<Mode, 'plain'>, Method[]> = { first: ['shapley1', 'tracin_self'], every16: ['shapley1', 'tracin_self'], second: ['shapley1', 'shapley2'] };

/** The target pass a benchmark asks for; undefined: attach's default (`'auto'`), what users run. */
export type BenchPass = 'fused' | 'separate' | undefined;

/** Runs `body` with a step function for `mode` (attached for attributed modes), closing the run after. */
export async function withMode<T>(inst: Instance, mode: Mode, body: (step: () => Promise<unknown>, pass: string | null) => Promise<T>, targetPass?: BenchPass): Promise<T> {
  if (mode === 'plain') return body(() => inst.step(), null);
  const run = attach(inst.model, {
    targets: { target: inst.target },
    methods: METHODS[mode],
    delivery: { stepRecords: false },
    ...(targetPass === undefined ? {} : { targetPass }),
    ...(mode === 'every16' ? { targetEvery: 16 } : {}),
  });
  const batch = inst.x.shape[0]!;
  let next = 0;
  try {
    return await body(() => run.step(Array.from({ length: batch }, () => next++ % (batch * 16)), () => inst.step()), run.info.targetPass);
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

/** Mean ms per step over `steps` steps. */
export async function timeSteps(steps: number, step: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  return (performance.now() - start) / steps;
}

/** Peak tf.js tensor bytes during one step, above what was allocated before it (model, data, run state). */
export async function peakBytes(inst: Instance, mode: Mode): Promise<number> {
  return withMode(inst, mode, async (step) => {
    await step();
    const before = tf.memory().numBytes;
    const info = await tf.profile(async () => {
      await step();
      return [];
    });
    return info.peakBytes - before;
  });
}

/**
 * Kernels one step of `mode` dispatches (`tf.profile`, after one warm-up step): on small models the
 * step's cost. `pass` is the target pass that ran (`targetPass: 'fused'` falls back where it cannot fuse).
 */
export async function kernelCount(inst: Instance, mode: Mode, targetPass?: BenchPass): Promise<{ kernels: number; pass: string | null }> {
  return withMode(
    inst,
    mode,
    async (step, pass) => {
      await step();
      const info = await tf.profile(async () => {
        await step();
        return [];
      });
      return { kernels: info.kernels.length, pass };
    },
    targetPass,
  );
}

/** Peak tf.js MB of one step per mode (targetEvery 16 left out: its peak is a refresh step's, the first mode's). */
export async function peakMegabytes(inst: Instance): Promise<Record<Mode, number>> {
  const peak = { plain: 0, first: 0, every16: 0, second: 0 };
  for (const mode of ['plain', 'first', 'second'] as const) peak[mode] = (await peakBytes(inst, mode)) / 2 ** 20;
  return peak;
}

/** Medians of one workload's step time per mode, and of the per-round ratios to plain. */
export interface ModeTimes {
  readonly ms: Record<Mode, number>;
  readonly ratio: { readonly first: number; readonly every16: number; readonly second: number };
  /** How second order got its Hessian-vector product on this model. */
  readonly hvp: string;
}

/**
 * Times every mode side by side: `rounds` rounds in rotated order, each mode warmed up once per round,
 * with `steps` steps per mode (or as many as fit `budgetMs` of plain training, 1 to 8), so that drift
 * on a busy machine hits all alike.
 */
export async function measureModes(inst: Instance, rounds: number, steps: number | null, budgetMs: number): Promise<ModeTimes> {
  await inst.step();
  const probe = await timeSteps(1, () => inst.step());
  const count = steps ?? Math.max(1, Math.min(8, Math.round(budgetMs / probe)));
  const modes: Mode[] = ['plain', 'first', 'every16', 'second'];
  const times: Record<Mode, number[]> = { plain: [], first: [], every16: [], second: [] };
  const ratios = { first: [] as number[], every16: [] as number[], second: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    const round: Partial<Record<Mode, number>> = {};
    for (const mode of modes.map((_, i) => modes[(i + r) % modes.length]!)) {
      round[mode] = await withMode(inst, mode, async (step) => {
        await step();
        return timeSteps(count, step);
      });
      times[mode].push(round[mode]);
    }
    ratios.first.push(round.first! / round.plain!);
    ratios.every16.push(round.every16! / round.plain!);
    ratios.second.push(round.second! / round.plain!);
  }
  const run = attach(inst.model, { targets: { target: inst.target }, methods: ['shapley2'], delivery: { stepRecords: false } });
  const hvp = run.info.hvp ?? '';
  await run.close();
  return {
    ms: { plain: median(times.plain), first: median(times.first), every16: median(times.every16), second: median(times.second) },
    ratio: { first: median(ratios.first), every16: median(ratios.every16), second: median(ratios.second) },
    hvp,
  };
}

/** One workload's row on the current backend (bench/backends.ts, in Node and in a page): step-time ratios and kernels per step, or why it failed. */
export interface BackendRow {
  readonly model: string;
  /** Batch rows and (where the model has one) sequence length it ran at. */
  readonly size?: string;
  readonly plainMs?: number;
  readonly ratio?: ModeTimes['ratio'];
  readonly kernels?: { readonly plain: number; readonly first: number };
  readonly error?: string;
}

/** How big and how long {@link backendRow} measures: B 64 and 3 rounds on real hardware, less on a software GPU. */
export interface BackendRowSize {
  /** Batch rows. @defaultValue 64 */
  readonly batch?: number;
  /** Sequence length for models that have one. @defaultValue the workload's own */
  readonly seqLen?: number;
  /** Interleaved rounds; the ratios are their medians. @defaultValue 3 */
  readonly rounds?: number;
  /** Plain-training time a mode gets per round (1 to 8 steps fit it). @defaultValue 400 */
  readonly budgetMs?: number;
}

/** Measures `w` (K 4 target rows) on the current backend; a failure is the row's `error` (first line, 160 characters). */
export async function backendRow(w: Workload, size: BackendRowSize = {}): Promise<BackendRow> {
  const batch = size.batch ?? 64;
  const seqLen = w.seqLen === null ? undefined : (size.seqLen ?? w.seqLen);
  const label = `B ${batch}${seqLen === undefined ? '' : `, T ${seqLen}`}`;
  const inst = w.build(batch, 4, seqLen);
  try {
    const { ms, ratio } = await measureModes(inst, size.rounds ?? 3, null, size.budgetMs ?? 400);
    const plain = await kernelCount(inst, 'plain');
    const first = await kernelCount(inst, 'first');
    return { model: w.name, size: label, plainMs: ms.plain, ratio, kernels: { plain: plain.kernels, first: first.kernels } };
  } catch (error) {
    return { model: w.name, size: label, error: String(error instanceof Error ? error.message : error).split('\n')[0]!.slice(0, 160) };
  } finally {
    inst.dispose();
  }
}
