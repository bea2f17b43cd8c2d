// unlearn() against non-finite rows and labels in the wrong form: an InrunError naming the field, the input model bit-identical, never a non-finite model.
import * as tf from '@tensorflow/tfjs';
import { InrunError, unlearn, type UnlearnMethod } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function model(loss: string): tf.Sequential {
  const m = tf.sequential({ layers: [tf.layers.dense({ units: 8, activation: 'relu', inputShape: [4], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }), tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });
  m.compile({ optimizer: tf.train.adam(0.01), loss });
  return m;
}

const rows = (n: number, seed: number) => ({ xs: tf.randomNormal([n, 4], 0, 1, 'float32', seed), ys: tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % 3), 'int32'), 3) });

async function weightsOf(m: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(m.getWeights().map(async (w) => Float32Array.from(await w.data())));
}

async function refused(m: tf.LayersModel, options: Parameters<typeof unlearn>[1]): Promise<InrunError> {
  const before = await weightsOf(m);
  const tensors = tf.memory().numTensors;
  const e = await unlearn(m, options).then(() => null, (error: unknown) => error);
  expect(e).toBeInstanceOf(InrunError);
  expect(await weightsOf(m)).toEqual(before);
  // Nothing left behind by the refusal.
  expect(tf.memory().numTensors).toBe(tensors);
  return e as InrunError;
}

/** `rows` with one value replaced. */
function poisoned(r: { xs: tf.Tensor; ys: tf.Tensor }, row: number, value: number) {
  const xs = r.xs.arraySync() as number[][];
  xs[row]![1] = value;
  return { xs: tf.tensor2d(xs), ys: r.ys };
}

describe('unlearn() refuses what would give a non-finite or wrong model', () => {
  const methods: UnlearnMethod[] = ['rfa-lora', 'fine-tune', 'gradient-ascent'];
  it.each(methods)('%s: NaN in forget.xs and Infinity in retain.xs are refused naming the row', async (method) => {
    const m = model('categoricalCrossentropy');
    const forget = rows(6, 3);
    const retain = rows(12, 4);
    const badForget = poisoned(forget, 2, Number.NaN);
    const badRetain = poisoned(retain, 7, Number.POSITIVE_INFINITY);
    expect((await refused(m, { method, forget: badForget, retain, rank: 2 })).field).toBe('forget.xs[2]');
    expect((await refused(m, { method, forget, retain: badRetain, rank: 2 })).field).toBe('retain.xs[7]');
  });

  it('class-id labels for a categoricalCrossentropy model, and one-hot labels for a sparse one, are shape_mismatch on the field', async () => {
    const forget = rows(6, 3);
    const retain = rows(12, 4);
    const ids = (r: { xs: tf.Tensor; ys: tf.Tensor }) => ({ xs: r.xs, ys: tf.argMax(r.ys, 1).cast('float32') });
    let e = await refused(model('categoricalCrossentropy'), { forget: ids(forget), retain, rank: 2 });
    expect([e.code, e.field]).toEqual(['shape_mismatch', 'forget.ys']);
    e = await refused(model('categoricalCrossentropy'), { forget, retain: { xs: retain.xs, ys: tf.argMax(retain.ys, 1).reshape([-1, 1]).cast('float32') }, rank: 2 });
    expect([e.code, e.field]).toEqual(['shape_mismatch', 'retain.ys']);
    e = await refused(model('sparseCategoricalCrossentropy'), { forget, retain: ids(retain), rank: 2 });
    expect([e.code, e.field]).toEqual(['shape_mismatch', 'forget.ys']);
    // The forms each loss takes still run.
    const sparse = await unlearn(model('sparseCategoricalCrossentropy'), { forget: ids(forget), retain: ids(retain), epochs: 1, rank: 2 });
    sparse.model.dispose();
  });

  it('a run that diverges (a learning rate that overflows float32) is refused, never a model of non-finite weights', async () => {
    const m = model('categoricalCrossentropy');
    const before = await weightsOf(m);
    const e = await unlearn(m, { method: 'gradient-ascent', forget: rows(6, 3), epochs: 5, batchSize: 1, learningRate: 1e38 }).then(() => null, (error: unknown) => error);
    expect(e).toBeInstanceOf(InrunError);
    expect((e as InrunError).field).toBe('learningRate');
    expect(await weightsOf(m)).toEqual(before);
  });
});
