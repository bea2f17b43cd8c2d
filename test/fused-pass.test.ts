// targetPass: the fused step's update is the plain one bit for bit, its scores the separate pass's; non-Dense models fall back.
import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type AttachOptions, type StepRecord } from 'inrun';
import { beforeAll, expect, it } from 'vitest';
import { mlp } from './cases.js';
import { expectClose, weightsOf } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

it("targetPass is checked: 'auto', 'fused' or 'separate', an InrunError naming the field otherwise", () => {
  const c = mlp(['relu', 'softmax'], true);
  try {
    attach(c.model, { targets: c.targets, targetPass: 'joint' as unknown as 'fused' });
    expect.unreachable();
  } catch (error) {
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).field).toBe('targetPass');
  }
});

it("run.info.targetPass reports the pass that ran: 'fused' by default where it is exact, 'separate' when asked, null without targets", async () => {
  const c = mlp(['relu', 'softmax'], true);
  const auto = attach(c.model, { targets: c.targets });
  expect(auto.info.targetPass).toBe('fused');
  await auto.close();
  const separate = attach(c.model, { targets: c.targets, targetPass: 'separate' });
  expect(separate.info.targetPass).toBe('separate');
  await separate.close();
  // Second order needs the target gradient at the moved weights: 'auto' keeps the separate pass.
  const second = attach(c.model, { targets: c.targets, methods: ['shapley2'] });
  expect(second.info.targetPass).toBe('separate');
  await second.close();
  const none = attach(c.model, { methods: ['tracin_self'] });
  expect(none.info.targetPass).toBeNull();
  await none.close();
});

type Case = ReturnType<typeof mlp>;

/** Trains a fresh copy of the test MLP for `steps` steps, attached with `options` (or not at all). */
async function train(optimizer: () => tf.Optimizer, options: ((c: Case) => AttachOptions) | null, steps = 4, model: (c: Case) => tf.LayersModel = (c) => c.model) {
  const c = mlp(['relu', 'softmax'], true);
  const m = model(c);
  m.compile({ optimizer: optimizer(), loss: 'categoricalCrossentropy' });
  const ids = Array.from({ length: c.x.shape[0]! }, (_, i) => i);
  const run = options === null ? null : attach(m, options(c));
  const records: StepRecord[] = [];
  run?.records$.subscribe((r) => records.push(r));
  const counts: number[] = [];
  for (let step = 0; step < steps; step++) {
    if (run === null) await m.trainOnBatch(c.x, c.y);
    else await run.step(ids, () => m.trainOnBatch(c.x, c.y));
    counts.push(tf.memory().numTensors);
  }
  const pass = run?.info.targetPass;
  await run?.close();
  return { pass, records, weights: weightsOf(m), counts };
}

for (const [name, optimizer] of [
  ['SGD', () => tf.train.sgd(0.05)],
  ['Adam', () => tf.train.adam(0.01)],
] as const) {
  it(`${name}: the fused step's update is bit-identical to an uninstrumented step, and its scores equal the separate pass's within 1e-6`, async () => {
    const plain = await train(optimizer, null);
    const fused = await train(optimizer, (c) => ({ targets: c.targets, methods: ['shapley1', 'tracin_self'], targetPass: 'fused' }));
    const separate = await train(optimizer, (c) => ({ targets: c.targets, methods: ['shapley1', 'tracin_self'], targetPass: 'separate' }));
    expect(fused.pass).toBe('fused');
    expect(separate.pass).toBe('separate');
    expect(fused.weights).toEqual(plain.weights);
    expect(fused.records.length).toBe(4);
    fused.records.forEach((r, i) => {
      const other = separate.records[i]!;
      for (const column of ['shapley1:val', 'shapley1:probe', 'tracin_self']) expectClose(r.columns[column]!, other.columns[column]!, 1e-6);
      expect(Object.keys(r.targetLosses)).toEqual(['val', 'probe']);
      expectClose(Object.values(r.targetLosses), Object.values(other.targetLosses), 1e-6);
    });
  });
}

it('the fused step keeps tf.memory().numTensors flat across steps', async () => {
  const { pass, counts } = await train(() => tf.train.adam(0.01), (c) => ({ targets: c.targets, methods: ['shapley1'], targetPass: 'fused', stepRecords: false }), 6);
  expect(pass).toBe('fused');
  expect(new Set(counts.slice(1)).size).toBe(1);
});

it("targetPass 'auto' keeps the separate pass on a model with a layer that couples rows (same weights and scores as 'separate'); 'fused' there is refused naming the field", async () => {
  const withNorm = (c: Case) => {
    const [d0, d1] = c.model.layers as [tf.layers.Layer, tf.layers.Layer];
    return tf.sequential({ layers: [d0, tf.layers.layerNormalization(), d1] });
  };
  const options = (targetPass: 'auto' | 'separate') => (c: Case): AttachOptions => ({ targets: c.targets, methods: ['shapley1'], targetPass });
  const auto = await train(() => tf.train.sgd(0.05), options('auto'), 3, withNorm);
  const separate = await train(() => tf.train.sgd(0.05), options('separate'), 3, withNorm);
  expect(auto.pass).toBe('separate');
  expect(auto.weights).toEqual(separate.weights);
  auto.records.forEach((r, i) => expect(r.columns).toEqual(separate.records[i]!.columns));
  const c = mlp(['relu', 'softmax'], true);
  const model = withNorm(c);
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  for (const [opts, reason] of [
    [{ targets: c.targets, targetPass: 'fused' }, /LayerNormalization has no fused call/],
    [{ targets: c.targets, targetPass: 'fused', targetEvery: 4 }, /targetEvery 4/],
    [{ targets: c.targets, targetPass: 'fused', methods: ['shapley2'] }, /method shapley2/],
  ] as const) {
    try {
      attach(model, opts as AttachOptions);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InrunError);
      expect((error as InrunError).field).toBe('targetPass');
      expect((error as InrunError).message).toMatch(reason);
    }
  }
});

it('the fused pass refuses a loss that runs the model twice in one step, naming targetPass', async () => {
  const c = mlp(['relu', 'softmax'], true);
  const optimizer = tf.train.sgd(0.05);
  c.model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const run = attach(c.model, { targets: c.targets, methods: ['shapley1'] });
  expect(run.info.targetPass).toBe('fused');
  const twice = () => tf.add(tf.losses.softmaxCrossEntropy(c.y, c.model.apply(c.x) as tf.Tensor), tf.mean(c.model.apply(c.x) as tf.Tensor)) as tf.Scalar;
  await expect(run.step([0, 1, 2, 3, 4, 5, 6], () => optimizer.minimize(twice))).rejects.toMatchObject({ field: 'targetPass' });
  await run.close();
});
