import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, type StepRecord } from 'inrun';
import { beforeAll, expect, it } from 'vitest';
import { mlp } from './cases.js';
import { dot, expectClose, layerVariables, perExampleGradients, targetGradient } from './helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

it('targetEvery: n reuses the last target pass for n - 1 steps: values use that pass\'s target gradient and each step\'s own example gradients', async () => {
  const c = mlp(['tanh', 'softmax'], true);
  const lr = 0.05;
  const n = c.x.shape[0]!;
  const forward = (x: tf.Tensor) => c.model.apply(x, { training: true }) as tf.Tensor;
  const vars = layerVariables(c.model);
  const val = c.targets['val']!;
  const run = attach(c.model, { targets: { val }, methods: ['shapley1'], targetEvery: 3 });
  expect(run.info.targetEvery).toBe(3);
  const records: StepRecord[] = [];
  run.records$.subscribe((r) => records.push(r));
  const expected: number[][] = [];
  let gT: Float64Array = new Float64Array();
  for (let step = 0; step < 5; step++) {
    // Target passes at steps 0 and 3; steps 1, 2 and 4 reuse them.
    if (step % 3 === 0) gT = targetGradient(forward, c.loss, val.xs, val.ys, vars);
    const g = perExampleGradients(forward, c.loss, c.x, c.y, vars);
    expected.push(g.map((gi) => (lr / n) * dot(gT, gi)));
    await run.step(Array.from({ length: n }, (_, i) => i), () => c.model.trainOnBatch(c.x, c.y));
  }
  await run.close();
  records.forEach((r, step) => expectClose(r.columns['shapley1:val']!, expected[step]!));
  expect(records.map((r) => Object.keys(r.targetLosses).length)).toEqual([1, 0, 0, 1, 0]);
  // A stale gradient is not the fresh one: the check above can tell them apart.
  const fresh = targetGradient(forward, c.loss, val.xs, val.ys, vars);
  expect(Math.max(...fresh.map((v, i) => Math.abs(v - gT[i]!)))).toBeGreaterThan(1e-4);
});

it('targetEvery is checked: a positive integer, and not with shapley2', () => {
  const c = mlp(['relu', 'softmax'], true);
  expect(() => attach(c.model, { targets: c.targets, targetEvery: 0 })).toThrow(/targetEvery.*positive integer/s);
  try {
    attach(c.model, { targets: c.targets, methods: ['shapley2'], targetEvery: 2 });
    expect.unreachable();
  } catch (error) {
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).field).toBe('targetEvery');
  }
});
