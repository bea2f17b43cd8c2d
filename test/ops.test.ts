import * as tf from '@tensorflow/tfjs';
import { attach, ops, type StepRecord } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { dot, expectClose, losses, perExampleGradients, rng, targetGradient } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A hand-written sequence classifier: embedding -> dense on every position (rank 3) -> mean -> dense. */
let models = 0;
function handWritten(seed: number) {
  const id = models++;
  const v = (shape: number[], name: string, s: number) => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', seed + s), true, `${name}_${id}`);
  const table = v([12, 4], 'table', 1);
  const w1 = v([4, 5], 'w1', 2);
  const b1 = v([5], 'b1', 3);
  const w2 = v([5, 1], 'w2', 4);
  const predict = (xs: tf.Tensor | tf.Tensor[]) => {
    const e = ops.embedding(xs as tf.Tensor, table, { name: 'embed' });
    const h = tf.tanh(ops.dense(e, w1, b1, { name: 'proj' }));
    return tf.sigmoid(ops.dense(tf.mean(h, 1), w2, null, { name: 'head' }));
  };
  const r = rng(seed);
  const ids = (n: number) => tf.tensor2d(Array.from({ length: n * 5 }, () => Math.floor(r() * 6)), [n, 5], 'int32');
  const labels = (n: number) => tf.tensor2d(Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)), [n, 1]);
  return { vars: [table, w1, b1, w2], predict, x: ids(6), y: labels(6), target: { xs: ids(3), ys: labels(3) } };
}

describe('hand-written models through ops', () => {
  for (const reduction of ['mean', 'sum'] as const) {
    it(`scores equal brute force (${reduction} loss)`, async () => {
      const lr = 0.1;
      const m = handWritten(reduction === 'mean' ? 1 : 2);
      const loss = (ys: tf.Tensor | tf.Tensor[], p: tf.Tensor | tf.Tensor[]) => losses.binary(ys as tf.Tensor, p as tf.Tensor);
      const optimizer = tf.train.sgd(lr);
      const forward = (x: tf.Tensor) => m.predict(x) as tf.Tensor;
      const g = perExampleGradients(forward, losses.binary, m.x, m.y, m.vars);
      const gT = targetGradient(forward, losses.binary, m.target.xs, m.target.ys, m.vars);
      const run = attach({ predict: m.predict, loss, optimizer, lossReduction: reduction }, { targets: { val: m.target } });
      expect(run.info.layers.covered.map((l) => [l.name, l.kind, l.params])).toEqual([
        ['embed', 'embedding', 48],
        ['proj', 'dense', 25],
        ['head', 'dense', 5],
      ]);
      const records: StepRecord[] = [];
      run.records$.subscribe((rec) => records.push(rec));
      const reduce = reduction === 'mean' ? tf.mean : tf.sum;
      await run.step([10, 11, 12, 13, 14, 15], () => optimizer.minimize(() => reduce(loss(m.y, m.predict(m.x))) as tf.Scalar));
      await run.close();
      const c = reduction === 'mean' ? lr / 6 : lr;
      expectClose(records[0]!.columns['shapley1:val']!, g.map((gi) => c * dot(gT, gi)));
      expectClose(records[0]!.columns['tracin_self']!, g.map((gi) => c * dot(gi, gi)));
    });
  }

  it('ops.embedding trains like tf.gather (its scatterND table gradient)', () => {
    const a = handWritten(3);
    const b = handWritten(3);
    const optA = tf.train.sgd(0.1);
    const optB = tf.train.sgd(0.1);
    const [table, w1, b1, w2] = b.vars as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
    const plain = (x: tf.Tensor) => tf.sigmoid(tf.matMul(tf.mean(tf.tanh(tf.add(tf.matMul(tf.reshape(tf.gather(table, tf.reshape(x, [-1])), [-1, 4]), w1), b1)).reshape([x.shape[0]!, 5, 5]), 1), w2));
    optA.minimize(() => tf.mean(losses.binary(a.y, a.predict(a.x) as tf.Tensor)) as tf.Scalar);
    optB.minimize(() => tf.mean(losses.binary(b.y, plain(b.x))) as tf.Scalar);
    a.vars.forEach((v, i) => expectClose(v.dataSync(), b.vars[i]!.dataSync(), 1e-6));
  });

  it('the layers option selects ops layers by name', async () => {
    const m = handWritten(4);
    const optimizer = tf.train.sgd(0.1);
    const loss = (ys: tf.Tensor | tf.Tensor[], p: tf.Tensor | tf.Tensor[]) => losses.binary(ys as tf.Tensor, p as tf.Tensor);
    const run = attach({ predict: m.predict, loss, optimizer }, { targets: { val: m.target }, layers: ['head'] });
    expect(run.info.layers.covered.map((l) => l.name)).toEqual(['head']);
    await run.close();
    expect(() => attach({ predict: m.predict, loss, optimizer }, { targets: { val: m.target }, layers: ['nope'] })).toThrow(/unknown layer "nope"/);
  });
});
