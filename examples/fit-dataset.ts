/**
 * fitDataset with example ids riding in the dataset elements: { xs, ys, ids }.
 *   npx tsx examples/fit-dataset.ts
 */
import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';

const rows = Array.from({ length: 500 }, (_, i) => {
  const x = [Math.sin(i), Math.cos(i), (i % 7) / 7];
  return { xs: x, ys: [x[0]! + 0.5 * x[1]! > 0 ? 1 : 0], ids: `sample-${i}` };
});
// Shuffle however you like: the ids travel with their rows.
const dataset = tf.data.array(rows).shuffle(500, 'seed').batch(25);

const model = tf.sequential({ layers: [tf.layers.dense({ units: 8, activation: 'tanh', inputShape: [3] }), tf.layers.dense({ units: 1, activation: 'sigmoid' })] });
model.compile({ optimizer: tf.train.adam(0.02), loss: 'binaryCrossentropy' });
const val = { xs: tf.tensor2d(rows.slice(0, 40).map((r) => r.xs)), ys: tf.tensor2d(rows.slice(0, 40).map((r) => r.ys)) };

const run = attach(model, { targets: { val } });
let steps = 0;
run.records$.subscribe(() => steps++);
await run.fitDataset(dataset, { epochs: 3, verbose: 0 });
const scores = await run.close();
const value = scores.columns['shapley1:val']!;
const best = scores.ids.map((id, i) => ({ id, v: value[i]! })).sort((a, b) => b.v - a.v);
console.log(`${steps} attributed steps; most helpful:`, best.slice(0, 3), 'least:', best.slice(-3));
