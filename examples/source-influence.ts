/**
 * Which of my training datasets helped the model on each test set? The spam filter trained on
 * SpamAssassin's 5 corpus groups (the sources), three answers side by side: the run's own values summed
 * per source (free), UnTrac (unlearn each source) and UnTrac-Inv (unlearn each target); the unlearning
 * rows are stored beside the run in its SQLite file.
 *
 *   npx tsx examples/source-influence.ts [--limit 2000] [--backend wasm] [--db runs/sources.sqlite]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, sourceValues, sqliteSink, untrac, useFastEmbeddingGradient, writeSourceInfluence } from 'inrun';
import { spamClassifier, splitTensors } from './spam-classifier.js';
import { spamData } from './spam-data.js';

const { values: args } = parseArgs({
  options: { limit: { type: 'string', default: '2000' }, backend: { type: 'string', default: 'wasm' }, db: { type: 'string', default: 'runs/sources.sqlite' } },
});
await tf.setBackend(args.backend);
useFastEmbeddingGradient();
const data = spamData({ flipRate: 0, limit: Number(args.limit), valSize: 100, testSize: 300 });
const groups = [...new Set(data.train.emails.map((e) => e.group))].sort();
const rowsOf = (split: typeof data.train, g: string) => split.emails.flatMap((e, i) => (e.group === g ? [i] : []));
const sources = Object.fromEntries(groups.map((g) => [g, splitTensors(data.train, data.seqLen, rowsOf(data.train, g))]));
// Targets: the spam and the ham among the test emails.
const targets = {
  spam: splitTensors(data.test, data.seqLen, data.test.emails.flatMap((e, i) => (e.spam ? [i] : []))),
  ham: splitTensors(data.test, data.seqLen, data.test.emails.flatMap((e, i) => (e.spam ? [] : [i]))),
};

const model = spamClassifier({ vocabSize: data.vocabulary.length, seqLen: data.seqLen });
const examples = data.train.emails.map((e) => ({ id: e.id, source: e.group }));
const run = attach(model, { targets, methods: ['shapley1'], update: 'optimizer', examples, sinks: [sqliteSink(args.db)], seed: 1 });
const train = splitTensors(data.train, data.seqLen);
await run.fit(train.xs, train.ys, { ids: examples.map((e) => e.id), epochs: 3, batchSize: 32, verbose: 0 });
const values = sourceValues(await run.close(), examples).table;

// A tenth of the training rate: the paper's 5e-5 was for a 125M-parameter LM (docs/methods.md).
const optimizer = () => tf.train.adam(5e-4);
const forward = await untrac(model, { sources, targets, optimizer });
const inverse = await untrac(model, { sources, targets, optimizer, method: 'untrac-inv' });
writeSourceInfluence([...forward.rows, ...inverse.rows], { runId: run.id, sqlite: args.db });

for (const target of Object.keys(targets)) {
  console.log(`\ntarget "${target}": positive = the source lowered its loss`);
  console.log(`  ${'source'.padEnd(12)} ${'emails'.padStart(6)} ${'share'.padStart(6)} ${'run value'.padStart(10)} ${'value share'.padStart(11)} ${'UnTrac'.padStart(9)} ${'UnTrac-Inv'.padStart(10)}`);
  for (const g of groups) {
    const v = values[`shapley1:${target}`]![g]!;
    const cells = [v.sum.toExponential(2).padStart(10), `${(v.valueShare * 100).toFixed(0)}%`.padStart(11)];
    const [u, i] = [forward.influence[target]![g]!, inverse.influence[target]![g]!].map((x) => x.toFixed(4));
    console.log(`  ${g.padEnd(12)} ${String(v.examples).padStart(6)} ${`${(v.dataShare * 100).toFixed(0)}%`.padStart(6)} ${cells.join(' ')} ${u!.padStart(9)} ${i!.padStart(10)}`);
  }
}
console.log(`\nUnTrac took ${forward.seconds.toFixed(1)} s, UnTrac-Inv ${inverse.seconds.toFixed(1)} s; rows stored in ${args.db} (table source_influence, run "${run.id}").`);
