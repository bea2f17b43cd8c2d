/**
 * Unlearning against retraining from scratch, with the documented defaults (a request and nothing
 * else: `{ forget, retain, heldOut }`) and, in a second table, with the best tuned settings.
 * Data-level (RFA-LoRA's setting): a random 10% of the training rows, then a whole class, on three
 * models (the MNIST dense net on wasm, the digits CNN on cpu, the SpamAssassin 5-group text classifier
 * on wasm); each result compared with the model retrained without those rows. Knowledge-level (Tan &
 * Gong's setting): the text classifier forgets one group from a few exemplars, keeping spam as spam;
 * Quality, Utility and Q-U against the original. Every cell over 3 seeds (data order, initial
 * weights, forget slice); the markdown is rewritten after each task, so a cut-short run keeps its rows.
 *
 *   npx tsx eval/unlearn.ts [--tasks mlp,text,cnn,knowledge] [--seeds 1,2,3] [--out docs/evaluation.md] [--json result.json]
 *   npx tsx eval/unlearn.ts --render result.json   (rewrite the markdown from a saved result)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { membershipAuc, qualityUtility, unlearn, useFastEmbeddingGradient, type UnlearnOptions } from 'inrun';
import { digitsCnn, digitsData } from '../examples/digits-cnn.js';
import { splitTensors } from '../examples/spam-classifier.js';
import { spamData, type SplitRows } from '../examples/spam-data.js';
import { machine } from '../bench/report.js';
import { uniform } from './metrics.js';
import { isMain, writeEvaluation } from './report.js';
import { shuffle, trainSeeded } from './train.js';

interface Rows {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

/** Rows with their class ids. */
interface Labelled extends Rows {
  labels: number[];
}

/** One of the evaluation's models: how to build and train it, and its data. */
interface Task {
  readonly key: string;
  readonly name: string;
  readonly backend: 'wasm' | 'cpu';
  readonly describe: string;
  readonly build: (seed: number) => tf.LayersModel;
  readonly epochs: number;
  readonly train: Labelled;
  /** Rows no model trains on, given as `heldOut` (the user's validation split). */
  readonly heldOut: Labelled;
  readonly test: Labelled;
  readonly forgetClass: number;
  readonly className: string;
}

/** One model's numbers on one scenario and seed. */
export interface Cell {
  readonly method: string;
  readonly forget: number;
  readonly retain: number;
  /** Test accuracy (other classes' rows for a class). */
  readonly test: number;
  /** Test accuracy on the forgotten class (class scenario). */
  readonly testForgot: number | null;
  readonly mia: number;
  readonly seconds: number;
  /** Unlearning: where it stopped (epoch and reason), from `metrics.stopped`. */
  readonly stopped: string;
}

export interface ScenarioRun {
  readonly task: string;
  readonly scenario: 'random 10%' | 'class';
  readonly seed: number;
  readonly forgetRows: number;
  readonly cells: readonly Cell[];
}

export interface KnowledgeRun {
  readonly seed: number;
  readonly before: { fine: number; coarse: number; others: number };
  readonly rows: readonly { method: string; qu: number; quality: number; utility: number; seconds: number; stopped: string }[];
}

const pick = (rows: Rows, idx: readonly number[]): Rows =>
  tf.tidy(() => {
    const i = tf.tensor1d([...idx], 'int32');
    return { xs: tf.gather(rows.xs, i), ys: tf.gather(rows.ys, i) };
  });
const accuracy = (m: tf.LayersModel, r: Rows) => tf.tidy(() => tf.mean(tf.metrics.categoricalAccuracy(r.ys, m.predict(r.xs, { batchSize: 256 }) as tf.Tensor)).dataSync()[0]!);

/** The rows whose label passes `keep`, with their labels. */
function where(rows: Labelled, keep: (label: number) => boolean): Labelled {
  const idx = rows.labels.flatMap((l, i) => (keep(l) ? [i] : []));
  return { ...pick(rows, idx), labels: idx.map((i) => rows.labels[i]!) };
}

/** Smaller data and fewer epochs (the harness test's tiny configuration). */
export interface EvalSizes {
  readonly digitRows?: number;
  readonly epochs?: number;
  /** Emails used by the text tasks. */
  readonly textLimit?: number;
}

function digitTask(key: string, name: string, backend: 'wasm' | 'cpu', fullRows: number, fullEpochs: number, build: (seed: number) => tf.LayersModel, describe: string): (sizes: EvalSizes) => Task {
  return (sizes) => {
    const rows = sizes.digitRows ?? fullRows;
    const epochs = sizes.epochs ?? fullEpochs;
    const perClass = rows / 10;
    const asLabelled = (d: ReturnType<typeof digitsData>): Labelled => ({ xs: d.xs, ys: d.ys, labels: Array.from(d.labels) });
    return {
      key,
      name,
      backend,
      describe,
      build,
      epochs,
      train: asLabelled(digitsData({ rows, seed: 1 })),
      ...validationAndTest(digitsData({ rows: 2000, offset: perClass, seed: 1 })),
      forgetClass: 7,
      className: 'digit 7',
    };
  };
}

/**
 * The digits after the training rows, split as a user's random split would be: alternate runs of ten
 * digits (one per class) go to `heldOut` (the validation split) and to the test split, so both come from
 * the same stretch of MNIST (accuracy differs by up to 7 points between stretches of 500 digits).
 */
function validationAndTest(d: ReturnType<typeof digitsData>): { heldOut: Labelled; test: Labelled } {
  const half = (parity: number): Labelled => {
    const idx = [...d.labels.keys()].filter((r) => Math.floor(r / 10) % 2 === parity);
    return { ...pick(d, idx), labels: idx.map((i) => d.labels[i]!) };
  };
  const split = { heldOut: half(0), test: half(1) };
  tf.dispose([d.xs, d.ys]);
  return split;
}

/** Flatten -> Dense 64 relu -> Dense 10 softmax on 28 x 28 digits, seeded. */
function digitsMlp(seed: number): tf.LayersModel {
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

export const GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'];
export const COARSE = [0, 0, 0, 1, 1];

function textTask(sizes: EvalSizes): Task {
  useFastEmbeddingGradient();
  const limit = sizes.textLimit;
  const data = spamData({ flipRate: 0, seed: 1, ...(limit === undefined ? {} : { limit, valSize: Math.round(limit / 4), testSize: Math.round(limit / 4) }) });
  const rowsOf = (split: SplitRows): Labelled => {
    const { xs, ys } = splitTensors(split, data.seqLen);
    tf.dispose(ys);
    const labels = split.emails.map((e) => GROUPS.indexOf(e.group));
    return { xs, ys: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), GROUPS.length).toFloat()), labels };
  };
  const build = (seed: number) => {
    const model = tf.sequential({
      layers: [
        tf.layers.embedding({ inputDim: data.vocabulary.length, outputDim: 32, inputLength: data.seqLen, embeddingsInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed }) }),
        tf.layers.globalAveragePooling1d(),
        tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
        tf.layers.dense({ units: GROUPS.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }) }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.005), loss: 'categoricalCrossentropy' });
    return model;
  };
  return {
    key: 'text',
    name: 'SpamAssassin text classifier',
    backend: 'wasm',
    describe: `SpamAssassin's 5 groups as classes (${GROUPS.join(', ')}); Embedding 32, average pooling, Dense 32 relu, Dense 5 softmax; Adam 0.005, 6 epochs; ${data.train.emails.length} training emails, the 400 validation emails as \`heldOut\`, 600 test emails`,
    build,
    epochs: sizes.epochs ?? 6,
    train: rowsOf(data.train),
    heldOut: rowsOf(data.val),
    test: rowsOf(data.test),
    forgetClass: 4,
    className: 'group spam-2',
  };
}

const TASKS: Readonly<Record<string, (sizes: EvalSizes) => Task>> = {
  mlp: digitTask('mlp', 'MNIST dense net', 'wasm', 3000, 8, digitsMlp, '3000 real MNIST digits (the `mnist` package); Flatten, Dense 64 relu, Dense 10 softmax (50,890 parameters); Adam 0.003, 8 epochs; the next 2,000 digits split alternately into 1,000 for `heldOut` (validation) and 1,000 test digits'),
  cnn: digitTask('cnn', 'digits CNN', 'cpu', 1000, 4, (seed) => digitsCnn({ seed }), '1000 MNIST digits; the digits CNN of examples/digits-cnn.ts (Conv 8, Conv 16 stride 2, Dense 10; about 25k parameters) on the cpu backend; Adam 0.003, 4 epochs; the next 2,000 digits split alternately into 1,000 for `heldOut` (validation) and 1,000 test digits'),
  text: textTask,
};

/** The rows each unlearning run gets: the defaults get the request alone; tuned rows add settings. */
function runsFor(cls: boolean): [string, 'defaults' | 'tuned', Partial<UnlearnOptions>][] {
  return [
    ['rfa-lora', 'defaults', {}],
    ['gradient-ascent', 'defaults', { method: 'gradient-ascent' }],
    ['fine-tune', 'defaults', { method: 'fine-tune' }],
    // The best fixed settings of the earlier evaluation (MNIST): rank 2, Adam 1e-2, a weak retain term, 5 epochs, no calibration.
    ['rfa-lora, rank 2, lr 1e-2, retainWeight 0.01, 5 epochs', 'tuned', { rank: 2, alpha: 4, learningRate: 0.01, retainWeight: 0.01, calibrate: false, epochs: 5, ...(cls ? { forgetLoss: Math.log(100) } : {}) }],
    ['rfa-lora calibrated, lr 1e-2', 'tuned', { learningRate: 0.01 }],
  ];
}

async function dataLevel(task: Task, seed: number): Promise<ScenarioRun[]> {
  const all = [...task.train.labels.keys()];
  const steps = (n: number) => task.epochs * Math.ceil(n / 32);
  const original = task.build(seed);
  await trainSeeded(original, task.train, all, { steps: steps(all.length), seed: seed + 10 });
  const out: ScenarioRun[] = [];
  for (const cls of [false, true]) {
    const forgetIdx = cls ? all.filter((i) => task.train.labels[i] === task.forgetClass) : shuffle(all, uniform(seed + 20)).slice(0, Math.round(all.length / 10));
    const dropped = new Set(forgetIdx);
    const keep = all.filter((i) => !dropped.has(i));
    const forget = pick(task.train, forgetIdx);
    const retain = pick(task.train, keep);
    const testKept = cls ? where(task.test, (l) => l !== task.forgetClass) : task.test;
    const testForgot = cls ? where(task.test, (l) => l === task.forgetClass) : null;
    const unseen = testForgot ?? task.test;
    const started = performance.now();
    const retrained = task.build(seed);
    await trainSeeded(retrained, task.train, keep, { steps: steps(keep.length), seed: seed + 10 });
    const retrainSeconds = (performance.now() - started) / 1000;
    const cell = async (method: string, m: tf.LayersModel, seconds: number, stopped: string): Promise<Cell> => ({
      method,
      forget: accuracy(m, forget),
      retain: accuracy(m, retain),
      test: accuracy(m, testKept),
      testForgot: testForgot === null ? null : accuracy(m, testForgot),
      mia: await membershipAuc(m, forget, unseen),
      seconds,
      stopped,
    });
    const cells = [await cell('original', original, 0, ''), await cell('retrained', retrained, retrainSeconds, '')];
    retrained.dispose();
    for (const [name, table, options] of runsFor(cls)) {
      const r = await unlearn(original, { forget, retain, heldOut: task.heldOut, seed, ...options });
      const c = r.metrics.calibration;
      const stopped = `${r.metrics.stopped.reason} @${r.metrics.stopped.epoch}${c === null ? '' : `, kept ${c.kept.epoch}`}`;
      cells.push(await cell(`${table}: ${name}`, r.model, r.metrics.seconds, stopped));
      r.model.dispose();
    }
    out.push({ task: task.key, scenario: cls ? 'class' : 'random 10%', seed, forgetRows: forgetIdx.length, cells });
    tf.dispose([forget.xs, forget.ys, retain.xs, retain.ys]);
    if (testForgot !== null) tf.dispose([testKept.xs, testKept.ys, testForgot.xs, testForgot.ys]);
  }
  original.dispose();
  return out;
}

/** Knowledge level on the text task: forget group spam-2 from 64 training exemplars, keep spam as spam. */
async function knowledgeLevel(task: Task, seed: number): Promise<KnowledgeRun> {
  const all = [...task.train.labels.keys()];
  const model = task.build(seed);
  await trainSeeded(model, task.train, all, { steps: task.epochs * Math.ceil(all.length / 32), seed: seed + 10 });
  const f = task.forgetClass;
  const exemplarIdx = shuffle(all.filter((i) => task.train.labels[i] === f), uniform(seed + 30)).slice(0, 64);
  const retainIdx = shuffle(all.filter((i) => task.train.labels[i] !== f), uniform(seed + 31)).slice(0, 256);
  const exemplars = pick(task.train, exemplarIdx);
  const retain = pick(task.train, retainIdx);
  // The concept's held-out exemplars (stop test of hinge-kl) come from the validation split; Q-U is measured on the test split.
  const heldOut = where(task.heldOut, (l) => l === f);
  const concept = where(task.test, (l) => l === f);
  const others = where(task.test, (l) => l !== f);
  const request = { forget: exemplars, forgetLabel: f, coarseOf: COARSE };
  const runs: [string, UnlearnOptions][] = [
    ['defaults: hinge-kl', { ...request, method: 'hinge-kl', heldOut, seed }],
    ['defaults: gradient-ascent', { ...request, method: 'gradient-ascent', seed }],
    ['tuned: hinge-kl, LoRA adapters, lr 1e-2, batch 16, 20 epochs', { ...request, method: 'hinge-kl', adapters: true, learningRate: 1e-2, batchSize: 16, epochs: 20, stopWhenForgotten: false, seed }],
    ['tuned: hinge-kl + 256 retain rows, batch 16, 20 epochs', { ...request, method: 'hinge-kl', retain, batchSize: 16, epochs: 20, stopWhenForgotten: false, seed }],
  ];
  const rows: KnowledgeRun['rows'][number][] = [];
  let before = { fine: 0, coarse: 0, others: 0 };
  for (const [method, options] of runs) {
    const r = await unlearn(model, options);
    const q = await qualityUtility(model, r.model, { concept, others, forgetLabel: f, coarseOf: COARSE });
    before = { fine: q.fineAccuracy.before, coarse: q.coarseAccuracy.before, others: q.othersAccuracy.before };
    rows.push({ method, qu: q.qu, quality: q.quality, utility: q.utility, seconds: r.metrics.seconds, stopped: `${r.metrics.stopped.reason} @${r.metrics.stopped.epoch}` });
    r.model.dispose();
  }
  model.dispose();
  tf.dispose([exemplars.xs, exemplars.ys, retain.xs, retain.ys, heldOut.xs, heldOut.ys, concept.xs, concept.ys, others.xs, others.ys]);
  return { seed, before, rows };
}

export interface UnlearnEvalResult {
  readonly tasks: { key: string; name: string; backend: string; describe: string; className: string }[];
  readonly data: ScenarioRun[];
  readonly knowledge: KnowledgeRun[];
  readonly missing: string[];
  seconds: number;
}

/** Mean and range over seeds: `m (lo-hi)`. */
function spread(values: readonly number[], scale = 100, digits = 1): string {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const f = (v: number) => (v * scale).toFixed(digits);
  return values.length === 1 ? f(mean) : `${f(mean)} (${f(Math.min(...values))}-${f(Math.max(...values))})`;
}

/** Per seed: does a cell meet the data-level goals against its seed's original and retrained models? */
function goals(c: Cell, original: Cell, retrained: Cell): { test: boolean; forget: boolean; retain: boolean; mia: boolean; speed: number } {
  const forgetOk = Math.abs(c.forget - retrained.forget) <= 0.02 && (c.testForgot === null || Math.abs(c.testForgot - retrained.testForgot!) <= 0.02);
  return { test: Math.abs(c.test - retrained.test) <= 0.02, forget: forgetOk, retain: Math.abs(c.retain - original.retain) <= 0.02, mia: Math.abs(c.mia - retrained.mia) <= 0.05, speed: retrained.seconds / Math.max(c.seconds, 1e-9) };
}

/** The goals, per task and scenario for the defaults' rfa-lora and per seed for hinge-kl, in words. */
function goalSummary(r: UnlearnEvalResult): string {
  const lines: string[] = [];
  for (const task of r.tasks) {
    for (const scenario of ['random 10%', 'class'] as const) {
      const runs = r.data.filter((d) => d.task === task.key && d.scenario === scenario);
      if (runs.length === 0) continue;
      const met = runs.map((run) => goals(run.cells.find((c) => c.method === 'defaults: rfa-lora')!, run.cells[0]!, run.cells[1]!));
      const count = (k: 'test' | 'forget' | 'retain' | 'mia') => `${k} ${met.filter((g) => g[k]).length}/${runs.length}`;
      const all = met.filter((g) => g.test && g.forget && g.retain && g.mia).length;
      const speed = met.map((g) => g.speed);
      const retrain = spread(runs.map((run) => run.cells[1]!.seconds), 1, 1);
      lines.push(`- ${task.name}, ${scenario === 'class' ? task.className : 'random 10%'}: all goals on **${all}/${runs.length}** seeds (${['test', 'forget', 'retain', 'mia'].map((k) => count(k as 'test')).join(', ')}); ${spread(speed, 1, 1)}x faster than retraining (retraining ${retrain} s).`);
    }
  }
  if (r.knowledge.length > 0) {
    const qu = (run: KnowledgeRun, m: string) => run.rows.find((x) => x.method === m)!.qu;
    const ok = r.knowledge.filter((k) => qu(k, 'defaults: hinge-kl') >= 0.95).length;
    const above = r.knowledge.filter((k) => qu(k, 'defaults: hinge-kl') > qu(k, 'defaults: gradient-ascent')).length;
    lines.push(`- Knowledge level (defaults' hinge-kl): Q-U >= 95 on **${ok}/${r.knowledge.length}** seeds, above gradient ascent on **${above}/${r.knowledge.length}** (per seed: ${r.knowledge.map((k) => `${(100 * qu(k, 'defaults: hinge-kl')).toFixed(1)} vs ${(100 * qu(k, 'defaults: gradient-ascent')).toFixed(1)}`).join('; ')}).`);
  }
  const text = !r.tasks.some((t) => t.key === 'text')
    ? ''
    : `\n- Text: not met. The classifier memorised its training emails (training accuracy about 98%, held-out 83%); on a random slice every rfa-lora step that lowered the forget rows' accuracy lowered the retain and held-out rows' with it (adapters on the embedding table generalise), so the guard and the step-backs kept the forget accuracy at 95.6-98.6% against retraining's 81% (seed 1: the input model came back, the forget rows did not move, and \`unlearn\` warns so). For spam-2 the class is gone on every seed (0.0%), but the other groups' test accuracy is 2.1 points under the retrained model's on two seeds (it gains from no longer having spam-2 to confuse) and retain accuracy 2.6 under the original's on one. Retraining is the better tool there (docs/unlearning.md).`;
  const cnn = r.tasks.some((t) => t.key === 'cnn') ? '' : `\n- **The digits CNN was not run**: on this machine's two shared cores it took 340 s an epoch on the cpu backend (tf.js 4.22 on wasm has no Conv2DBackpropFilter), so one seed (the original and two retrained models, 4 epochs each, plus the unlearning runs) is over an hour; \`npx tsx eval/unlearn.ts --tasks cnn --seeds 1\` runs it.`;
  return `**Goals with defaults only** (rfa-lora, per seed; the goals are listed above):

${lines.join('\n')}${text}${cnn}
- Speed: the 10x goal means little on these models. The MNIST dense net (50,890 parameters, 3,000 rows) and the text classifier retrain in seconds to tens of seconds here, and part of unlearning's time is fixed (copying the model, wrapping adapters, the calibration's checks after every epoch); unlearning's cost grows with the forget set and retraining's with the training set, so the ratio favours unlearning on a larger model and data set. Timings come from a machine shared with other jobs (retraining the text model took 5-33 s across seeds): read the ratios as rough.`;
}

export function unlearnMarkdown(r: UnlearnEvalResult): string {
  const sections: string[] = [];
  for (const table of ['defaults', 'tuned'] as const) {
    const lines: string[] = [];
    for (const task of r.tasks) {
      for (const scenario of ['random 10%', 'class'] as const) {
        const runs = r.data.filter((d) => d.task === task.key && d.scenario === scenario);
        if (runs.length === 0) continue;
        const names = runs[0]!.cells.map((c) => c.method).filter((m) => m === 'original' || m === 'retrained' || m.startsWith(`${table}:`));
        const cls = scenario === 'class';
        const header = ['model', 'forget acc %', 'retain acc %', cls ? 'test acc % (other classes)' : 'test acc %', ...(cls ? ['test acc % (forgotten class)'] : []), 'MIA AUC', 'seconds', 'x faster than retraining', 'goals met (seeds)', 'stopped (seed 1)'];
        const body = names.map((name) => {
          const cells = runs.map((run) => run.cells.find((c) => c.method === name)!);
          const met = runs.map((run) => goals(run.cells.find((c) => c.method === name)!, run.cells[0]!, run.cells[1]!));
          const isModel = name === 'original' || name === 'retrained';
          const all = met.filter((g) => g.test && g.forget && g.retain && g.mia).length;
          const row = [
            name.replace(`${table}: `, ''),
            spread(cells.map((c) => c.forget)),
            spread(cells.map((c) => c.retain)),
            spread(cells.map((c) => c.test)),
            ...(cls ? [spread(cells.map((c) => c.testForgot!))] : []),
            spread(cells.map((c) => c.mia), 1, 3),
            name === 'original' ? '-' : spread(cells.map((c) => c.seconds), 1, 2),
            isModel ? '-' : spread(met.map((g) => g.speed), 1, 0),
            isModel ? '-' : `${all}/${runs.length}: test ${met.filter((g) => g.test).length}, forget ${met.filter((g) => g.forget).length}, retain ${met.filter((g) => g.retain).length}, MIA ${met.filter((g) => g.mia).length}`,
            cells[0]!.stopped || '-',
          ];
          return `| ${row.join(' | ')} |`;
        });
        lines.push(`**${task.name}, forget ${scenario === 'class' ? task.className : 'a random 10% of the rows'}** (${runs[0]!.forgetRows} rows; seeds ${runs.map((x) => x.seed).join(', ')})

| ${header.join(' | ')} |
|${header.map(() => '---').join('|')}|
${body.join('\n')}`);
      }
    }
    sections.push(`### ${table === 'defaults' ? 'Defaults only' : 'Tuned settings'}\n\n${lines.join('\n\n')}`);
  }
  const krows = r.knowledge.length === 0 ? [] : r.knowledge[0]!.rows.map((row, k) => {
    const per = r.knowledge.map((run) => run.rows[k]!);
    const beatsGa = per.filter((x, i) => x.qu > r.knowledge[i]!.rows.find((y) => y.method === 'defaults: gradient-ascent')!.qu).length;
    return `| ${row.method} | ${spread(per.map((x) => x.quality))} | ${spread(per.map((x) => x.utility))} | **${spread(per.map((x) => x.qu))}** | ${per.map((x) => (x.qu * 100).toFixed(1)).join(' / ')} | ${per.filter((x) => x.qu >= 0.95).length}/${per.length} | ${beatsGa}/${per.length} | ${spread(per.map((x) => x.seconds), 1, 2)} | ${per[0]!.stopped} |`;
  });
  const summary = goalSummary(r);
  const before = r.knowledge.map((k) => `seed ${k.seed}: fine ${(k.before.fine * 100).toFixed(1)}%, coarse ${(k.before.coarse * 100).toFixed(1)}%, other groups ${(k.before.others * 100).toFixed(1)}%`).join('; ');
  const tasks = r.tasks.map((t) => `- **${t.name}** (${t.backend}): ${t.describe}.`).join('\n');
  return `## Unlearning against retraining

\`eval/unlearn.ts\` (\`unlearn()\`, docs/unlearning.md). ${r.seconds.toFixed(0)} s in all. ${machine()}.
Each cell is the mean over seeds with the range in brackets; a seed changes the initial weights, the training order
and the random slice. Ground truth: the same net retrained from the same initial weights without the forget rows, for
the same number of epochs. **Defaults only**: \`unlearn(model, { forget, retain, heldOut })\` and the method's name, nothing
else (the calibrated forget strength, docs/unlearning.md#calibration). **Tuned**: the best settings found by hand.
Test rows: rows no model trained on; for a class, the other classes' test rows, and the class's own apart. MIA AUC:
the loss-threshold attack on forget rows against unseen rows (the forgotten class's test rows for a class);
retraining's AUC is the target. Seconds: unlearning, its calibration checks included (retraining: its whole training).
Goals per seed: test and forget accuracy within 2 points of the retrained model (for a class, the forgotten class's
test accuracy too), retain within 2 points of the original, MIA AUC within 0.05 of retraining's.
${r.missing.length === 0 ? '' : `\n**Not run** (time): ${r.missing.join(', ')}.\n`}
${tasks}

${summary}

${sections.join('\n\n')}

### Knowledge level

SpamAssassin text classifier (above), per seed. The request: forget \`spam-2\` from 64 training exemplars
(\`forgetLabel: 4\`, \`coarseOf: [${COARSE.join(', ')}]\`), keep spam as spam. **Defaults**: \`unlearn(model, { forget,
forgetLabel, coarseOf, heldOut, method: 'hinge-kl' })\` with the validation split's spam-2 emails as \`heldOut\` (the stop
test's exemplars), and gradient ascent on the same request. Measured on the test split: Quality = relative drop of fine
accuracy on \`spam-2\`; Utility = mean of the kept ratios (capped at 1) of coarse accuracy on it and fine accuracy on the
other groups; Q-U = their harmonic mean (x 100). Before unlearning: ${before}.

| method | Quality | Utility | Q-U | Q-U per seed | seeds >= 95 | seeds above gradient ascent | seconds | stopped (seed 1) |
|---|---|---|---|---|---|---|---|---|
${krows.join('\n')}`;
}

export interface UnlearnEvalOptions {
  readonly tasks?: readonly string[];
  readonly seeds?: readonly number[];
  readonly sizes?: EvalSizes;
  /** Called after each task and seed, with the result so far. */
  readonly onProgress?: (r: UnlearnEvalResult) => void;
}

export async function unlearnEval(options: UnlearnEvalOptions = {}): Promise<UnlearnEvalResult> {
  const started = performance.now();
  const keys = options.tasks ?? ['mlp', 'text', 'knowledge', 'cnn'];
  const seeds = options.seeds ?? [1, 2, 3];
  const result: UnlearnEvalResult = { tasks: [], data: [], knowledge: [], missing: [], seconds: 0 };
  for (const key of keys) {
    const make = TASKS[key === 'knowledge' ? 'text' : key];
    if (make === undefined) throw new Error(`unknown task ${key}`);
    await tf.setBackend(key === 'cnn' ? 'cpu' : 'wasm');
    const task = make(options.sizes ?? {});
    if (key !== 'knowledge' && !result.tasks.some((t) => t.key === task.key)) result.tasks.push({ key: task.key, name: task.name, backend: task.backend, describe: task.describe, className: task.className });
    for (const seed of seeds) {
      if (key === 'knowledge') result.knowledge.push(await knowledgeLevel(task, seed));
      else result.data.push(...(await dataLevel(task, seed)));
      result.seconds = (performance.now() - started) / 1000;
      options.onProgress?.(result);
    }
    tf.dispose([task.train.xs, task.train.ys, task.heldOut.xs, task.heldOut.ys, task.test.xs, task.test.ys]);
  }
  return result;
}

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      tasks: { type: 'string', default: 'mlp,text,knowledge,cnn' },
      seeds: { type: 'string', default: '1,2,3' },
      out: { type: 'string', default: 'docs/evaluation.md' },
      json: { type: 'string' },
      // Re-render the markdown from a saved --json result (no training).
      render: { type: 'string' },
    },
  });
  if (args.render !== undefined) {
    const saved = JSON.parse(readFileSync(args.render, 'utf8')) as UnlearnEvalResult;
    writeEvaluation(args.out, 'unlearn', unlearnMarkdown(saved));
    console.log(`rendered ${args.render} into ${args.out}`);
    process.exit(0);
  }
  const tasks = args.tasks.split(',');
  const seeds = args.seeds.split(',').map(Number);
  const write = (r: UnlearnEvalResult) => {
    const done = new Set([...r.data.map((d) => `${d.task}:${d.seed}`), ...r.knowledge.map((k) => `knowledge:${k.seed}`)]);
    const missing = tasks.flatMap((t) => seeds.filter((s) => !done.has(`${t}:${s}`)).map((s) => `${t} seed ${s}`));
    const markdown = unlearnMarkdown({ ...r, missing });
    writeEvaluation(args.out, 'unlearn', markdown);
    if (args.json !== undefined) writeFileSync(args.json, JSON.stringify(r, null, 1));
    console.log(`[${r.seconds.toFixed(0)} s] written; missing: ${missing.join(', ') || 'none'}`);
  };
  const result = await unlearnEval({ tasks, seeds, onProgress: write });
  write(result);
  console.log(unlearnMarkdown(result));
}
