/**
 * A hand-written model (no tf.layers) trained by a custom optimizer.minimize loop, with inrun's
 * explicit ops recording what attribution needs.
 *   npx tsx examples/custom-loop.ts
 */
import * as tf from '@tensorflow/tfjs';
import { attach, ops } from 'inrun';

const w1 = tf.variable(tf.randomNormal([4, 16], 0, 0.5, 'float32', 1));
const b1 = tf.variable(tf.zeros([16]));
const w2 = tf.variable(tf.randomNormal([16, 3], 0, 0.5, 'float32', 2));
const predict = (x: tf.Tensor | tf.Tensor[]) => tf.softmax(ops.dense(tf.relu(ops.dense(x as tf.Tensor, w1, b1, { name: 'hidden' })), w2, null, { name: 'out' }));
const loss = (y: tf.Tensor | tf.Tensor[], p: tf.Tensor | tf.Tensor[]) => tf.metrics.categoricalCrossentropy(y as tf.Tensor, p as tf.Tensor);
const optimizer = tf.train.adam(0.05);

// Three blobs; examples 0-14 carry a wrong label.
const n = 300;
const labels = Array.from({ length: n }, (_, i) => i % 3);
const x = tf.add(tf.randomNormal([n, 4], 0, 0.6, 'float32', 3), tf.oneHot(tf.tensor1d(labels, 'int32'), 4).mul(2));
const y = tf.oneHot(tf.tensor1d(labels.map((l, i) => (i < 15 ? (l + 1) % 3 : l)), 'int32'), 3);
const val = { xs: tf.slice(x, 270, 30), ys: tf.slice(y, 270, 30) };

const run = attach({ predict, loss, optimizer }, { targets: { val } });
for (let epoch = 0; epoch < 10; epoch++) {
  for (let start = 0; start < 270; start += 30) {
    const xb = tf.slice(x, start, 30);
    const yb = tf.slice(y, start, 30);
    const ids = Array.from({ length: 30 }, (_, i) => start + i);
    // The ids of the rows this step trains on, in row order; fn runs exactly one optimizer step.
    await run.step(ids, () => optimizer.minimize(() => tf.mean(loss(yb, predict(xb))) as tf.Scalar));
    tf.dispose([xb, yb]);
  }
}
const scores = await run.close();
console.log('covered layers:', run.info.layers.covered.map((l) => `${l.name} (${l.kind}, ${l.params} params, ${l.path})`).join(', '));
const order = scores.ids.map((_, i) => i).sort((a, b) => scores.columns['tracin_self']![b]! - scores.columns['tracin_self']![a]!);
console.log('highest self-influence ids (0-14 were mislabelled):', order.slice(0, 15).map((i) => scores.ids[i]).join(' '));
