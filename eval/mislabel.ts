/**
 * Mislabel detection (issue 5; the optimizer comparison of issue 3): SpamAssassin with 10% of the
 * training labels flipped, the demo's classifier trained with Adam, every training email ranked by
 * each score. Two runs with the same seed train identically: one with the SGD-proxy values (the
 * default), one with `update: 'optimizer'` (Adam's own per-parameter step).
 *
 *   npx tsx eval/mislabel.ts [--epochs 3] [--backend wasm] [--limit N] [--out docs/evaluation.md]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, useFastEmbeddingGradient, type Method, type Scores } from 'inrun';
import { spamClassifier, splitTensors } from '../examples/spam-classifier.js';
import { balanced, spamData } from '../examples/spam-data.js';
import { machine } from '../bench/report.js';
import { auroc, shareInTop, uniform } from './metrics.js';
import { isMain, writeEvaluation } from './report.js';

export interface MislabelOptions {
  readonly epochs: number;
  readonly backend: string;
  /** Use only this many emails (a quick run). */
  readonly limit?: number;
  /**
   * The long regime: one run (optimizer-aware values and self-influence toward \`val\` only), for
   * enough epochs that the model starts to memorise the flipped labels. @defaultValue false
   */
  readonly long?: boolean;
}

export interface Ranker {
  readonly name: string;
  readonly auroc: number;
  /** Share of flipped labels among the 5/10/20% most suspicious. */
  readonly top: readonly [number, number, number];
}

export interface MislabelResult {
  readonly rows: number;
  readonly flippedShare: number;
  readonly testAccuracy: number;
  readonly rankers: readonly Ranker[];
  readonly seconds: { readonly sgd: number | null; readonly optimizer: number };
  /** Both runs trained the same weights (null with one run). */
  readonly sameTraining: boolean | null;
}

export async function mislabel(options: MislabelOptions): Promise<MislabelResult> {
  await tf.setBackend(options.backend);
  useFastEmbeddingGradient();
  const data = spamData(options.limit === undefined ? {} : { limit: options.limit, valSize: 100, testSize: 100 });
  const { seqLen } = data;
  const train = splitTensors(data.train, seqLen);
  const val = splitTensors(data.val, seqLen, data.val.emails.map((_, i) => i).slice(0, 128));
  const perClass = Math.min(64, ...[0, 1].map((c) => data.val.labels.filter((l) => l === c).length));
  const fair = splitTensors(data.val, seqLen, balanced(data.val, perClass));
  const ids = data.train.emails.map((e) => e.id);

  const once = async (update: 'sgd' | 'optimizer', methods: Method[]) => {
    const started = performance.now();
    const model = spamClassifier({ vocabSize: data.vocabulary.length, seqLen });
    const run = attach(model, { targets: options.long ? { val } : { val, balanced: fair }, methods, update, seed: 1, delivery: { stepRecords: false } });
    // The second loss baseline: each email's training loss after every epoch, averaged (one extra pass per epoch).
    const lossSum = new Float64Array(ids.length);
    const lossNow = () => tf.tidy(() => tf.metrics.binaryCrossentropy(train.ys, model.predict(train.xs) as tf.Tensor).dataSync() as Float32Array);
    await run.fit(train.xs, train.ys, {
      ids,
      epochs: options.epochs,
      batchSize: 32,
      verbose: 0,
      callbacks: { onEpochEnd: () => lossNow().forEach((v, i) => (lossSum[i]! += v)) },
    });
    const scores = await run.close();
    const seconds = (performance.now() - started) / 1000;
    // The loss baseline: each email's loss on its (possibly flipped) training label under the final model.
    const loss = lossNow();
    const test = splitTensors(data.test, seqLen);
    const accuracy = tf.tidy(() => tf.mean(tf.metrics.binaryAccuracy(test.ys, model.predict(test.xs) as tf.Tensor)).dataSync()[0]!);
    tf.dispose([test.xs, test.ys]);
    model.optimizer.dispose();
    model.dispose();
    return { scores, seconds, loss, meanLoss: lossSum, accuracy };
  };
  const sgd = options.long ? null : await once('sgd', ['shapley1', 'shapley2', 'tracin_self', 'tracin_we']);
  const opt = await once('optimizer', options.long ? ['shapley1', 'tracin_self'] : ['shapley1', 'shapley2', 'tracin_we']);

  const flipped = data.train.flipped;
  // Scores come in the run's id order; put them in data order.
  const inDataOrder = (s: Scores, column: string, sign: 1 | -1) => {
    const byId = new Map(s.ids.map((id, i) => [id, s.columns[column]![i]!]));
    return Float64Array.from(ids, (id) => sign * (byId.get(id) ?? 0));
  };
  const rank = (name: string, suspicion: ArrayLike<number>): Ranker => ({
    name,
    auroc: auroc(suspicion, flipped),
    top: [0.05, 0.1, 0.2].map((f) => shareInTop(suspicion, flipped, f)) as unknown as [number, number, number],
  });
  const random = uniform(7);
  const rankers: Ranker[] = [];
  for (const target of options.long ? ['val'] : ['val', 'balanced']) {
    for (const [label, s] of [
      ['SGD proxy', sgd?.scores],
      ['optimizer-aware', opt.scores],
    ] as const) {
      if (s === undefined) continue;
      for (const method of ['shapley1', 'shapley2', 'tracin_we'].filter((m) => s.columns[`${m}:${target}`] !== undefined)) {
        rankers.push(rank(`lowest ${method}:${target} (${label})`, inDataOrder(s, `${method}:${target}`, -1)));
      }
    }
  }
  rankers.push(rank('highest tracin_self', inDataOrder(sgd?.scores ?? opt.scores, 'tracin_self', 1)));
  rankers.push(rank('highest final training loss (baseline)', opt.loss));
  rankers.push(rank('highest training loss averaged over epochs (baseline, one extra pass per epoch)', opt.meanLoss));
  rankers.push(rank('random', Float64Array.from(ids, () => random())));
  tf.dispose([train.xs, train.ys, val.xs, val.ys, fair.xs, fair.ys]);
  return {
    rows: ids.length,
    flippedShare: flipped.reduce((s, f) => s + f, 0) / flipped.length,
    testAccuracy: opt.accuracy,
    rankers,
    seconds: { sgd: sgd?.seconds ?? null, optimizer: opt.seconds },
    sameTraining: sgd === null ? null : sgd.accuracy === opt.accuracy && sgd.loss.every((v, i) => v === opt.loss[i]),
  };
}

export function mislabelMarkdown(r: MislabelResult, options: MislabelOptions): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = r.rankers.map((k) => `| ${k.name} | ${k.auroc.toFixed(3)} | ${k.top.map(pct).join(' | ')} |`);
  const runs = options.long
    ? `One run with \`update: 'optimizer'\` (\`shapley1\`, \`tracin_self\`), ${r.seconds.optimizer.toFixed(0)} s.`
    : `The same training ran twice with the same seed, once per \`update\` choice (identical training: ${r.sameTraining ? 'yes' : 'NO'});
${r.seconds.sgd!.toFixed(0)} s and ${r.seconds.optimizer.toFixed(0)} s.`;
  const targets = options.long
    ? 'The target: `val`, 128 clean validation emails drawn like the data (about a third spam).'
    : 'Two targets: `val`, 128 clean validation emails drawn like the data (about a third spam), and `balanced`, up to 64 clean emails of each class.';
  return `## Mislabel detection${options.long ? `, ${options.epochs} epochs (the model starts to memorise)` : ''}

\`eval/mislabel.ts\`${options.long ? ' (`long: true`)' : ''}. Protocol: SpamAssassin (${r.rows} training emails after the validation and test
splits), ${pct(r.flippedShare)} of training labels flipped on purpose (seeded by email id); the demo's
classifier (Embedding(5000, 32) -> pooling -> Dense, Adam 0.005, batch 32, ${options.epochs} epochs, seed 1,
${options.backend} backend); test accuracy ${pct(r.testAccuracy)}. ${targets}
Each training email is ranked by each score, most suspicious first: lowest value for the values (a
flipped label should raise the clean target's loss), highest self-influence, highest loss. ${runs} ${machine()}.

| ranking | AUROC | flipped in top 5% | top 10% | top 20% |
|---|---|---|---|---|
${lines.join('\n')}

Flipped labels are ${pct(r.flippedShare)} of the set: a share above that in the top rows is enrichment.`;
}

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      epochs: { type: 'string', default: '3' },
      backend: { type: 'string', default: 'wasm' },
      limit: { type: 'string' },
      long: { type: 'boolean', default: false },
      out: { type: 'string', default: 'docs/evaluation.md' },
    },
  });
  const options: MislabelOptions = {
    epochs: Number(args.epochs),
    backend: args.backend,
    long: args.long,
    ...(args.limit === undefined ? {} : { limit: Number(args.limit) }),
  };
  const result = await mislabel(options);
  const markdown = mislabelMarkdown(result, options);
  console.log(markdown);
  writeEvaluation(args.out, options.long ? 'mislabel-long' : 'mislabel', markdown);
}
