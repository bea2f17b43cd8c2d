/**
 * A sink in a dozen lines: per-step records and totals as JSON lines. Sinks see plain data only.
 *   npx tsx examples/jsonl-sink.ts   (writes runs/records.jsonl)
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { attach, type Sink } from 'inrun';

function jsonLinesSink(path: string): Sink {
  const line = (o: unknown) => appendFileSync(path, `${JSON.stringify(o)}\n`);
  return {
    name: `jsonl:${path}`,
    open: (run) => (mkdirSync('runs', { recursive: true }), writeFileSync(path, ''), line({ type: 'run', ...run })),
    writeSteps: (records) => records.forEach((r) => line({ type: 'step', ...r, columns: Object.fromEntries(Object.entries(r.columns).map(([k, v]) => [k, Array.from(v)])) })),
    writeScores: (s) => line({ type: 'scores', ids: s.ids, columns: Object.fromEntries(Object.entries(s.columns).map(([k, v]) => [k, Array.from(v)])) }),
    close: () => undefined,
  };
}

const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [3] })] });
model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
const x = tf.randomNormal([40, 3]);
const y = tf.sum(x, 1, true);
const run = attach(model, { targets: { val: { xs: tf.randomNormal([5, 3]), ys: tf.zeros([5, 1]) } }, sinks: [jsonLinesSink('runs/records.jsonl')] });
await run.fit(x, y, { epochs: 2, batchSize: 10, verbose: 0 });
await run.close();
console.log('wrote runs/records.jsonl');
