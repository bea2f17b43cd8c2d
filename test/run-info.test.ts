// RunInfo as the sinks see it: complete when first handed over, and never changed afterwards (new facts make a new object).
import * as tf from '@tensorflow/tfjs';
import { attach, type RunInfo, type Sink } from 'inrun';
import { beforeAll, expect, it } from 'vitest';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A sink that keeps every RunInfo it is handed, with its JSON at that moment. */
function recordingSink(seen: { info: RunInfo; json: string; call: string }[]): Sink {
  const keep = (info: RunInfo, call: string): void => {
    seen.push({ info, json: JSON.stringify(info), call });
  };
  return {
    name: 'recording',
    open: (info) => keep(info, 'open'),
    writeSteps: () => undefined,
    writeScores: (_scores, info) => keep(info, 'writeScores'),
    close: () => undefined,
  };
}

it('an object handed to a sink never changes, while later seeds reach the sinks in a new one', async () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  const x = tf.randomNormal([4, 3], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2);
  const seen: { info: RunInfo; json: string; call: string }[] = [];
  const run = attach(model, { sinks: [recordingSink(seen)], seed: 7, totalsEvery: 1 });
  const first = run.info;
  await run.fit(x, y, { batchSize: 2, epochs: 1, seed: 11 });
  await run.fit(x, y, { batchSize: 2, epochs: 1, seed: 12 });
  await run.close();
  expect(seen.map((s) => s.call)).toContain('open');
  expect(seen.filter((s) => s.call === 'writeScores').length).toBeGreaterThan(1);
  // Every object a sink got still reads as it did then (the second fit's seed went into a new object).
  for (const s of seen) {
    expect(JSON.stringify(s.info)).toBe(s.json);
    expect(Object.isFrozen(s.info) && Object.isFrozen(s.info.seeds) && Object.isFrozen(s.info.meta)).toBe(true);
  }
  expect(seen[0]!.info.seeds).toEqual([11]);
  expect(seen.at(-1)!.info.seeds).toEqual([11, 12]);
  expect(run.info.seeds).toEqual([11, 12]);
  // Complete from the start: what attach knew (layers, target pass) is in the first object.
  expect(first.layers.covered.length).toBe(1);
  expect(first.seeds).toEqual([]);
  tf.dispose([x, y]);
});
