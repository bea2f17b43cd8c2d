import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { dot, expectClose, layerVariables, losses, perExampleGradients, rng, targetGradient, weightsOf } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const N = 24;
const r = rng(42);
// Feature 0 of each row is its row index, so a row can be recognised wherever it lands.
const X = tf.tensor2d(Array.from({ length: N * 4 }, (_, i) => (i % 4 === 0 ? i / 4 : r() * 2 - 1)), [N, 4]);
const Y = tf.oneHot(tf.tensor1d(Array.from({ length: N }, () => Math.floor(r() * 3)), 'int32'), 3);
const VAL = { xs: tf.randomNormal([5, 4], 0, 1, 'float32', 7), ys: tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0], 'int32'), 3) };

type OptimizerName = 'sgd' | 'adam';

/** Two identical models: same architecture, same initial weights, fresh optimizers. */
function twins(optimizer: OptimizerName): [tf.LayersModel, tf.LayersModel] {
  const make = () => {
    const m = tf.sequential({
      layers: [
        tf.layers.dense({ units: 8, activation: 'relu', inputShape: [4], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }),
        tf.layers.dense({ units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
        tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }),
      ],
    });
    m.compile({ optimizer: optimizer === 'sgd' ? tf.train.sgd(0.05) : tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    return m;
  };
  const a = make();
  const b = make();
  b.setWeights(a.getWeights());
  return [a, b];
}

function expectSameWeights(a: tf.LayersModel, b: tf.LayersModel): void {
  const wa = weightsOf(a);
  const wb = weightsOf(b);
  wa.forEach((w, i) => expect(Array.from(wb[i]!)).toEqual(Array.from(w)));
}

function datasetOf(withIds: boolean): tf.data.Dataset<tf.TensorContainer> {
  const xs = X.arraySync() as number[][];
  const ys = Y.arraySync() as number[][];
  return tf.data
    .array(xs.map((x, i) => (withIds ? { xs: x, ys: ys[i]!, ids: `row${i}` } : { xs: x, ys: ys[i]! })))
    .batch(5);
}

describe('the optimizer update is bit-identical with and without inrun', () => {
  for (const optimizer of ['sgd', 'adam'] as const) {
    it(`fit (${optimizer})`, async () => {
      const [plain, attributed] = twins(optimizer);
      await plain.fit(X, Y, { epochs: 3, batchSize: 5, shuffle: false, verbose: 0 });
      const run = attach(attributed, { targets: { val: VAL } });
      await run.fit(X, Y, { epochs: 3, batchSize: 5, shuffle: false, verbose: 0 });
      expectSameWeights(plain, attributed);
      const scores = await run.close();
      expect(scores.ids).toHaveLength(N);
      expect(Array.from(scores.steps)).toEqual(new Array(N).fill(3));
    });

    it(`plain model.fit after attach (${optimizer})`, async () => {
      const [plain, attributed] = twins(optimizer);
      await plain.fit(X, Y, { epochs: 2, batchSize: 7, shuffle: false, verbose: 0 });
      const run = attach(attributed, { targets: { val: VAL } });
      const records: StepRecord[] = [];
      run.records$.subscribe((rec) => records.push(rec));
      await attributed.fit(X, Y, { epochs: 2, batchSize: 7, shuffle: false, verbose: 0 });
      expectSameWeights(plain, attributed);
      // Row indices become ids, batch by batch in order.
      expect(records.slice(0, 4).map((rec) => rec.ids)).toEqual([
        [0, 1, 2, 3, 4, 5, 6],
        [7, 8, 9, 10, 11, 12, 13],
        [14, 15, 16, 17, 18, 19, 20],
        [21, 22, 23],
      ]);
      await run.close();
    });

    it(`fitDataset (${optimizer})`, async () => {
      const [plain, attributed] = twins(optimizer);
      await plain.fitDataset(datasetOf(false), { epochs: 2, verbose: 0 });
      const run = attach(attributed, { targets: { val: VAL } });
      await run.fitDataset(datasetOf(true), { epochs: 2, verbose: 0 });
      expectSameWeights(plain, attributed);
      const scores = await run.close();
      expect(scores.ids).toEqual(Array.from({ length: N }, (_, i) => `row${i}`));
    });

    it(`custom optimizer.minimize loop (${optimizer})`, async () => {
      const [plain, attributed] = twins(optimizer);
      const step = (m: tf.LayersModel, from: number) => {
        const x = tf.slice(X, from, 6);
        const y = tf.slice(Y, from, 6);
        m.optimizer.minimize(() => tf.mean(losses.categorical(y, m.apply(x, { training: true }) as tf.Tensor)));
        tf.dispose([x, y]);
      };
      for (let e = 0; e < 2; e++) for (let from = 0; from < N; from += 6) step(plain, from);
      const run = attach(attributed, { targets: { val: VAL } });
      for (let e = 0; e < 2; e++) {
        for (let from = 0; from < N; from += 6) {
          await run.step(
            Array.from({ length: 6 }, (_, i) => from + i),
            () => step(attributed, from),
          );
        }
      }
      expectSameWeights(plain, attributed);
      await run.close();
    });
  }
});

describe('example ids', () => {
  it('map to the right rows under seeded shuffling: every step matches brute force at that step', async () => {
    const [model] = twins('sgd');
    const ids = Array.from({ length: N }, (_, i) => `ex-${i}`);
    const weightsAtStep: tf.Tensor[][] = [];
    const run = attach(model, { targets: { val: VAL }, seed: 7 });
    const records: StepRecord[] = [];
    run.records$.subscribe((rec) => records.push(rec));
    await run.fit(X, Y, {
      ids,
      epochs: 2,
      batchSize: 5,
      verbose: 0,
      callbacks: { onBatchBegin: () => void weightsAtStep.push(model.getWeights().map((w) => w.clone())) },
    });
    await run.close();
    expect(records).toHaveLength(10);
    const orderOf = (epoch: number) => records.filter((rec) => rec.epoch === epoch).flatMap((rec) => rec.ids);
    expect(orderOf(0)).not.toEqual(ids); // shuffled...
    expect(orderOf(0)).not.toEqual(orderOf(1)); // ...differently each epoch...
    expect([...orderOf(0)].sort()).toEqual([...ids].sort()); // ...and each row once per epoch.
    expect(records.map((rec) => rec.epoch)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);

    // Replay: the values of step s for ids I equal the brute force on rows I at step s's weights.
    const replay = twins('sgd')[0];
    const vars = layerVariables(replay);
    const forward = (x: tf.Tensor) => replay.apply(x) as tf.Tensor;
    for (const [s, rec] of records.entries()) {
      replay.setWeights(weightsAtStep[s]!);
      const rows = tf.tensor1d(rec.ids.map((id) => ids.indexOf(id as string)), 'int32');
      const x = tf.gather(X, rows);
      const y = tf.gather(Y, rows);
      // The row's own feature 0 is its index: the batch really held these rows.
      expect(Array.from(tf.slice(x, [0, 0], [-1, 1]).dataSync())).toEqual(rec.ids.map((id) => ids.indexOf(id as string)));
      const g = perExampleGradients(forward, losses.categorical, x, y, vars);
      const gT = targetGradient(forward, losses.categorical, VAL.xs, VAL.ys, vars);
      expectClose(rec.columns['shapley1:val']!, g.map((gi) => (0.05 / rec.ids.length) * dot(gT, gi)));
      tf.dispose([rows, x, y]);
    }
  });

  it('the same seed gives the same order; another seed another order', async () => {
    const orders: unknown[][] = [];
    for (const seed of [3, 3, 4]) {
      const [model] = twins('sgd');
      const run = attach(model, { seed });
      const records: StepRecord[] = [];
      run.records$.subscribe((rec) => records.push(rec));
      await run.fit(X, Y, { epochs: 1, batchSize: 6, verbose: 0 });
      await run.close();
      orders.push(records.flatMap((rec) => rec.ids));
      expect(run.info.seeds).toEqual([seed]);
    }
    expect(orders[1]).toEqual(orders[0]);
    expect(orders[2]).not.toEqual(orders[0]);
  });

  it('plain model.fit with shuffling is refused, naming the option', async () => {
    const [model] = twins('sgd');
    const before = weightsOf(model);
    const run = attach(model);
    const error = await model.fit(X, Y, { epochs: 1, verbose: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).field).toBe('args.shuffle');
    expect(weightsOf(model)).toEqual(before);
    await run.close();
  });

  it('trainOnBatch inside run.step maps ids; without step it fails clearly', async () => {
    const [model] = twins('sgd');
    const run = attach(model);
    const records: StepRecord[] = [];
    run.records$.subscribe((rec) => records.push(rec));
    await run.step(['a', 'b', 'c'], () => model.trainOnBatch(tf.slice(X, 0, 3), tf.slice(Y, 0, 3)));
    await run.flush();
    expect(records[0]!.ids).toEqual(['a', 'b', 'c']);
    await expect(model.trainOnBatch(tf.slice(X, 0, 3), tf.slice(Y, 0, 3))).rejects.toThrow(/without example ids/);
    await expect(run.step(['a'], () => 1)).rejects.toThrow(/ran no optimizer step/);
    await run.close();
  });

  it('close() restores the model: it trains as before, and can be attached again', async () => {
    const [model, twin] = twins('sgd');
    const run = attach(model);
    await run.close();
    await model.fit(X, Y, { epochs: 1, batchSize: 8, verbose: 0 });
    await twin.fit(X, Y, { epochs: 1, batchSize: 8, verbose: 0, shuffle: false });
    expect(Object.hasOwn(model.optimizer, 'computeGradients')).toBe(false);
    expect(model.layers.some((l) => Object.hasOwn(l, 'call'))).toBe(false);
    const again = attach(model);
    await again.close();
  });
});
