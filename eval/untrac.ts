/**
 * Dataset-level influence against leave-source-out retraining (Isonuma & Titov 2024's protocol, small):
 * the text classifier on SpamAssassin with its 5 corpus groups as sources and each group's test emails
 * as a target. Truth: retrain from the same initial weights without a source for the same number of
 * steps (learning rate decayed linearly to 0), target loss without minus with, averaged over seeds;
 * the truth's own seed-to-seed correlation is the ceiling. Compared: UnTrac and UnTrac-Inv (`untrac`),
 * in-run values summed per source (`sourceValues` over `shapley1`, SGD proxy and optimizer-aware),
 * TracIn from checkpoints summed per source, GradDot, and a class-only baseline.
 *
 *   npx tsx eval/untrac.ts [--backend wasm] [--seeds 3] [--per-source 200] [--out docs/evaluation.md]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, sourceValues, untrac, useFastEmbeddingGradient } from 'inrun';
import { spamClassifier, splitTensors } from '../examples/spam-classifier.js';
import { spamData, type SpamData } from '../examples/spam-data.js';
import { machine } from '../bench/report.js';
import { pearson, spearman } from './metrics.js';
import { isMain, writeEvaluation } from './report.js';
import { trainSeeded } from './train.js';

export interface UntracEvalOptions {
  readonly backend: string;
  /** Seeds of the truth (initial weights and batch order). @defaultValue 3 */
  readonly seeds?: number;
  /** Training emails per source in the equal-size setting. @defaultValue 200 */
  readonly perSource?: number;
  /** At most this many emails per source in the unequal setting (a quick run). @defaultValue all */
  readonly cap?: number;
  /** Test emails per target (each group's first). @defaultValue 64 */
  readonly targetRows?: number;
  /** Training steps of batch 32 in the equal and the unequal setting. @defaultValue [200, 400] */
  readonly steps?: readonly [number, number];
  /** Adam learning rates of the ascents (each reported). @defaultValue [1e-4, 1e-3] */
  readonly ascentRates?: readonly number[];
  /** TracIn checkpoints, evenly spaced. @defaultValue 5 */
  readonly checkpoints?: number;
  /** Vocabulary size of the classifier (smaller: a quicker run). @defaultValue 5000 */
  readonly vocabSize?: number;
  /** Also measure the truth's seed-to-seed correlation with a constant learning rate. @defaultValue true */
  readonly constantTrap?: boolean;
}

export interface MethodScore {
  readonly name: string;
  readonly pearson: number;
  readonly spearman: number;
  /** Pearson after subtracting, per target, each source class's mean from both vectors. */
  readonly withinClass: number;
  /** Mean over targets of the Pearson across sources (the paper's per-target figure). */
  readonly perTarget: number;
  readonly seconds: number;
}

export interface Ceiling {
  readonly pearson: number;
  readonly withinClass: number;
}

export interface SettingResult {
  readonly name: string;
  readonly sizes: Readonly<Record<string, number>>;
  readonly steps: number;
  /** Seed-to-seed correlation of the truth (mean over seed pairs), decaying and constant learning rate. */
  readonly ceiling: Ceiling;
  readonly constantCeiling: Ceiling | null;
  /** Mean truth, `[target][source]`. */
  readonly truth: readonly (readonly number[])[];
  readonly methods: readonly MethodScore[];
}

export interface UntracEvalResult {
  readonly sources: readonly string[];
  readonly settings: readonly SettingResult[];
  readonly seconds: number;
}

const GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
const classOf = (group: string) => (group.startsWith('spam') ? 1 : 0);
const LR = 0.005;

/** Per-target matrices `[target][source]` flattened target by target. */
type Matrix = readonly (readonly number[])[];

/** Pearson, Spearman, within-class Pearson and mean per-target Pearson of a method against the truth. */
export function scoreAgainst(method: Matrix, truth: Matrix, classes: readonly number[]): Omit<MethodScore, 'name' | 'seconds'> {
  const flat = (m: Matrix) => m.flat();
  const residual = (m: Matrix) =>
    m.flatMap((row) =>
      row.map((v, s) => {
        const peers = row.filter((_, j) => classes[j] === classes[s]);
        return v - peers.reduce((a, b) => a + b, 0) / peers.length;
      }),
    );
  const perTarget = method.map((row, t) => pearson(row, truth[t]!)).filter((r) => Number.isFinite(r));
  return {
    pearson: pearson(flat(method), flat(truth)),
    spearman: spearman(flat(method), flat(truth)),
    withinClass: pearson(residual(method), residual(truth)),
    perTarget: perTarget.length === 0 ? Number.NaN : perTarget.reduce((a, b) => a + b, 0) / perTarget.length,
  };
}

/** Mean over seed pairs of the truth's correlation with itself. */
export function seedCeiling(truths: readonly Matrix[], classes: readonly number[]): Ceiling {
  const pairs: Omit<MethodScore, 'name' | 'seconds'>[] = [];
  for (let i = 0; i < truths.length; i++) for (let j = i + 1; j < truths.length; j++) pairs.push(scoreAgainst(truths[i]!, truths[j]!, classes));
  const mean = (pick: (p: (typeof pairs)[number]) => number) => pairs.reduce((s, p) => s + pick(p), 0) / pairs.length;
  return { pearson: mean((p) => p.pearson), withinClass: mean((p) => p.withinClass) };
}

export const meanMatrix = (ms: readonly Matrix[]): number[][] => ms[0]!.map((row, t) => row.map((_, s) => ms.reduce((a, m) => a + m[t]![s]!, 0) / ms.length));

/** Flattened gradient of the summed (or mean) binary cross-entropy of `data` at the model's weights, 256 rows at a time. */
function gradient(model: tf.LayersModel, data: { xs: tf.Tensor; ys: tf.Tensor }, reduce: 'sum' | 'mean'): Float32Array {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const n = data.xs.shape[0]!;
  let sum: tf.Tensor | null = null;
  for (let start = 0; start < n; start += 256) {
    const rows = Math.min(256, n - start);
    const part = tf.tidy(() => {
      const xs = tf.slice(data.xs, start, rows);
      const ys = tf.slice(data.ys, start, rows);
      const { grads } = tf.variableGrads(() => tf.sum(tf.metrics.binaryCrossentropy(ys, model.apply(xs) as tf.Tensor)) as tf.Scalar, vars);
      return tf.concat(vars.map((v) => tf.reshape(grads[v.name]!, [-1])));
    });
    const next: tf.Tensor = sum === null ? part : tf.add(sum, part);
    if (sum !== null) tf.dispose([sum, part]);
    sum = next;
  }
  const out = sum!.dataSync() as Float32Array;
  sum!.dispose();
  return reduce === 'sum' ? out : out.map((v) => v / n);
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);

async function setting(name: string, data: SpamData, picked: ReadonlyMap<string, number[]>, steps: number, options: UntracEvalOptions): Promise<SettingResult> {
  const { seqLen } = data;
  const seeds = options.seeds ?? 3;
  const rows = GROUPS.flatMap((g) => picked.get(g)!);
  const sourceOfRow = GROUPS.flatMap((g) => picked.get(g)!.map(() => g));
  const train = splitTensors(data.train, seqLen, rows);
  const perSource = Object.fromEntries(GROUPS.map((g) => [g, splitTensors(data.train, seqLen, picked.get(g))]));
  const targetRows = options.targetRows ?? 64;
  const targets = Object.fromEntries(
    GROUPS.map((g) => [g, splitTensors(data.test, seqLen, data.test.emails.flatMap((e, i) => (e.group === g ? [i] : [])).slice(0, targetRows))]),
  );
  const classes = GROUPS.map(classOf);
  const build = (seed: number) => spamClassifier({ vocabSize: data.vocabulary.length, seqLen, seed, learningRate: LR });
  const targetLosses = (model: tf.LayersModel) =>
    GROUPS.map((g) => tf.tidy(() => tf.mean(tf.metrics.binaryCrossentropy(targets[g]!.ys, model.predict(targets[g]!.xs) as tf.Tensor)).dataSync()[0]!));
  const decaying = (step: number) => LR * (1 - (step - 1) / steps);
  const keepAll = [...rows.keys()];

  // The full run of seed 1 carries the methods that read the run: in-run values (SGD proxy) and TracIn's checkpoints.
  const every = Math.max(1, Math.floor(steps / (options.checkpoints ?? 5)));
  const checkpoints: { weights: tf.Tensor[]; lr: number }[] = [];
  const examples = rows.map((_, i) => ({ id: i, source: sourceOfRow[i]! }));
  const valuesRun = async (model: tf.LayersModel, update: 'sgd' | 'optimizer', seed: number, keepCheckpoints: boolean) => {
    const run = attach(model, { targets, methods: ['shapley1'], update, examples, stepRecords: false });
    const started = performance.now();
    await trainSeeded(model, train, keepAll, {
      steps,
      seed,
      learningRate: decaying,
      distinct: true,
      around: (batch, step) => run.step(batch, step),
      after: (step) => {
        if (keepCheckpoints && step % every === 0) checkpoints.push({ weights: model.getWeights().map((w) => w.clone()), lr: decaying(step) });
      },
    });
    const scores = await run.close();
    const table = sourceValues(scores, examples).table;
    return { seconds: (performance.now() - started) / 1000, values: GROUPS.map((t) => GROUPS.map((s) => table[`shapley1:${t}`]![s]!.sum)) };
  };

  const truthOf = async (seed: number, lr: (step: number) => number) => {
    const losses: number[][] = [];
    let plainSeconds = 0;
    for (const drop of [null, ...GROUPS]) {
      const model = build(seed);
      const started = performance.now();
      await trainSeeded(model, train, keepAll.filter((i) => sourceOfRow[i] !== drop), { steps, seed: 100 + seed, learningRate: lr, distinct: true });
      if (drop === null) plainSeconds = (performance.now() - started) / 1000;
      losses.push(targetLosses(model));
      model.dispose();
    }
    const [all, ...without] = losses;
    return { truth: GROUPS.map((_, t) => GROUPS.map((_, s) => without[s]![t]! - all![t]!)), plainSeconds };
  };

  const truths: Matrix[] = [];
  const constant: Matrix[] = [];
  let plainSeconds = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await truthOf(seed, decaying);
    truths.push(r.truth);
    plainSeconds += r.plainSeconds / seeds;
    if (options.constantTrap ?? true) constant.push((await truthOf(seed, () => LR)).truth);
  }
  const truth = meanMatrix(truths);

  // Methods on the seed-1 model trained on everything (training with attribution is the same training).
  const model = build(1);
  const sgd = await valuesRun(model, 'sgd', 101, true);
  const methods: MethodScore[] = [];
  const add = (method: string, m: Matrix, seconds: number) => methods.push({ name: method, ...scoreAgainst(m, truth, classes), seconds });
  add('class only (1 if the source has the target class, else 0)', GROUPS.map((t) => GROUPS.map((s) => (classOf(s) === classOf(t) ? 1 : 0))), 0);
  for (const lr of options.ascentRates ?? [1e-4, 1e-3]) {
    const forward = await untrac(model, { sources: perSource, targets, optimizer: () => tf.train.adam(lr), batchSize: 1, progress: false });
    add(`UnTrac (Adam ${lr}, batch 1, 1 epoch)`, GROUPS.map((t) => GROUPS.map((s) => forward.influence[t]![s]!)), forward.seconds);
    const inverse = await untrac(model, { sources: perSource, targets, method: 'untrac-inv', optimizer: () => tf.train.adam(lr), progress: false });
    add(`UnTrac-Inv (Adam ${lr}, whole target, 5 steps)`, GROUPS.map((t) => GROUPS.map((s) => inverse.influence[t]![s]!)), inverse.seconds);
  }
  add('in-run shapley1 summed per source (SGD proxy)', sgd.values, sgd.seconds - plainSeconds);
  const aware = build(1);
  const opt = await valuesRun(aware, 'optimizer', 101, false);
  aware.dispose();
  add('in-run shapley1 summed per source (optimizer-aware)', opt.values, opt.seconds - plainSeconds);

  let started = performance.now();
  const probe = build(1);
  const tracinMatrix = GROUPS.map(() => GROUPS.map(() => 0));
  for (const c of checkpoints) {
    probe.setWeights(c.weights);
    const sourceGrads = GROUPS.map((s) => gradient(probe, perSource[s]!, 'sum'));
    GROUPS.forEach((t, ti) => {
      const g = gradient(probe, targets[t]!, 'mean');
      sourceGrads.forEach((gs, si) => (tracinMatrix[ti]![si]! += c.lr * dot(gs, g)));
    });
  }
  add(`TracIn from ${checkpoints.length} checkpoints, summed per source`, tracinMatrix, (performance.now() - started) / 1000);
  started = performance.now();
  const finalGrads = GROUPS.map((s) => gradient(model, perSource[s]!, 'sum'));
  add('GradDot (final weights)', GROUPS.map((t) => { const g = gradient(model, targets[t]!, 'mean'); return finalGrads.map((gs) => dot(gs, g)); }), (performance.now() - started) / 1000);

  probe.dispose();
  model.dispose();
  tf.dispose([train.xs, train.ys, ...Object.values(perSource).flatMap((d) => [d.xs, d.ys]), ...Object.values(targets).flatMap((d) => [d.xs, d.ys]), ...checkpoints.flatMap((c) => c.weights)]);
  return {
    name,
    sizes: Object.fromEntries(GROUPS.map((g) => [g, picked.get(g)!.length])),
    steps,
    ceiling: seedCeiling(truths, classes),
    constantCeiling: constant.length > 1 ? seedCeiling(constant, classes) : null,
    truth,
    methods,
  };
}

export async function untracEval(options: UntracEvalOptions): Promise<UntracEvalResult> {
  const started = performance.now();
  await tf.setBackend(options.backend);
  useFastEmbeddingGradient();
  const data = spamData({ flipRate: 0, ...(options.vocabSize === undefined ? {} : { vocabSize: options.vocabSize }) });
  const byGroup = new Map(GROUPS.map((g) => [g, data.train.emails.flatMap((e, i) => (e.group === g ? [i] : []))]));
  const [equalSteps, unequalSteps] = options.steps ?? [200, 400];
  const perSource = options.perSource ?? 200;
  const equal = new Map(GROUPS.map((g) => [g, byGroup.get(g)!.slice(0, perSource)]));
  const unequal = new Map(GROUPS.map((g) => [g, byGroup.get(g)!.slice(0, options.cap ?? Number.POSITIVE_INFINITY)]));
  const settings = [await setting('equal sizes', data, equal, equalSteps, options), await setting('unequal sizes', data, unequal, unequalSteps, options)];
  return { sources: GROUPS, settings, seconds: (performance.now() - started) / 1000 };
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

export function untracMarkdown(r: UntracEvalResult, options: UntracEvalOptions): string {
  const sections = r.settings.map((s) => {
    const lines = s.methods.map((m) => `| ${m.name} | ${f(m.pearson)} | ${f(m.spearman)} | ${f(m.withinClass)} | ${f(m.perTarget)} | ${m.seconds.toFixed(1)} |`);
    const sizes = r.sources.map((g) => `${g} ${s.sizes[g]}`).join(', ');
    const trap = s.constantCeiling === null ? '' : ` With a constant rate instead: ${f(s.constantCeiling.pearson)} (within-class ${f(s.constantCeiling.withinClass)}).`;
    return `### ${s.name} (${sizes}; ${s.steps} steps)

Ceiling (the truth's seed-to-seed correlation, mean over seed pairs, rate decayed to 0): Pearson ${f(s.ceiling.pearson)}, within-class ${f(s.ceiling.withinClass)}.${trap}

| method | Pearson | Spearman | within-class Pearson | per-target Pearson (mean) | seconds |
|---|---|---|---|---|---|
${lines.join('\n')}`;
  });
  return `## Dataset-level influence (UnTrac, UnTrac-Inv, source values) against leave-source-out retraining

\`eval/untrac.ts\`. Protocol (Isonuma & Titov 2024, small): the text classifier (Adam, batch 32, rate
${LR} decayed linearly to 0) on SpamAssassin without label flips; the sources are the 5 corpus groups, the targets
each group's first ${options.targetRows ?? 64} test emails (hard-ham-1 has fewer), so 25 (target, source) pairs. Truth:
for each source, retrain from the same initial weights without it for the same number of steps (seeded
batch order, the dropped rows left out of each pass), truth = target loss without minus with all; mean over
${options.seeds ?? 3} seeds (initial weights and order). The methods read the seed-1 model trained on everything (or
its run): UnTrac and UnTrac-Inv (\`untrac\`, Adam at each rate listed, fresh per ascent), in-run \`shapley1\`
values toward each target summed per source (\`sourceValues\`), TracIn from ${options.checkpoints ?? 5} evenly spaced checkpoints
(each source's summed gradient times the target's mean gradient times the rate at the checkpoint),
GradDot (the same product at the final weights only). Sources are single-class (ham or spam), so a
class-only answer already correlates: the within-class Pearson subtracts, per target, each class's
mean from both vectors, and is the column to judge methods by. Per-target Pearson: across the 5 sources,
mean over targets (the paper's figure; 5 points each, so noisy). Seconds: the method's own time (in-run
values: the attributed run's time minus a plain run's). ${options.backend} backend; ${r.seconds.toFixed(0)} s in all. ${machine()}.

${sections.join('\n\n')}`;
}

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      backend: { type: 'string', default: 'wasm' },
      seeds: { type: 'string', default: '3' },
      'per-source': { type: 'string', default: '200' },
      out: { type: 'string', default: 'docs/evaluation.md' },
    },
  });
  const options = { backend: args.backend, seeds: Number(args.seeds), perSource: Number(args['per-source']) };
  const result = await untracEval(options);
  const markdown = untracMarkdown(result, options);
  console.log(markdown);
  writeEvaluation(args.out, 'untrac', markdown);
}
