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
    expect((error as InrunError).code).toBe('invalid_input');
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
    expect(error.code).toBe('invalid_option');
    expect(error.message).toMatch(/unknown layer "nope"; layers with weights: hidden, out/);
  });

  it('a target with the wrong input shape', () => {
    const error = attachError({ targets: { val: { xs: tf.zeros([2, 5]), ys: val.ys } } });
    expect(error.field).toBe('targets.val.xs');
    expect(error.code).toBe('shape_mismatch');
    expect(error.message).toMatch(/expected rows of shape \[3\].*got \[5\]/);
  });

  it('a target whose labels do not fit the loss', () => {
    const error = attachError({ targets: { val: { xs: val.xs, ys: tf.zeros([2, 7]) } } });
    expect(error.field).toBe('targets.val.ys');
    expect(error.code).toBe('shape_mismatch');
    expect(error.message).toMatch(/expected labels of shape \[2\]/);
  });

  it('a target with mismatched row counts', () => {
    const error = attachError({ targets: { val: { xs: val.xs, ys: tf.zeros([3, 2]) } } });
    expect(error.field).toBe('targets.val.ys[0]');
    expect(error.code).toBe('shape_mismatch');
  });

  it('a target name with a colon, and a target that is not { xs, ys }', () => {
    expect(attachError({ targets: { 'a:b': val } }).field).toBe('targets');
    expect(attachError({ targets: { val: { xs: [1, 2], ys: val.ys } as never } }).field).toBe('targets.val.xs');
  });

  it('unknown options and methods, and methods that need what is missing', () => {
    expect(attachError({ target: {} } as never)).toMatchObject({ field: 'target', code: 'invalid_option' });
    expect(attachError({ methods: ['shapley3'] } as never).message).toMatch(/unknown method "shapley3"/);
    expect(attachError({ methods: ['shapley1'] }).field).toBe('targets');
    expect(attachError({ methods: ['tracin_we'], targets: { val } })).toMatchObject({ code: 'unsupported_layer', message: expect.stringMatching(/needs an embedding layer/) as unknown });
    expect(attachError({ flushEvery: 0 }).field).toBe('flushEvery');
    expect(attachError({ ghostPath: 'fast' } as never).field).toBe('ghostPath');
  });

  it('an uncompiled model, a model without supported layers, a model attached twice', () => {
    const raw = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
    expect(attachError({}, raw)).toMatchObject({ code: 'unsupported_model', message: expect.stringMatching(/compile the model before attach/) as unknown });
    const norm = tf.sequential({ layers: [tf.layers.batchNormalization({ inputShape: [4] })] });
    norm.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    expect(attachError({}, norm)).toMatchObject({
      code: 'unsupported_layer',
      message: expect.stringMatching(/no layer to attribute through.*batch statistics couple the examples/) as unknown,
    });
    const m = model();
    const run = attach(m);
    expect(attachError({}, m)).toMatchObject({ code: 'invalid_state', message: expect.stringMatching(/already attached/) as unknown });
    return run.close();
  });

  it('unsupported layers are skipped and reported; the rest is covered', async () => {
    const m = tf.sequential({
      layers: [
        tf.layers.dense({ units: 3, inputShape: [4], name: 'hidden' }),
        tf.layers.batchNormalization(),
        tf.layers.dense({ units: 1, name: 'head' }),
      ],
    });
    m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const run = attach(m);
    expect(run.info.layers.covered.map((l) => l.name)).toEqual(['hidden', 'head']);
    expect(run.info.layers.skipped[0]).toMatchObject({ className: 'BatchNormalization', reason: expect.stringMatching(/batch statistics couple/) as unknown });
    // Coverage: 15 + 4 parameters of 25 trainable (BatchNormalization's gamma and beta, 6, are left out).
    expect(run.info.layers).toMatchObject({ coveredParams: 19, trainableParams: 25 });
    await run.fit(tf.randomNormal([4, 4]), tf.randomNormal([4, 1]), { verbose: 0 });
    const scores = await run.close();
    expect(scores.columns['tracin_self']!.every((v) => v > 0)).toBe(true);
    // Naming a layer inrun cannot attribute through is an error, not a silent skip.
    expect(attachError({ layers: ['head', run.info.layers.skipped[0]!.name] }, m)).toMatchObject({ field: 'layers', code: 'unsupported_layer' });
  });
});
