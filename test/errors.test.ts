import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type AttachOptions } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { weightsOf } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function model(): tf.LayersModel {
  const m = tf.sequential({
    layers: [
      tf.layers.dense({ units: 4, activation: 'relu', inputShape: [3], name: 'hidden' }),
      tf.layers.dense({ units: 2, activation: 'softmax', name: 'out' }),
    ],
  });
  m.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return m;
}

const x = tf.randomNormal([6, 3], 0, 1, 'float32', 1);
const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1], 'int32'), 2);
const val = { xs: tf.randomNormal([2, 3], 0, 1, 'float32', 2), ys: tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2) };

function attachError(options: AttachOptions, m: tf.LayersModel = model()): InrunError {
  try {
    attach(m, options);
  } catch (error) {
    expect(error).toBeInstanceOf(InrunError);
    return error as InrunError;
  }
  throw new Error('attach did not throw');
}

describe('bad input fails before training with an error naming the field', () => {
  it('ids of the wrong length', async () => {
    const m = model();
    const before = weightsOf(m);
    const run = attach(m, { targets: { val } });
    const error = await run.fit(x, y, { ids: [1, 2, 3], verbose: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).field).toBe('args.ids');
    expect((error as Error).message).toMatch(/expected 6 ids/);
    expect(weightsOf(m)).toEqual(before);
    await run.close();
  });

  it('duplicate ids', async () => {
    const m = model();
    const before = weightsOf(m);
    const run = attach(m, { targets: { val } });
    const error = await run.fit(x, y, { ids: ['a', 'b', 'c', 'd', 'b', 'e'], verbose: 0 }).catch((e: unknown) => e);
    expect((error as InrunError).field).toBe('args.ids');
    expect((error as Error).message).toMatch(/duplicate example id "b" at index 4/);
    expect(weightsOf(m)).toEqual(before);
    await run.close();
  });

  it('ids of the wrong type', async () => {
    const run = attach(model());
    const error = await run.fit(x, y, { ids: [1, 2, null, 4, 5, 6] as unknown as number[], verbose: 0 }).catch((e: unknown) => e);
    expect((error as InrunError).field).toBe('args.ids[2]');
    await run.close();
  });

  it('an unknown layer name', () => {
    const error = attachError({ layers: ['hidden', 'nope'] });
    expect(error.field).toBe('layers');
    expect(error.message).toMatch(/unknown layer "nope"; layers with weights: hidden, out/);
  });

  it('a target with the wrong input shape', () => {
    const error = attachError({ targets: { val: { xs: tf.zeros([2, 5]), ys: val.ys } } });
    expect(error.field).toBe('targets.val.xs');
    expect(error.message).toMatch(/expected rows of shape \[3\].*got \[5\]/);
  });

  it('a target whose labels do not fit the loss', () => {
    const error = attachError({ targets: { val: { xs: val.xs, ys: tf.zeros([2, 7]) } } });
    expect(error.field).toBe('targets.val');
    expect(error.message).toMatch(/forward pass and loss failed/);
  });

  it('a target with mismatched row counts', () => {
    const error = attachError({ targets: { val: { xs: val.xs, ys: tf.zeros([3, 2]) } } });
    expect(error.field).toBe('targets.val.ys[0]');
  });

  it('a target name with a colon, and a target that is not { xs, ys }', () => {
    expect(attachError({ targets: { 'a:b': val } }).field).toBe('targets');
    expect(attachError({ targets: { val: { xs: [1, 2], ys: val.ys } as never } }).field).toBe('targets.val.xs');
  });

  it('unknown options and methods, and methods that need what is missing', () => {
    expect(attachError({ target: {} } as never).field).toBe('target');
    expect(attachError({ methods: ['shapley3'] } as never).message).toMatch(/unknown method "shapley3"/);
    expect(attachError({ methods: ['shapley1'] }).field).toBe('targets');
    expect(attachError({ methods: ['tracin_we'], targets: { val } }).message).toMatch(/needs an embedding layer/);
    expect(attachError({ flushEvery: 0 }).field).toBe('flushEvery');
    expect(attachError({ ghostPath: 'fast' } as never).field).toBe('ghostPath');
  });

  it('an uncompiled model, a model without supported layers, a model attached twice', () => {
    const raw = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
    expect(attachError({}, raw).message).toMatch(/compile the model before attach/);
    const prelu = tf.sequential({ layers: [tf.layers.prelu({ inputShape: [4] })] });
    prelu.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    expect(attachError({}, prelu).message).toMatch(/no layer to attribute through.*PReLU layers are not supported/);
    const m = model();
    const run = attach(m);
    expect(attachError({}, m).message).toMatch(/already attached/);
    return run.close();
  });

  it('unsupported layers are skipped and reported; the rest is covered', async () => {
    const m = tf.sequential({
      layers: [
        tf.layers.prelu({ inputShape: [4, 1] }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 1, name: 'head' }),
      ],
    });
    m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const run = attach(m);
    expect(run.info.layers.covered.map((l) => l.name)).toEqual(['head']);
    expect(run.info.layers.skipped[0]).toMatchObject({ className: 'PReLU', reason: 'PReLU layers are not supported' });
    await run.fit(tf.randomNormal([4, 4, 1]), tf.randomNormal([4, 1]), { verbose: 0 });
    const scores = await run.close();
    expect(scores.columns['tracin_self']!.every((v) => v > 0)).toBe(true);
  });
});
