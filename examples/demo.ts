/**
 * inrun's main job: train a spam filter on SpamAssassin with 10% of its training labels flipped on
 * purpose, attribute every training email toward a clean validation set while it trains, and say
 * which emails helped, which hurt, and how well each score finds the flipped labels.
 *
 *   npm run demo            (or: npx tsx examples/demo.ts [--epochs 3] [--lr 0.005] [--backend wasm|cpu] [--db runs/demo.sqlite])
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, sqliteSink, useFastEmbeddingGradient, type Scores } from 'inrun';
import { writeReport } from '@inrun/cli';
import { quietNodeBanner } from 'inrun/internal';
import { auroc, shareInTop } from '../eval/metrics.js';
import { spamClassifier, splitTensors } from './spam-classifier.js';
import { spamData } from './spam-data.js';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'wasm' },
    db: { type: 'string', default: 'runs/demo.sqlite' },
    limit: { type: 'string' },
    lr: { type: 'string', default: '0.005' },
  },
});
const started = Date.now();

// The app picks its backend; inrun never does. Embedding models need the opt-in fast gather
// gradient on cpu and wasm (docs/embedding-gradient.md).
// inrun's own command: tf.js' node-backend banner (with --backend cpu) is noise here; a library user's program keeps it.
quietNodeBanner();
await tf.setBackend(args.backend);
useFastEmbeddingGradient();

const data = spamData(args.limit === undefined ? {} : { limit: Number(args.limit), valSize: 100, testSize: 100 });
const { seqLen, vocabulary } = data;
const train = splitTensors(data.train, seqLen);
// The target: 128 clean validation emails, drawn like the data (docs/methods.md explains why not balanced).
const val = splitTensors(data.val, seqLen, data.val.emails.map((_, i) => i).slice(0, 128));
const test = splitTensors(data.test, seqLen);

// A smaller --limit needs a higher --lr to learn in its fewer steps (the tests run --limit 700 --epochs 3 --lr 0.03).
const learningRate = Number(args.lr);
if (!(learningRate > 0 && Number.isFinite(learningRate))) {
  console.error(`demo: --lr: expected a positive number, got ${JSON.stringify(args.lr)}`);
  process.exit(2);
}
const model = spamClassifier({ vocabSize: vocabulary.length, seqLen, learningRate });

const flippedShare = data.train.flipped.reduce((s, f) => s + f, 0) / data.train.flipped.length;
console.log('inrun demo: which training emails help or hurt a spam filter?\n');
console.log(
  `SpamAssassin: ${data.train.emails.length} training emails (${pct(flippedShare)} of labels flipped on purpose), ` +
    `${data.val.emails.length} validation, ${data.test.emails.length} test; vocabulary ${vocabulary.length}, ${seqLen} tokens per email.`,
);
console.log(`Model: Embedding -> GlobalAveragePooling1D -> Dense(sigmoid), Adam ${learningRate}, tf.js ${tf.version_core} on ${tf.getBackend()}.`);

const ids = data.train.emails.map((e) => e.id);
const run = attach(model, {
  targets: { val },
  methods: ['shapley1', 'tracin_self', 'tracin_we'],
  // Adam scales each parameter's step: score the step it really took, not the SGD proxy (docs/methods.md).
  update: 'optimizer',
  sinks: [sqliteSink(args.db)],
  examples: data.train.emails.map((e, i) => ({
    id: e.id,
    source: e.group,
    label: data.train.flipped[i] ? `${e.spam ? 'ham' : 'spam'} (flipped)` : e.spam ? 'spam' : 'ham',
    text: e.subject,
  })),
  tokens: { vocabulary, ignore: [0, 1], topK: 3 },
  seed: 1, // run.fit's shuffling: with the seeded initializers above, every run gives the same numbers
  // The target's label mix, so the report can say when it differs from the training data's (docs/report.md).
  meta: { example: 'demo', flippedShare, targetLabels: labelMix(data.val.emails.slice(0, 128)) },
});
console.log(`Attribution toward "val" (${val.xs.shape[0]} clean emails): ${run.info.columns.map((c) => c.name).join(', ')}.`);
const { covered, coveredParams, trainableParams } = run.info.layers;
console.log(
  `Covered: ${covered.map((l) => `${l.name} (${l.kind})`).join(', ')}: ${coveredParams} of ${trainableParams} trainable parameters (${pct(coveredParams / trainableParams)}).\n`,
);

const epochs = Number(args.epochs);
let currentEpoch = 0;
const steps = Math.ceil(ids.length / 32);
await run.fit(train.xs, train.ys, {
  ids,
  epochs,
  batchSize: 32,
  verbose: 0,
  callbacks: {
    onBatchEnd: (batch, logs) => progress(`epoch ${currentEpoch + 1}/${epochs}`, batch + 1, steps, `loss ${(logs?.['loss'] ?? 0).toFixed(3)}`),
    onEpochBegin: (epoch) => void (currentEpoch = epoch),
    onEpochEnd: (epoch, logs) => progressDone(`epoch ${epoch + 1}/${epochs}: loss ${(logs?.['loss'] ?? 0).toFixed(3)}, acc ${pct(logs?.['acc'] ?? 0)}`),
  },
});
const scores = await run.close();
const [, accuracy] = (model.evaluate(test.xs, test.ys) as tf.Scalar[]).map((t) => t.dataSync()[0]!);
console.log(`\nTest accuracy: ${pct(accuracy!)}\n`);

report(scores);
console.log(`\nAll scores, per step and in total, are in ${args.db} (run "${run.id}"). For example:`);
console.log(`  sqlite3 ${args.db} "SELECT example_id, source, label, value FROM example_scores WHERE run_id = '${run.id}' AND column_name = 'shapley1:val' ORDER BY value LIMIT 10"`);
console.log(`  sqlite3 ${args.db} "SELECT source, SUM(value) FROM example_scores WHERE run_id = (SELECT run_id FROM latest_run) AND column_name = 'shapley1:val' GROUP BY source"`);
console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(0)} s.`);

// ---- reporting -----------------------------------------------------------------------------------

function report(s: Scores): void {
  const value = s.columns['shapley1:val']!;
  const self = s.columns['tracin_self']!;
  const tokens = s.tokens['tracin_we:val']!;
  const byId = new Map(data.train.emails.map((e, i) => [e.id, i]));
  const order = s.ids.map((_, i) => i).sort((a, b) => value[b]! - value[a]!);
  const row = (i: number) => {
    const k = byId.get(s.ids[i] as string)!;
    const e = data.train.emails[k]!;
    const label = data.train.flipped[k] ? `${e.spam ? 'ham' : 'spam'}*` : e.spam ? 'spam' : 'ham';
    const words = tokens[i]!.map((t) => `${t.word}${t.score >= 0 ? '+' : '-'}`).join(' ');
    return `  ${value[i]!.toExponential(2).padStart(10)}  ${e.group.padEnd(10)} ${label.padEnd(5)} ${clip(e.subject, 44).padEnd(44)} ${words}`;
  };
  const header = `  ${'score'.padStart(10)}  ${'group'.padEnd(10)} ${'label'.padEnd(5)} ${'subject'.padEnd(44)} top tokens (TracIn-WE, +/- = helps/hurts)`;
  console.log('10 most helpful training emails (shapley1:val: validation loss they took away over the run; * = label flipped on purpose)');
  console.log(header);
  for (const i of order.slice(0, 10)) console.log(row(i));
  console.log('\n10 most harmful training emails');
  console.log(header);
  for (const i of order.slice(-10).reverse()) console.log(row(i));

  const flipped = s.ids.map((id) => data.train.flipped[byId.get(id as string)!]!);
  // Suspicion, higher = more likely flipped: the lowest values, the highest self-influence.
  const lowestValue = Array.from(value, (v) => -v);
  const base = flipped.reduce((n, f) => n + f, 0) / flipped.length;
  const line = (name: string, suspicion: ArrayLike<number>) => {
    const share = shareInTop(suspicion, flipped, 0.05);
    return `  ${name.padEnd(52)} ${pct(share).padStart(6)}  (${(share / base).toFixed(1)}x the base rate); AUROC over all ${auroc(suspicion, flipped).toFixed(2)}`;
  };
  console.log(`\nFlipped labels: ${pct(base)} of the training set. Share among`);
  console.log(line('the 5% lowest first-order values (shapley1:val)', lowestValue));
  console.log(line('the 5% highest self-influence (tracin_self)', self));
  console.log('  The lowest values are the surest harm to the target; self-influence ranks all flipped labels best (docs/methods.md).');
}

function progress(label: string, done: number, total: number, tail: string): void {
  if (!process.stderr.isTTY) return;
  const width = 24;
  const filled = Math.round((done / total) * width);
  process.stderr.write(`\r  ${label} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total} ${tail}   `);
}

function progressDone(line: string): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  console.log(`  ${line}`);
}

/** Rows per label of a set of emails, e.g. `{ ham: 85, spam: 43 }`. */
function labelMix(emails: readonly { spam: 0 | 1 }[]): Record<string, number> {
  const ham = emails.filter((e) => e.spam === 0).length;
  return { ham, spam: emails.length - ham };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function clip(s: string, n: number): string {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

// ---- the HTML report a data owner opens (docs/report.md) ------------------------------------------
const reportFile = `${args.db.replace(/\.sqlite$/, '')}-report.html`;
await writeReport(args.db, { run: run.id, out: reportFile, metrics: { 'test accuracy': pct(accuracy!) } });
console.log(`\nReport: ${reportFile} (open it in a browser). Again, or for another run:\n  npx inrun report ${args.db} --out ${reportFile}   (in this repository: npm run build first)`);
