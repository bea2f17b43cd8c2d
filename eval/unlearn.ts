/**
 * Unlearning against retraining from scratch. Data-level (RFA-LoRA's setting): a dense net on real
 * MNIST digits forgets a random 10% of its training rows, then a whole class; each method is compared
 * with the model retrained without those rows. Knowledge-level (Tan & Gong's setting): a text
 * classifier over SpamAssassin's 5 groups (fine labels; spam/ham coarse) forgets one group from a
 * few exemplars; Quality, Utility and Q-U against the original.
 *
 *   npx tsx eval/unlearn.ts [--rows 3000] [--epochs 8] [--backend wasm] [--out docs/evaluation.md]
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { membershipAuc, qualityUtility, unlearn, useFastEmbeddingGradient, type UnlearnOptions, type UnlearnResult } from 'inrun';
import { digitsData } from '../examples/digits-cnn.js';
import { splitTensors } from '../examples/spam-classifier.js';
import { spamData } from '../examples/spam-data.js';
import { machine } from '../bench/report.js';
import { lineChart, type Series } from '../bench/svg.js';
import { uniform } from './metrics.js';
import { isMain, writeEvaluation } from './report.js';
import { shuffle, trainSeeded } from './train.js';

export interface UnlearnEvalOptions {
  readonly backend: string;
  /** Digits training rows. @defaultValue 3000 */
  readonly rows?: number;
  /** Training epochs of the original and the retrained models. @defaultValue 8 */
  readonly epochs?: number;
  /** Unlearning epochs (passes over the forget rows). @defaultValue 5 */
  readonly unlearnEpochs?: number;
  /** Training epochs of the text classifier (knowledge-level). @defaultValue 6 */
  readonly textEpochs?: number;
  /** Emails used by the knowledge-level part (a quick run). @defaultValue all */
  readonly limit?: number;
  /** Seed of the data split, the initial weights and the batch order. @defaultValue 1 */
  readonly seed?: number;
  /** Data-level unlearning learning rate. @defaultValue 0.01 */
  readonly learningRate?: number;
  /** Data-level LoRA rank (alpha = 2 x rank). @defaultValue 2 */
  readonly rank?: number;
  /** Skip the knowledge-level part. */
  readonly dataOnly?: boolean;
}

interface Rows {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

/** One method (or the retrained model) on one data-level scenario. */
export interface DataRow {
  readonly method: string;
  readonly forgetAccuracy: number;
  readonly retainAccuracy: number;
  readonly testAccuracy: number;
  /** Test accuracy on the forgotten class (class scenario only). */
  readonly testForgetAccuracy: number | null;
  readonly mia: number;
  /** Mean L2 distance of the output probabilities to the retrained model's, on the forget rows. */
  readonly distance: number;
  readonly seconds: number;
  readonly trainableParams: number;
  readonly history: readonly { epoch: number; forgetLoss: number; retainLoss: number | null }[];
}

export interface DataScenario {
  readonly name: string;
  readonly forgetRows: number;
  readonly original: DataRow;
  readonly retrained: DataRow;
  readonly methods: readonly DataRow[];
  readonly params: number;
}

export interface KnowledgeRow {
  readonly method: string;
  readonly quality: number;
  readonly utility: number;
  readonly qu: number;
  readonly fine: number;
  readonly coarse: number;
  readonly others: number;
  readonly seconds: number;
}

export interface UnlearnEvalResult {
  readonly data: readonly DataScenario[];
  readonly knowledge: { readonly forgotten: string; readonly exemplars: number; readonly before: { fine: number; coarse: number; others: number }; readonly rows: readonly KnowledgeRow[] };
  readonly seconds: number;
}

/** Flatten -> Dense 64 relu -> Dense 10 softmax on 28 x 28 digits, seeded. */
function digitsMlp(seed: number): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28, 1] }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.003), loss: 'categoricalCrossentropy' });
  return model;
}

function pick(rows: Rows, idx: readonly number[]): Rows {
  return tf.tidy(() => {
    const i = tf.tensor1d([...idx], 'int32');
    return { xs: tf.gather(rows.xs, i), ys: tf.gather(rows.ys, i) };
  });
}

const accuracy = (m: tf.LayersModel, r: Rows) => tf.tidy(() => tf.mean(tf.metrics.categoricalAccuracy(r.ys, m.predict(r.xs) as tf.Tensor)).dataSync()[0]!);
const distance = (a: tf.LayersModel, b: tf.LayersModel, xs: tf.Tensor) =>
  tf.tidy(() => tf.mean(tf.norm(tf.sub(a.predict(xs) as tf.Tensor, b.predict(xs) as tf.Tensor), 'euclidean', 1)).dataSync()[0]!);

async function dataLevel(o: Required<Omit<UnlearnEvalOptions, 'limit' | 'dataOnly' | 'textEpochs'>>): Promise<DataScenario[]> {
  const train = digitsData({ rows: o.rows, seed: o.seed });
  const perClass = o.rows / 10;
  const heldOut = digitsData({ rows: 500, offset: perClass, seed: o.seed });
  const test = digitsData({ rows: 1000, offset: perClass + 50, seed: o.seed });
  const labels = Array.from(train.labels);
  const testLabels = Array.from(test.labels);
  const all = [...labels.keys()];
  const steps = (n: number) => o.epochs * Math.ceil(n / 32);
  const original = digitsMlp(o.seed);
  await trainSeeded(original, train, all, { steps: steps(all.length), seed: o.seed + 10 });
  const FORGOTTEN_CLASS = 7;
  const scenarios = [
    { name: 'random 10% of the rows', forget: shuffle(all, uniform(o.seed + 20)).slice(0, Math.round(o.rows / 10)), cls: null },
    { name: `class ${FORGOTTEN_CLASS}`, forget: all.filter((i) => labels[i] === FORGOTTEN_CLASS), cls: FORGOTTEN_CLASS },
  ];
  const out: DataScenario[] = [];
  for (const s of scenarios) {
    const dropped = new Set(s.forget);
    const keep = all.filter((i) => !dropped.has(i));
    const forget = pick(train, s.forget);
    const retain = pick(train, keep);
    // For a class: the test rows of the other classes, and the forgotten class's test rows apart.
    const testKept = s.cls === null ? test : pick(test, testLabels.flatMap((l, i) => (l !== s.cls ? [i] : [])));
    const testForgot = s.cls === null ? null : pick(test, testLabels.flatMap((l, i) => (l === s.cls ? [i] : [])));
    // Membership: forget rows against unseen rows like them (the same class for a class).
    const unseen = testForgot ?? test;
    const started = performance.now();
    const retrained = digitsMlp(o.seed);
    await trainSeeded(retrained, train, keep, { steps: steps(keep.length), seed: o.seed + 10 });
    const retrainSeconds = (performance.now() - started) / 1000;
    const row = (method: string, m: tf.LayersModel, seconds: number, trainableParams: number, history: DataRow['history']): DataRow => ({
      method,
      forgetAccuracy: accuracy(m, forget),
      retainAccuracy: accuracy(m, retain),
      testAccuracy: accuracy(m, testKept),
      testForgetAccuracy: testForgot === null ? null : accuracy(m, testForgot),
      mia: membershipAuc(m, forget, unseen),
      distance: distance(m, retrained, forget.xs),
      seconds,
      trainableParams,
      history,
    });
    const params = original.countParams();
    const base: Omit<UnlearnOptions, 'method'> = { forget, retain, epochs: o.unlearnEpochs, learningRate: o.learningRate, batchSize: 32, seed: o.seed, rank: o.rank, alpha: 2 * o.rank };
    // The bounded term's target: held-out losses for a random slice; for a class, the loss of a
    // model that gives the class about 1% (what retraining without it does: it never predicts it).
    const bounded: Partial<UnlearnOptions> = s.cls === null ? { heldOut } : { forgetLoss: Math.log(100) };
    const runs: [string, UnlearnOptions][] = [
      ['rfa-lora (bounded)', { ...base, method: 'rfa-lora', ...bounded }],
      // A weaker pull toward zero residual lets low-rank adapters reach rows that look like the rest.
      ['rfa-lora (bounded, retainWeight 0.01)', { ...base, method: 'rfa-lora', ...bounded, retainWeight: 0.01 }],
      ['rfa-lora (wrong label)', { ...base, method: 'rfa-lora', forgetTerm: 'wrong-label' }],
      ['gradient ascent', { ...base, method: 'gradient-ascent' }],
      ['fine-tune on retain', { ...base, method: 'fine-tune' }],
    ];
    const methods: DataRow[] = [];
    for (const [name, options] of runs) {
      const r: UnlearnResult = await unlearn(original, options);
      methods.push(row(name, r.model, r.metrics.seconds, r.metrics.trainableParams, r.metrics.history));
      r.model.dispose();
    }
    out.push({
      name: s.name,
      forgetRows: s.forget.length,
      original: row('original', original, 0, params, []),
      retrained: row('retrained without them', retrained, retrainSeconds, params, []),
      methods,
      params,
    });
    retrained.dispose();
    tf.dispose([forget.xs, forget.ys, retain.xs, retain.ys]);
    if (testForgot !== null) tf.dispose([testKept.xs, testKept.ys, testForgot.xs, testForgot.ys]);
  }
  original.dispose();
  tf.dispose([train.xs, train.ys, heldOut.xs, heldOut.ys, test.xs, test.ys]);
  return out;
}

const GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'];
const COARSE = [0, 0, 0, 1, 1];

async function knowledgeLevel(o: UnlearnEvalOptions & { seed: number; unlearnEpochs: number }): Promise<UnlearnEvalResult['knowledge']> {
  useFastEmbeddingGradient();
  const data = spamData({ flipRate: 0, seed: o.seed, ...(o.limit === undefined ? {} : { limit: o.limit, valSize: 100, testSize: Math.round(o.limit / 4) }) });
  const { seqLen } = data;
  const fine = (split: typeof data.train) => split.emails.map((e) => GROUPS.indexOf(e.group));
  const rowsOf = (split: typeof data.train, pickRows?: number[]) => {
    const { xs, ys } = splitTensors(split, seqLen, pickRows);
    const labels = fine(split);
    const chosen = pickRows ?? labels.map((_, i) => i);
    tf.dispose(ys);
    return { xs, ys: tf.tidy(() => tf.oneHot(tf.tensor1d(chosen.map((i) => labels[i]!), 'int32'), GROUPS.length).toFloat()) };
  };
  const train = rowsOf(data.train);
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: data.vocabulary.length, outputDim: 32, inputLength: seqLen, embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: o.seed }) }),
      tf.layers.globalAveragePooling1d(),
      tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: o.seed + 1 }) }),
      tf.layers.dense({ units: GROUPS.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: o.seed + 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.005), loss: 'categoricalCrossentropy' });
  const n = data.train.emails.length;
  await trainSeeded(model, train, [...Array(n).keys()], { steps: (o.textEpochs ?? 6) * Math.ceil(n / 32), seed: o.seed + 10 });

  const forgotten = 4; // spam-2: its sibling spam-1 shares the parent concept "spam"
  const trainFine = fine(data.train);
  const testFine = fine(data.test);
  const exemplarIdx = shuffle(trainFine.flatMap((l, i) => (l === forgotten ? [i] : [])), uniform(o.seed + 30)).slice(0, 64);
  const retainIdx = shuffle(trainFine.flatMap((l, i) => (l !== forgotten ? [i] : [])), uniform(o.seed + 31)).slice(0, 256);
  const exemplars = pick(train, exemplarIdx);
  const retain = pick(train, retainIdx);
  const test = rowsOf(data.test);
  const concept = pick(test, testFine.flatMap((l, i) => (l === forgotten ? [i] : [])));
  const others = pick(test, testFine.flatMap((l, i) => (l !== forgotten ? [i] : [])));
  const base = { forget: exemplars, forgetLabel: forgotten, coarseOf: COARSE, epochs: o.unlearnEpochs * 4, learningRate: 1e-3, batchSize: 16, seed: o.seed } as const;
  const runs: [string, UnlearnOptions][] = [
    ['hinge-kl (no retain rows)', { ...base, method: 'hinge-kl' }],
    ['hinge-kl + 256 retain rows', { ...base, method: 'hinge-kl', retain }],
    ['hinge-kl, LoRA adapters (rank 8, embedding included)', { ...base, method: 'hinge-kl', adapters: true, learningRate: 1e-2 }],
    ['rfa-lora + 256 retain rows (rank 8, embedding included)', { ...base, method: 'rfa-lora', retain, forgetLoss: Math.log(100), learningRate: 1e-2 }],
    ['gradient ascent', { ...base, method: 'gradient-ascent' }],
    ['fine-tune on 256 retain rows', { ...base, method: 'fine-tune', retain }],
  ];
  const rows: KnowledgeRow[] = [];
  let before = { fine: 0, coarse: 0, others: 0 };
  for (const [method, options] of runs) {
    const r = await unlearn(model, options);
    const q = qualityUtility(model, r.model, { concept, others, forgetLabel: forgotten, coarseOf: COARSE });
    before = { fine: q.fineAccuracy.before, coarse: q.coarseAccuracy.before, others: q.othersAccuracy.before };
    rows.push({ method, quality: q.quality, utility: q.utility, qu: q.qu, fine: q.fineAccuracy.after, coarse: q.coarseAccuracy.after, others: q.othersAccuracy.after, seconds: r.metrics.seconds });
    r.model.dispose();
  }
  model.dispose();
  tf.dispose([train.xs, train.ys, exemplars.xs, exemplars.ys, retain.xs, retain.ys, test.xs, test.ys, concept.xs, concept.ys, others.xs, others.ys]);
  return { forgotten: GROUPS[forgotten]!, exemplars: exemplarIdx.length, before, rows };
}

export async function unlearnEval(options: UnlearnEvalOptions): Promise<UnlearnEvalResult> {
  const started = performance.now();
  await tf.setBackend(options.backend);
  const o = { backend: options.backend, rows: options.rows ?? 3000, epochs: options.epochs ?? 8, unlearnEpochs: options.unlearnEpochs ?? 5, seed: options.seed ?? 1, learningRate: options.learningRate ?? 0.01, rank: options.rank ?? 2 };
  const data = await dataLevel(o);
  const knowledge = options.dataOnly === true ? { forgotten: '', exemplars: 0, before: { fine: 0, coarse: 0, others: 0 }, rows: [] } : await knowledgeLevel({ ...options, seed: o.seed, unlearnEpochs: o.unlearnEpochs });
  return { data, knowledge, seconds: (performance.now() - started) / 1000 };
}

const pct = (v: number) => `${(v * 100).toFixed(1)}`;

export function unlearnMarkdown(r: UnlearnEvalResult, options: UnlearnEvalOptions, svgs: readonly string[]): string {
  const seed = options.seed ?? 1;
  const data = r.data.map((s, k) => {
    const byClass = s.methods[0]!.testForgetAccuracy !== null;
    const header = ['model', 'forget acc %', 'retain acc %', byClass ? 'test acc % (other classes)' : 'test acc %', ...(byClass ? ['test acc % (forgotten class)'] : []), 'MIA AUC', 'distance to retrained', 'seconds', 'faster than retraining', 'trainable params'];
    const rows = [s.original, s.retrained, ...s.methods].map((m) => {
      const speed = m === s.original ? '-' : `${(s.retrained.seconds / Math.max(m.seconds, 1e-9)).toFixed(0)}x`;
      const cells = [m.method, pct(m.forgetAccuracy), pct(m.retainAccuracy), pct(m.testAccuracy), ...(byClass ? [pct(m.testForgetAccuracy!)] : []), m.mia.toFixed(3), m.distance.toFixed(3), m === s.original ? '-' : m.seconds.toFixed(2), speed, `${m.trainableParams} (${((m.trainableParams / s.params) * 100).toFixed(1)}%)`];
      return `| ${cells.join(' | ')} |`;
    });
    return `### Forget ${s.name} (${s.forgetRows} rows; seed ${seed})

| ${header.join(' | ')} |
|${header.map(() => '---').join('|')}|
${rows.join('\n')}

![forget and retain loss per unlearning epoch, ${s.name}](${svgs[k]!})`;
  });
  const k = r.knowledge;
  const krows = k.rows.map((x) => `| ${x.method} | ${(x.quality * 100).toFixed(1)} | ${(x.utility * 100).toFixed(1)} | **${(x.qu * 100).toFixed(1)}** | ${pct(x.fine)} | ${pct(x.coarse)} | ${pct(x.others)} | ${x.seconds.toFixed(2)} |`);
  return `## Unlearning against retraining

\`eval/unlearn.ts\` (\`unlearn()\`, docs/unlearning.md). ${options.backend} backend; ${r.seconds.toFixed(0)} s in all. ${machine()}.

**Data-level** (RFA-LoRA's setting). ${options.rows ?? 3000} real MNIST digits (the \`mnist\` package), a dense net
(Flatten, Dense 64 relu, Dense 10 softmax; ${r.data[0]!.params} parameters; Adam 0.003, batch 32, ${options.epochs ?? 8} epochs
in a seeded order, seed ${seed}). A dense net, not the digits CNN: wasm has no conv gradient kernel and the CNN's
retraining on cpu takes minutes per epoch on this machine; the Conv2D adapters are tested in test/unlearn.test.ts. Ground truth: the same net retrained from the same initial weights without the
forget rows, for the same number of epochs. Every method unlearns from the trained model for ${options.unlearnEpochs ?? 5} passes over the
forget rows (batch 32, each step also 32 retain rows; Adam 1e-3; rank 8, alpha 16, adapters on both Dense layers,
merged). Test rows are 1,000 digits no model trained on; the membership-inference AUC is the loss-threshold attack on
forget rows against unseen rows (the forgotten class's test rows in the class scenario); retraining's AUC is the target.
Distance: mean L2 distance between the output probabilities and the retrained model's, on the forget rows.
Seconds: unlearning steps only (retraining: its whole training). The bounded forget term's target: the held-out
losses of the same rank (500 held-out digits) for the random slice, \`forgetLoss: ln 100\` for the class.

${data.join('\n\n')}

**Knowledge-level** (Tan & Gong's setting). SpamAssassin, 5 groups as fine labels (${GROUPS.join(', ')}),
spam/ham as coarse labels; a text classifier (Embedding 32, average pooling, Dense 32 relu, Dense 5 softmax; Adam 0.005,
${options.textEpochs ?? 6} epochs, seed ${seed}). The request: forget \`${k.forgotten}\` from ${k.exemplars} training exemplars (\`forgetLabel\`, \`coarseOf\`
= [${COARSE.join(', ')}]); keep spam as spam. ${(options.unlearnEpochs ?? 5) * 4} passes over the exemplars, batch 16,
Adam 1e-3 (1e-2 for the adapter rows), full-parameter unless the row says LoRA, hinge margin 2, KL weights 20/20. Measured on the test split: Quality = relative drop of
fine accuracy on \`${k.forgotten}\`; Utility = mean of the kept ratios (capped at 1) of coarse accuracy on it and fine accuracy
on the other groups; Q-U = their harmonic mean (x 100). Before unlearning: fine accuracy on \`${k.forgotten}\` ${pct(k.before.fine)}%,
coarse ${pct(k.before.coarse)}%, other groups ${pct(k.before.others)}%. The paper (CLIP) reports hinge+KL 95.2 and gradient
ascent 11.85; compare methods on this task, not with those numbers.

| method | Quality | Utility | Q-U | fine acc on it % | coarse acc on it % | acc on other groups % | seconds |
|---|---|---|---|---|---|---|---|
${krows.join('\n')}`;
}

/** Writes one forget/retain loss chart per data-level scenario; returns the file names. */
export function writeUnlearnPlots(r: UnlearnEvalResult, folder: string, seed = 1): string[] {
  return r.data.map((s, k) => {
    const name = `unlearn-${k === 0 ? 'random' : 'class'}.svg`;
    const series: Series[] = s.methods.flatMap((m) => [
      { name: `${m.method}: forget`, points: m.history.filter((h) => h.epoch > 0).map((h) => [h.epoch, h.forgetLoss] as const) },
      { name: `${m.method}: retain`, points: m.history.filter((h) => h.epoch > 0 && h.retainLoss !== null).map((h) => [h.epoch, h.retainLoss!] as const) },
    ]);
    writeFileSync(
      join(folder, name),
      lineChart(series, { title: `Unlearning ${s.name}: loss per epoch (seed ${seed})`, xLabel: 'unlearning epoch (log scale)', yLabel: 'mean loss' }),
    );
    return name;
  });
}

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      rows: { type: 'string', default: '3000' },
      epochs: { type: 'string', default: '8' },
      backend: { type: 'string', default: 'wasm' },
      out: { type: 'string', default: 'docs/evaluation.md' },
    },
  });
  const options: UnlearnEvalOptions = { backend: args.backend, rows: Number(args.rows), epochs: Number(args.epochs) };
  const result = await unlearnEval(options);
  const svgs = writeUnlearnPlots(result, dirname(args.out));
  const markdown = unlearnMarkdown(result, options, svgs);
  console.log(markdown);
  writeEvaluation(args.out, 'unlearn', markdown);
}
