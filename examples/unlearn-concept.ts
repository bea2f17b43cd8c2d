/**
 * One request, two uses: a removal request for a concept (the digit 7) is first an attribution target
 * (which training digits taught the model this concept?), then the input of `unlearn` (remove it,
 * keep the other digits). Real MNIST digits, a small dense net, about half a minute on wasm.
 *
 *   npx tsx examples/unlearn-concept.ts
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, unlearn, type UnlearnRequest } from 'inrun';
import { digitsData } from './digits-cnn.js';

await tf.setBackend('wasm');
const CONCEPT = 7;
const train = digitsData({ rows: 1000 });
const probe = digitsData({ rows: 300, offset: 100 }); // digits no model trains on
const rowsWhere = (data: typeof probe, keep: (label: number) => boolean) => {
  const idx = tf.tensor1d([...data.labels.keys()].filter((i) => keep(data.labels[i]!)), 'int32');
  const rows = { xs: tf.gather(data.xs, idx), ys: tf.gather(data.ys, idx) };
  idx.dispose();
  return rows;
};

// The request: exemplars of the concept to forget, and rows of what to keep.
const request: UnlearnRequest = {
  forget: rowsWhere(probe, (l) => l === CONCEPT),
  retain: rowsWhere(probe, (l) => l !== CONCEPT),
  forgetLabel: CONCEPT,
};

const model = tf.sequential({
  layers: [
    tf.layers.flatten({ inputShape: [28, 28, 1] }),
    tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ],
});
model.compile({ optimizer: tf.train.adam(0.003), loss: 'categoricalCrossentropy' });

// Use 1: trace. The request itself is the target (its forget rows): which training digits lowered their loss?
const ids = [...train.labels.keys()].map((i) => `digit-${i}`);
const labelOf = new Map(ids.map((id, i) => [id, train.labels[i]!]));
const run = attach(model, { targets: { concept: request }, methods: ['shapley1'], seed: 1 });
await run.fit(train.xs, train.ys, { ids, epochs: 4, batchSize: 32, verbose: 0 });
const scores = await run.close();
const value = scores.columns['shapley1:concept']!;
const top = [...value.keys()].sort((a, b) => value[b]! - value[a]!).slice(0, 50);
const sevens = top.filter((i) => labelOf.get(String(scores.ids[i])) === CONCEPT).length;
console.log(`the 50 training digits that taught the concept most: ${sevens} are ${CONCEPT}s (10% of the training set is)`);

// Use 2: remove. The same request goes to unlearn with its defaults (rfa-lora, calibrated strength, merged back into the weights).
const accuracy = (m: tf.LayersModel, rows: { xs: tf.Tensor; ys: tf.Tensor }) =>
  tf.tidy(() => tf.mean(tf.metrics.categoricalAccuracy(rows.ys, m.predict(rows.xs) as tf.Tensor)).dataSync()[0]!);
const result = await unlearn(model, request);
const { metrics } = result;
console.log(`accuracy on ${CONCEPT}s: ${accuracy(model, request.forget).toFixed(2)} -> ${metrics.forgetAccuracy.toFixed(2)}`);
const trainSevens = rowsWhere(train, (l) => l === CONCEPT);
console.log(`accuracy on the training set's ${CONCEPT}s (not in the request): ${accuracy(model, trainSevens).toFixed(2)} -> ${accuracy(result.model, trainSevens).toFixed(2)}`);
console.log(`accuracy on the other digits: ${accuracy(model, request.retain!).toFixed(2)} -> ${metrics.retainAccuracy!.toFixed(2)}`);
console.log(`calibration: stopped ${metrics.stopped.reason} after epoch ${metrics.stopped.epoch}`);
console.log(`${metrics.trainableParams} adapter parameters (${((metrics.trainableParams / metrics.params) * 100).toFixed(1)}% of the model), ${metrics.seconds.toFixed(2)} s`);
