/**
 * Reference model 1: an MLP on synthetic tabular data with a known signal. Twenty features, of which
 * the first six decide the class through a fixed nonlinear rule; the rest are noise. Everything is
 * seeded, so the data and the model are the same in every run. Shared by the benchmarks and the evaluations.
 */
import * as tf from '@tensorflow/tfjs';

export interface TabularOptions {
  /** Rows. @defaultValue 4096 */
  readonly rows?: number;
  /** @defaultValue 20 */
  readonly features?: number;
  /** Share of labels flipped on purpose. @defaultValue 0 */
  readonly flipRate?: number;
  /** @defaultValue 1 */
  readonly seed?: number;
}

export interface TabularData {
  /** `[rows, features]`. */
  readonly xs: tf.Tensor2D;
  /** One-hot `[rows, 2]` (after flipping). */
  readonly ys: tf.Tensor2D;
  readonly labels: Uint8Array;
  readonly flipped: Uint8Array;
}

/** Seeded standard normal numbers (Box-Muller on a xorshift-style generator). */
function normals(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  return out;
}

export function tabularData(options: TabularOptions = {}): TabularData {
  const { rows = 4096, features = 20, flipRate = 0, seed = 1 } = options;
  const x = normals(rows * features, seed);
  const coin = normals(rows, seed + 1);
  const labels = new Uint8Array(rows);
  const flipped = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const f = (j: number) => x[r * features + j]!;
    // The known signal: a linear part, an interaction and a threshold.
    const score = 1.2 * f(0) - 0.8 * f(1) + f(2) * f(3) + (f(4) > 0.5 ? 1 : -0.3) - 0.5 * Math.abs(f(5));
    const clean = score > 0 ? 1 : 0;
    // A seeded uniform from a normal (its CDF), so flips need no second generator.
    flipped[r] = 0.5 * (1 + erf(coin[r]! / Math.SQRT2)) < flipRate ? 1 : 0;
    labels[r] = flipped[r] ? 1 - clean : clean;
  }
  return {
    xs: tf.tensor2d(x, [rows, features]),
    ys: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 2).toFloat() as tf.Tensor2D),
    labels,
    flipped,
  };
}

function erf(x: number): number {
  // Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

/** MLP features -> 64 -> 64 -> 2 (relu, softmax), seeded. */
export function tabularMlp(options: { readonly features?: number; readonly learningRate?: number; readonly seed?: number } = {}): tf.Sequential {
  const { features = 20, learningRate = 0.003, seed = 1 } = options;
  const dense = (units: number, activation: 'relu' | 'softmax', i: number, inputShape?: number[]) =>
    tf.layers.dense({ units, activation, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }), ...(inputShape ? { inputShape } : {}) });
  const model = tf.sequential({ layers: [dense(64, 'relu', 0, [features]), dense(64, 'relu', 1), dense(2, 'softmax', 2)] });
  model.compile({ optimizer: tf.train.adam(learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}
