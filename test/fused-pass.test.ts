// targetPass: the option is checked, reported in run.info, and 'fused' falls back to the separate pass with the same update and scores.
import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type StepRecord } from 'inrun';
import { beforeAll, expect, it } from 'vitest';
import { mlp } from './cases.js';
import { snapshot, weightsOf } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

it("targetPass is checked: 'fused' or 'separate', an InrunError naming the field otherwise", () => {
  const c = mlp(['relu', 'softmax'], true);
  try {
    attach(c.model, { targets: c.targets, targetPass: 'joint' as unknown as 'fused' });
    expect.unreachable();
  } catch (error) {
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).field).toBe('targetPass');
  }
});

it("run.info.targetPass reports the pass that ran: 'separate' by default, null without targets", async () => {
  const c = mlp(['relu', 'softmax'], true);
  const plain = attach(c.model, { targets: c.targets });
  expect(plain.info.targetPass).toBe('separate');
  await plain.close();
  const none = attach(c.model, { methods: ['tracin_self'] });
  expect(none.info.targetPass).toBeNull();
  await none.close();
});

it("targetPass: 'fused' falls back to the separate pass (no layer kind fuses yet): same weights and scores as the default, nothing leaked", async () => {
  const c = mlp(['relu', 'softmax'], true);
  const start = snapshot(c.model);
  const n = c.x.shape[0]!;
  const ids = Array.from({ length: n }, (_, i) => i);
  const runOnce = async (targetPass: 'fused' | 'separate') => {
    c.model.setWeights(start);
    const before = tf.memory().numTensors;
    const run = attach(c.model, { targets: c.targets, methods: ['shapley1'], targetPass });
    const records: StepRecord[] = [];
    run.records$.subscribe((r) => records.push(r));
    for (let step = 0; step < 3; step++) await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
    const pass = run.info.targetPass;
    await run.close();
    return { pass, records, weights: weightsOf(c.model), leaked: tf.memory().numTensors - before };
  };
  // A first run allocates once-per-process tensors (the probes' seed, the optimizer's scalars).
  await runOnce('separate');
  const separate = await runOnce('separate');
  const fused = await runOnce('fused');
  expect(fused.pass).toBe('separate');
  expect(fused.weights).toEqual(separate.weights);
  expect(fused.records.length).toBe(3);
  fused.records.forEach((r, i) => expect(r.columns).toEqual(separate.records[i]!.columns));
  expect([separate.leaked, fused.leaked]).toEqual([0, 0]);
  tf.dispose(start);
});
