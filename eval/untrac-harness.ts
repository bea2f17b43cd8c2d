/**
 * The model-agnostic part of the dataset-level influence evaluation: a task (named sources and targets,
 * a seeded model builder), the leave-source-out truth over seeds and its ceiling, every method scored
 * against it. eval/untrac.ts defines the tasks (text classifier, tiny transformer) and writes the section.
 */
import * as tf from '@tensorflow/tfjs';
import { attach, sourceValues, untrac, type FunctionalModel } from 'inrun';
import { pearson, spearman } from './metrics.js';
import { trainSeeded, type Trainable } from './train.js';

/** Labelled rows. */
export interface Data {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
}

/** A model built with a seed, and what the evaluation needs of it. */
export interface Built {
  /** What `attach` and `untrac` take. */
  readonly model: tf.LayersModel | FunctionalModel;
  /** What trainSeeded steps. */
  readonly trainer: Trainable;
  readonly variables: readonly tf.Variable[];
  /** Per-example loss `[rows]` at the current weights (differentiable). */
  loss(data: Data): tf.Tensor1D;
  dispose(): void;
}

export interface SourceTask {
  readonly sources: readonly string[];
  readonly targets: readonly string[];
  /** All training rows, and each row's source. */
  readonly train: Data;
  readonly sourceOfRow: readonly string[];
  readonly perSource: Readonly<Record<string, Data>>;
  readonly targetData: Readonly<Record<string, Data>>;
  /** Class of each source and target, when sources are single-class (enables the class-only baseline and within-class Pearson). */
  readonly classes: { readonly sources: readonly number[]; readonly targets: readonly number[] } | null;
  build(seed: number): Built;
  readonly learningRate: number;
  readonly steps: number;
  readonly batchSize: number;
}

export interface HarnessOptions {
  readonly seeds: number;
  /** Adam rates of the ascents (each reported). */
  readonly ascentRates: readonly number[];
  /** Also ascend with plain SGD at this rate (the paper's ablation), or null. */
  readonly sgdRate: number | null;
  /** UnTrac's ascent batch. */
  readonly ascentBatch: number;
  readonly checkpoints: number;
  readonly constantTrap: boolean;
  /** Progress lines to stderr. */
  readonly log?: (line: string) => void;
}

export interface MethodScore {
  readonly name: string;
  readonly pearson: number;
  readonly spearman: number;
  /** Pearson after subtracting, per target, each source class's mean from both vectors (NaN without classes). */
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
  readonly targets: readonly string[];
  /** Mean truth, `[target][source]`. */
  readonly truth: readonly (readonly number[])[];
  readonly methods: readonly MethodScore[];
  readonly seconds: number;
}

/** `[target][source]`. */
type Matrix = readonly (readonly number[])[];

/** Pearson, Spearman, within-class Pearson and mean per-target Pearson of a method against the truth. */
export function scoreAgainst(method: Matrix, truth: Matrix, classes: readonly number[] | null): Omit<MethodScore, 'name' | 'seconds'> {
  const residual = (m: Matrix) =>
    m.flatMap((row) =>
      row.map((v, s) => {
        const peers = row.filter((_, j) => classes![j] === classes![s]);
        return v - peers.reduce((a, b) => a + b, 0) / peers.length;
      }),
    );
  const perTarget = method.map((row, t) => pearson(row, truth[t]!)).filter((r) => Number.isFinite(r));
  return {
    pearson: pearson(method.flat(), truth.flat()),
    spearman: spearman(method.flat(), truth.flat()),
    withinClass: classes === null ? Number.NaN : pearson(residual(method), residual(truth)),
    perTarget: perTarget.length === 0 ? Number.NaN : perTarget.reduce((a, b) => a + b, 0) / perTarget.length,
  };
}

/** Mean over seed pairs of the truth's correlation with itself. */
export function seedCeiling(truths: readonly Matrix[], classes: readonly number[] | null): Ceiling {
  const pairs: Omit<MethodScore, 'name' | 'seconds'>[] = [];
  for (let i = 0; i < truths.length; i++) for (let j = i + 1; j < truths.length; j++) pairs.push(scoreAgainst(truths[i]!, truths[j]!, classes));
  const mean = (pick: (p: (typeof pairs)[number]) => number) => pairs.reduce((s, p) => s + pick(p), 0) / pairs.length;
  return { pearson: mean((p) => p.pearson), withinClass: mean((p) => p.withinClass) };
}

function meanMatrix(ms: readonly Matrix[]): number[][] {
  return ms[0]!.map((row, t) => row.map((_, s) => ms.reduce((a, m) => a + m[t]![s]!, 0) / ms.length));
}

/** Flattened gradient of the summed (or mean) loss of `data` over `built`'s variables, 128 rows at a time. */
function gradient(built: Built, data: Data, reduce: 'sum' | 'mean'): Float32Array {
  const n = data.xs.shape[0]!;
  let sum: tf.Tensor | null = null;
  for (let start = 0; start < n; start += 128) {
    const rows = Math.min(128, n - start);
    const part = tf.tidy(() => {
      const slice = { xs: tf.slice(data.xs, start, rows), ys: tf.slice(data.ys, start, rows) };
      const { grads } = tf.variableGrads(() => tf.sum(built.loss(slice)) as tf.Scalar, [...built.variables]);
      return tf.concat(built.variables.map((v) => tf.reshape(grads[v.name]!, [-1])));
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

/** Per target and source: the learning-rate-weighted sum over checkpoints of <sum of the source's gradients, the target's mean gradient>. */
function gradientProducts(probe: Built, task: SourceTask, checkpoints: readonly { weights: readonly tf.Tensor[]; lr: number }[]): number[][] {
  const out = task.targets.map(() => task.sources.map(() => 0));
  for (const c of checkpoints) {
    probe.variables.forEach((v, i) => v.assign(c.weights[i]!));
    const sourceGrads = task.sources.map((s) => gradient(probe, task.perSource[s]!, 'sum'));
    task.targets.forEach((t, ti) => {
      const g = gradient(probe, task.targetData[t]!, 'mean');
      sourceGrads.forEach((gs, si) => (out[ti]![si]! += c.lr * dot(gs, g)));
    });
  }
  return out;
}

/**
 * One setting: the truth over seeds (leave each source out, same steps, rate decayed linearly to 0),
 * its ceiling (and with a constant rate, when asked), then every method on the seed-1 model trained on
 * everything, scored against the mean truth.
 */
export async function runSetting(name: string, task: SourceTask, o: HarnessOptions): Promise<SettingResult> {
  const started = performance.now();
  const log = o.log ?? (() => {});
  const { sources, targets, steps } = task;
  const decaying = (step: number) => task.learningRate * (1 - (step - 1) / steps);
  const keepAll = [...task.sourceOfRow.keys()];
  const targetLosses = (built: Built) => targets.map((t) => tf.tidy(() => tf.mean(built.loss(task.targetData[t]!)).dataSync()[0]!));
  const train = (built: Built, seed: number, keep: readonly number[], lr: (step: number) => number, extra: Partial<Parameters<typeof trainSeeded>[3]> = {}) =>
    trainSeeded(built.trainer, task.train, keep, { steps, seed: 100 + seed, batchSize: task.batchSize, learningRate: lr, distinct: true, ...extra });

  const truthOf = async (seed: number, lr: (step: number) => number) => {
    const losses: number[][] = [];
    let plainSeconds = 0;
    for (const drop of [null, ...sources]) {
      const built = task.build(seed);
      const t0 = performance.now();
      await train(built, seed, keepAll.filter((i) => task.sourceOfRow[i] !== drop), lr);
      if (drop === null) plainSeconds = (performance.now() - t0) / 1000;
      losses.push(targetLosses(built));
      built.dispose();
    }
    const [all, ...without] = losses;
    return { truth: targets.map((_, t) => sources.map((_, s) => without[s]![t]! - all![t]!)), plainSeconds };
  };
  const truths: Matrix[] = [];
  const constant: Matrix[] = [];
  let plainSeconds = 0;
  for (let seed = 1; seed <= o.seeds; seed++) {
    log(`${name}: truth, seed ${seed}`);
    const r = await truthOf(seed, decaying);
    truths.push(r.truth);
    plainSeconds += r.plainSeconds / o.seeds;
    if (o.constantTrap) constant.push((await truthOf(seed, () => task.learningRate)).truth);
  }
  const truth = meanMatrix(truths);
  const classes = task.classes?.sources ?? null;

  // The seed-1 run on everything, attributed (attribution does not change training): in-run values and TracIn's checkpoints.
  const examples = task.sourceOfRow.map((source, id) => ({ id, source }));
  const checkpointSteps = new Set(Array.from({ length: o.checkpoints }, (_, k) => Math.max(1, Math.round(((k + 1) * steps) / o.checkpoints))));
  const valuesRun = async (built: Built, update: 'sgd' | 'optimizer', checkpoints: { weights: tf.Tensor[]; lr: number }[] | null) => {
    const run = attach(built.model, { targets: task.targetData, methods: ['shapley1'], update, examples, delivery: { stepRecords: false } });
    const t0 = performance.now();
    await train(built, 1, keepAll, decaying, {
      around: (rows, step) => run.step(rows, step),
      after: (step) => {
        if (checkpoints !== null && checkpointSteps.has(step)) checkpoints.push({ weights: built.variables.map((v) => v.clone()), lr: decaying(step) });
      },
    });
    const table = sourceValues(await run.close(), examples).table;
    return { seconds: (performance.now() - t0) / 1000, values: targets.map((t) => sources.map((s) => table[`shapley1:${t}`]![s]!.sum)) };
  };
  log(`${name}: methods`);
  const methods: MethodScore[] = [];
  const add = (method: string, m: Matrix, seconds: number) => methods.push({ name: method, ...scoreAgainst(m, truth, classes), seconds });
  if (task.classes !== null) {
    const { sources: sc, targets: tc } = task.classes;
    add('class only (1 if the source has the target class, else 0)', tc.map((t) => sc.map((s) => (s === t ? 1 : 0))), 0);
  }
  const checkpoints: { weights: tf.Tensor[]; lr: number }[] = [];
  const full = task.build(1);
  const sgd = await valuesRun(full, 'sgd', checkpoints);
  const variables = full.model instanceof tf.LayersModel ? {} : { variables: full.variables };
  const ascents: [string, () => tf.Optimizer][] = o.ascentRates.map((lr) => [`Adam ${lr}`, () => tf.train.adam(lr)]);
  if (o.sgdRate !== null) ascents.push([`SGD ${o.sgdRate}`, () => tf.train.sgd(o.sgdRate!)]);
  for (const [label, optimizer] of ascents) {
    log(`${name}: UnTrac, UnTrac-Inv with ${label}`);
    const forward = await untrac(full.model, { sources: task.perSource, targets: task.targetData, optimizer, batchSize: o.ascentBatch, progress: false, ...variables });
    add(`UnTrac (${label}, batch ${o.ascentBatch}, 1 epoch)`, targets.map((t) => sources.map((s) => forward.influence[t]![s]!)), forward.seconds);
    const inverse = await untrac(full.model, { sources: task.perSource, targets: task.targetData, method: 'untrac-inv', optimizer, progress: false, ...variables });
    add(`UnTrac-Inv (${label}, whole target, 5 steps)`, targets.map((t) => sources.map((s) => inverse.influence[t]![s]!)), inverse.seconds);
  }
  add('in-run shapley1 summed per source (SGD proxy)', sgd.values, sgd.seconds - plainSeconds);
  const aware = task.build(1);
  const opt = await valuesRun(aware, 'optimizer', null);
  aware.dispose();
  add('in-run shapley1 summed per source (optimizer-aware)', opt.values, opt.seconds - plainSeconds);

  log(`${name}: TracIn, GradDot`);
  const probe = task.build(1);
  let t0 = performance.now();
  add(`TracIn from ${checkpoints.length} checkpoints, summed per source`, gradientProducts(probe, task, checkpoints), (performance.now() - t0) / 1000);
  t0 = performance.now();
  add('GradDot (final weights)', gradientProducts(probe, task, [{ weights: full.variables, lr: 1 }]), (performance.now() - t0) / 1000);
  probe.dispose();
  full.dispose();
  tf.dispose(checkpoints.flatMap((c) => c.weights));
  return {
    name,
    sizes: Object.fromEntries(sources.map((s) => [s, task.perSource[s]!.xs.shape[0]!])),
    steps,
    targets,
    ceiling: seedCeiling(truths, classes),
    constantCeiling: constant.length > 1 ? seedCeiling(constant, classes) : null,
    truth,
    methods,
    seconds: (performance.now() - started) / 1000,
  };
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

/** A setting's ceiling line and method table. */
export function settingMarkdown(s: SettingResult): string {
  const lines = s.methods.map((m) => `| ${m.name} | ${f(m.pearson)} | ${f(m.spearman)} | ${f(m.withinClass)} | ${f(m.perTarget)} | ${m.seconds.toFixed(1)} |`);
  const sizes = Object.entries(s.sizes).map(([g, n]) => `${g} ${n}`).join(', ');
  const trap = s.constantCeiling === null ? '' : ` With a constant rate instead: ${f(s.constantCeiling.pearson)} (within-class ${f(s.constantCeiling.withinClass)}).`;
  return `### ${s.name} (${sizes}; ${s.steps} steps; ${s.seconds.toFixed(0)} s)

Ceiling (the truth's seed-to-seed correlation, mean over seed pairs, rate decayed to 0): Pearson ${f(s.ceiling.pearson)}, within-class ${f(s.ceiling.withinClass)}.${trap}

Mean truth (target loss without the source minus with all; rows: targets, columns: sources):

| target | ${Object.keys(s.sizes).join(' | ')} |
|---|${Object.keys(s.sizes).map(() => '---|').join('')}
${s.truth.map((row, t) => `| ${s.targets[t]} | ${row.map((v) => v.toPrecision(2)).join(' | ')} |`).join('\n')}

| method | Pearson | Spearman | within-class Pearson | per-target Pearson (mean) | seconds |
|---|---|---|---|---|---|
${lines.join('\n')}`;
}
