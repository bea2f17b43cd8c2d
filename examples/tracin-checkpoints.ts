/**
 * TracIn from checkpoints: save checkpoints (and gradient sketches) during a run, then explain test
 * rows that were not known when training started.
 *   npx tsx examples/tracin-checkpoints.ts
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, tracin } from 'inrun';
import { tabularData, tabularMlp } from './tabular.js';

await tf.setBackend('cpu');
const data = tabularData({ rows: 1024, flipRate: 0.05, seed: 2 });
const [x, y] = [data.xs.slice(0, 1000), data.ys.slice(0, 1000)];
const ids = Array.from({ length: 1000 }, (_, i) => `row-${i}`);
const dir = join(mkdtempSync(join(tmpdir(), 'inrun-example-')), 'checkpoints');

// During the run: a checkpoint after every epoch, with a 16 x 16 sketch of every row's gradient per layer.
const model = tabularMlp();
const run = attach(model, { checkpoints: { dir, everyEpochs: 1 }, sketch: { size: 16 }, seed: 1 });
await run.fit(x, y, { ids, epochs: 4, batchSize: 32, verbose: 0 });
await run.close();

// After training: which training rows made the model predict these 3 test rows the way it does?
const queries = { xs: data.xs.slice(1000, 3), ys: data.ys.slice(1000, 3), ids: ['test-0', 'test-1', 'test-2'] };
const exact = await tracin({ checkpoints: dir, train: { xs: x, ys: y, ids }, queries, k: 5 });
for (const q of exact.queries) {
  console.log(`${q.id}: proponents ${q.proponents.map((p) => p.id).join(' ')}; opponents ${q.opponents.map((p) => p.id).join(' ')}`);
}
// Self-influence flags the flipped labels.
const self = exact.selfInfluence!;
const top = [...self.values.keys()].sort((a, b) => self.values[b]! - self.values[a]!).slice(0, 50);
console.log(`flipped labels among the 50 highest self-influence rows: ${top.filter((i) => data.flipped[i]).length} (base rate ${(data.flipped.reduce((s, f) => s + f, 0) / 10.24).toFixed(1)}%)`);

// The same queries from the sketches saved with each checkpoint: no pass over the training data.
const sketched = await tracin({ checkpoints: dir, train: 'sketches', queries, k: 5 });
console.log(`top proponent of test-0 from sketches: ${sketched.queries[0]!.proponents[0]?.id} (exact: ${exact.queries[0]!.proponents[0]?.id})`);
