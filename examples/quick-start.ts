/**
 * Quick start: attach inrun to a model you already train, train as before, read the scores.
 *   npx tsx examples/quick-start.ts
 */
import * as tf from '@tensorflow/tfjs';
import { attach } from 'inrun';

// Toy data: the label is the sign of the first feature; rows 0-9 have their label flipped.
const n = 200;
const x = tf.randomNormal([n, 4], 0, 1, 'float32', 1);
const clean = tf.cast(tf.greater(tf.slice(x, [0, 0], [n, 1]), 0), 'float32');
const flip = tf.tensor2d(Array.from({ length: n }, (_, i) => (i < 10 ? 1 : 0)), [n, 1]);
const y = tf.abs(tf.sub(clean, flip));
const val = { xs: tf.randomNormal([32, 4], 0, 1, 'float32', 2) };
const valY = tf.cast(tf.greater(tf.slice(val.xs, [0, 0], [32, 1]), 0), 'float32');

const model = tf.sequential({ layers: [tf.layers.dense({ units: 8, activation: 'relu', inputShape: [4] }), tf.layers.dense({ units: 1, activation: 'sigmoid' })] });
model.compile({ optimizer: tf.train.sgd(0.5), loss: 'binaryCrossentropy' });

const run = attach(model, { targets: { val: { xs: val.xs, ys: valY } } });
await run.fit(x, y, { ids: Array.from({ length: n }, (_, i) => `row-${i}`), epochs: 20, batchSize: 20, verbose: 0 });
const scores = await run.close();

const self = scores.columns['tracin_self']!;
const suspects = scores.ids.map((id, i) => ({ id, self: self[i]!, value: scores.columns['shapley1:val']![i]! })).sort((a, b) => b.self - a.self);
console.log('Highest self-influence (rows 0-9 were flipped):');
for (const s of suspects.slice(0, 10)) console.log(`  ${String(s.id).padEnd(8)} self ${s.self.toFixed(4)}  value toward val ${s.value.toFixed(4)}`);
