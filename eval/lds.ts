/**
 * Linear datamodeling score (LDS, Park et al. 2023; dattri's benchmark) on MNIST: K random half-size
 * subsets of the N training digits, a model retrained on each, and per test digit the Spearman
 * correlation between the subset's summed scores and the retrained model's margin on that digit.
 * The retrained margins are cached under .cache/lds/ (one file per subset model), so a rerun only
 * recomputes scores and an interrupted cache build resumes where it stopped.
 *
 *   npx tsx eval/lds.ts [--train 5000] [--test 500] [--subsets 50] [--epochs 3] [--model logreg|mlp]
 *                       [--protocol multi-seed,same-run] [--trak-runs 1,5] [--dim 512] [--lambda x] [--cache .cache/lds] [--backend wasm]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { saveCheckpoint, tracin, trak } from 'inrun';
import { digitsData } from '../examples/digits-cnn.js';
import { machine } from '../bench/report.js';
import { spearman, uniform } from './metrics.js';
import { isMain, writeEvaluation } from './report.js';
import { TRAK_LAMBDA_SCALE } from '../packages/inrun/src/posthoc/trak-options.js';
import { RUN_SEEDS } from '../packages/inrun/src/posthoc/trak-features.js';
import { inrunMatrices } from './lds-inrun.js';
import { shuffle, trainSeeded } from './train.js';

export type LdsProtocol = 'multi-seed' | 'same-run';
export type LdsModel = 'logreg' | 'mlp';

export interface LdsOptions {
  readonly backend: string;
  /** Training digits. @defaultValue 5000 */
  readonly train: number;
  /** Test digits (the queries). @defaultValue 500 */
  readonly test: number;
  /** Random subsets, one retrained model each. @defaultValue 50 */
  readonly subsets: number;
  /** First subset index: subsets `from .. from + subsets - 1` are used (the lambda sweep's held-out subsets start past the reported ones). @defaultValue 0 */
  readonly from: number;
  /** Share of the training digits in each subset. @defaultValue 0.5 */
  readonly fraction: number;
  /** SGD learning rate of every training run. @defaultValue 0.1 */
  readonly lr: number;
  /** Epochs of every training run (full and subset). @defaultValue 3 */
  readonly epochs: number;
  /** Logistic regression (7,850 parameters) and/or the MLP 784-128-64-10 (109,386). @defaultValue ['logreg'] */
  readonly models: readonly LdsModel[];
  /** @defaultValue ['multi-seed', 'same-run'] */
  readonly protocols: readonly LdsProtocol[];
  /** Which score families to compute. @defaultValue all of them */
  readonly methods: readonly LdsFamily[];
  /** TRAK ensemble sizes (independently trained full models, final checkpoint each). @defaultValue [1, 2, 5, 10] */
  readonly trakRuns: readonly number[];
  /** TRAK's projected width per side; null: 256 for logistic regression (2,560 numbers), 32 for the MLP (2,368). @defaultValue null */
  readonly dim: number | null;
  /** TRAK's ridge term; null: trak()'s default (a multiple of the kernel's mean diagonal). @defaultValue null */
  readonly lambda: number | null;
  /** Also a TRAK-1 row at this multiple of the mean diagonal (e.g. the old default 1e-3); null: none. @defaultValue 1e-3 */
  readonly lambdaCompare: number | null;
  /** A lambda sweep instead of the table: TRAK-1 at these multiples of the kernel's mean diagonal. @defaultValue null */
  readonly sweep: readonly number[] | null;
  /** Test digits (the first ones) `shapley2` is computed for (each test digit is its own target; shapley1 always takes all); null: all. @defaultValue 100 */
  readonly inrunTest: number | null;
  /** TRAK's projection per ensemble member: `'distinct'` (run r projects with seed RUN_SEEDS r = 1000 r, as `trak({ runs })` does) or `'same'` (one projection for every run: the comparison). @defaultValue 'distinct' */
  readonly trakSeeds: 'same' | 'distinct';
  /** Cache folder of the retrained margins. @defaultValue '.cache/lds' */
  readonly cache: string;
  /** Build (or complete) the cache of retrained margins and stop: the resumable first step. @defaultValue false */
  readonly cacheOnly: boolean;
}

export type LdsFamily = 'tracin' | 'sketch' | 'trak' | 'inrun';

export const LDS_DEFAULTS: Omit<LdsOptions, 'backend'> = {
  train: 5000,
  test: 500,
  subsets: 50,
  from: 0,
  fraction: 0.5,
  lr: 0.1,
  epochs: 3,
  models: ['logreg'],
  protocols: ['multi-seed', 'same-run'],
  methods: ['tracin', 'sketch', 'trak', 'inrun'],
  trakRuns: [1, 2, 5, 10],
  dim: null,
  lambda: null,
  lambdaCompare: 1e-3,
  sweep: null,
  inrunTest: 100,
  trakSeeds: 'distinct',
  cache: '.cache/lds',
  cacheOnly: false,
};

const BATCH = 32;
const FULL_SEED = 1;
/** TRAK's projected width per side when `dim` is null: about 2,500 projected numbers for either model. */
const TRAK_DIM: Record<LdsModel, number> = { logreg: 256, mlp: 32 };

export interface LdsRow {
  readonly protocol: LdsProtocol;
  readonly method: string;
  /** Mean over test digits of the per-digit Spearman correlation. */
  readonly lds: number;
  /** Standard deviation of the per-digit correlations over test digits. */
  readonly spread: number;
  /** Seconds the method took (scores only, after the full run's training). */
  readonly seconds: number;
  /** Test digits the row is computed over. */
  readonly queries: number;
}

export interface LdsModelResult {
  readonly model: LdsModel;
  readonly rows: readonly LdsRow[];
  readonly params: number;
  readonly dim: number;
  /** Seconds of one full training run (what each extra TRAK run costs before scoring). */
  readonly runSeconds: number;
  readonly cacheSeconds: number;
  readonly cachedModels: number;
  readonly trainedModels: number;
  readonly seconds: number;
}

export interface LdsResult {
  readonly models: readonly LdsModelResult[];
  readonly seconds: number;
}

/** The model: Flatten -> [Dense 128 relu -> Dense 64 relu ->] Dense 10 softmax, SGD, seeded init. */
function build(kind: LdsModel, seed: number, lr: number): tf.Sequential {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed * 10 + i });
  const hidden = kind === 'mlp' ? [tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: init(1) }), tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(2) })] : [];
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), ...hidden, tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(3) })] });
  model.compile({ optimizer: tf.train.sgd(lr), loss: 'categoricalCrossentropy' });
  return model;
}

/** Per test digit: log p_y - log(sum of the other p_k) = the correct-class logit minus log-sum-exp of the others. */
async function margins(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): Promise<Float64Array> {
  const m = tf.tidy(() => {
    const p = tf.clipByValue(model.predict(xs) as tf.Tensor, 1e-30, 1);
    const py = tf.sum(tf.mul(p, ys), 1);
    const others = tf.sum(tf.mul(p, tf.sub(1, ys)), 1);
    return tf.sub(tf.log(py), tf.log(tf.maximum(others, 1e-30)));
  });
  const out = Float64Array.from(await m.data());
  m.dispose();
  return out;
}

/** Subset `index` of rows 0..n-1: its own seeded draw of round(fraction x n) distinct rows. */
export function subsetRows(n: number, index: number, fraction = 0.5): number[] {
  return shuffle([...Array(n).keys()], uniform(7919 + index)).slice(0, Math.round(fraction * n));
}

/** TRAK-k from single-run score matrices: the mean of the first k (trak() averages over runs the same way). */
export function ensembleMean(matrices: readonly ArrayLike<number>[], k: number): Float64Array {
  const out = new Float64Array(matrices[0]!.length);
  for (const m of matrices.slice(0, k)) for (let i = 0; i < out.length; i++) out[i]! += m[i]!;
  for (let i = 0; i < out.length; i++) out[i]! /= k;
  return out;
}

export async function lds(options: LdsOptions): Promise<LdsResult> {
  const started = performance.now();
  await tf.setBackend(options.backend);
  const models: LdsModelResult[] = [];
  for (const model of options.models) models.push(await ldsOne(options, model));
  return { models, seconds: (performance.now() - started) / 1000 };
}

async function ldsOne(o: LdsOptions, kind: LdsModel): Promise<LdsModelResult> {
  const started = performance.now();
  const train = digitsData({ rows: o.train, seed: 1 });
  const test = digitsData({ rows: o.test, offset: Math.ceil(o.train / 10), seed: 1 });
  const all = [...Array(o.train).keys()];
  const stepsFor = (rows: number) => o.epochs * Math.ceil(rows / BATCH);
  const subsets = Array.from({ length: o.subsets }, (_, s) => subsetRows(o.train, o.from + s, o.fraction));
  const kept = subsets[0]?.length ?? 0;

  // Retrained margins, one cache file per (configuration, protocol, subset).
  const key = `${kind}-n${o.train}-m${o.test}-e${o.epochs}-b${BATCH}-sgd${o.lr}${o.fraction === 0.5 ? '' : `-f${o.fraction}`}`;
  let cachedModels = 0;
  let trainedModels = 0;
  const cacheStarted = performance.now();
  const retrained = new Map<LdsProtocol, Float64Array[]>();
  for (const protocol of o.protocols) {
    const dir = join(o.cache, key, protocol);
    mkdirSync(dir, { recursive: true });
    const list: Float64Array[] = [];
    for (let s = 0; s < o.subsets; s++) {
      const file = join(dir, `subset-${o.from + s}.json`);
      if (existsSync(file)) {
        list.push(Float64Array.from(JSON.parse(readFileSync(file, 'utf8')) as number[]));
        cachedModels++;
        continue;
      }
      // multi-seed: own init and order; same-run: the full run's init and seeded order, the left-out rows removed.
      const seed = protocol === 'multi-seed' ? 1000 + o.from + s : FULL_SEED;
      const model = build(kind, seed, o.lr);
      await trainSeeded(model, train, subsets[s]!, { steps: stepsFor(kept), seed, batchSize: BATCH });
      const m = await margins(model, test.xs, test.ys);
      model.dispose();
      writeFileSync(file, JSON.stringify(Array.from(m)));
      list.push(m);
      trainedModels++;
      console.log(`cache ${kind} ${protocol} subset ${o.from + s}: ${((performance.now() - cacheStarted) / 1000).toFixed(0)} s`);
    }
    retrained.set(protocol, list);
  }
  const cacheSeconds = (performance.now() - cacheStarted) / 1000;
  const dim = o.dim ?? TRAK_DIM[kind];
  const done = (rows: LdsRow[], params: number, runSeconds: number): LdsModelResult => {
    tf.dispose([train.xs, train.ys, test.xs, test.ys]);
    return { model: kind, rows, params, dim, runSeconds, cacheSeconds, cachedModels, trainedModels, seconds: (performance.now() - started) / 1000 };
  };
  if (o.cacheOnly) return done([], 0, 0);

  // The full run (seed FULL_SEED), checkpointed after each epoch; more full runs (other seeds) for TRAK ensembles.
  const root = mkdtempSync(join(tmpdir(), 'inrun-lds-'));
  const perEpoch = Math.ceil(o.train / BATCH);
  const fullRun = async (seed: number): Promise<{ dir: string; final: string; params: number; seconds: number }> => {
    const t = performance.now();
    const dir = join(root, `run-${seed}`);
    const model = build(kind, seed, o.lr);
    let final = '';
    await trainSeeded(model, train, all, {
      steps: stepsFor(o.train),
      seed,
      batchSize: BATCH,
      after: async (step) => {
        if (step % perEpoch !== 0) return;
        final = join(dir, `step-${String(step).padStart(9, '0')}`);
        await saveCheckpoint(model, final, { runId: `lds-${seed}`, step, epoch: step / perEpoch - 1, learningRate: o.lr });
      },
    });
    const params = model.countParams();
    model.dispose();
    return { dir, final, params, seconds: (performance.now() - t) / 1000 };
  };
  const rows: LdsRow[] = [];
  const record = (method: string, matrix: ArrayLike<number>, seconds: number, queries: readonly number[] | null) => {
    for (const protocol of o.protocols) {
      const actual = retrained.get(protocol)!;
      const { mean, spread } = queries === null ? score(matrix, subsets, actual, o.test) : score(matrix, subsets, actual.map((m) => queries.map((j) => m[j]!)), queries.length);
      rows.push({ protocol, method, lds: mean, spread, seconds, queries: queries?.length ?? o.test });
    }
    console.log(`${kind} ${method}: ${seconds.toFixed(1)} s; ${rows.slice(-o.protocols.length).map((r) => `${r.protocol} ${r.lds.toFixed(3)}`).join(', ')}`);
  };
  const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const t = performance.now();
    const value = await f();
    return [value, (performance.now() - t) / 1000];
  };
  const runs = [await fullRun(FULL_SEED)];
  const rowsOf = { xs: train.xs, ys: train.ys };
  const queries = { xs: test.xs, ys: test.ys };
  const has = (f: LdsFamily) => o.methods.includes(f);
  const trakOf = async (run: { final: string }, lambda: number | null, seed = 0) => await trak({ runs: [[run.final]], train: rowsOf, queries, k: 1, dim, seed, ...(lambda === null ? {} : { lambda }), matrix: true });

  if (o.sweep !== null) {
    // TRAK-1 at multiples of the kernel's mean diagonal (read off trak()'s default lambda), on the subsets given.
    const [base] = await timed(async () => await trakOf(runs[0]!, null));
    const meanDiagonal = base.runs[0]![0]!.lambda / TRAK_LAMBDA_SCALE;
    for (const c of o.sweep) {
      const [r, seconds] = await timed(async () => await trakOf(runs[0]!, c * meanDiagonal));
      record(`TRAK-1, lambda ${c} x mean diagonal (${(c * meanDiagonal).toPrecision(3)})`, r.matrix!, seconds, null);
    }
    rmSync(root, { recursive: true, force: true });
    return done(rows, runs[0]!.params, runs[0]!.seconds);
  }

  if (has('inrun')) {
    const everyRow = [...Array(o.test).keys()];
    const picked = o.inrunTest === null ? null : everyRow.slice(0, Math.min(o.inrunTest, o.test));
    const replay = (methods: readonly ('shapley1' | 'shapley2')[], rows: readonly number[]) => async () => {
      const model = build(kind, FULL_SEED, o.lr);
      const out = await inrunMatrices({ model, train, test, queries: rows, steps: stepsFor(o.train), seed: FULL_SEED, batchSize: BATCH, methods, update: 'sgd' });
      model.dispose();
      return out;
    };
    const [first, s1] = await timed(replay(['shapley1'], everyRow));
    record('in-run shapley1 (plain SGD: the SGD proxy and the optimizer-aware value coincide)', first.get('shapley1')!, s1, null);
    // Second order costs a target pass and a parameter-sized product per target and step: on the first inrunTest digits, with first order beside it.
    // --inrun-test 0 skips second order (its replay is the slowest row of the table).
    if (picked === null || picked.length > 0) {
      const [second, s2] = await timed(replay(['shapley1', 'shapley2'], picked ?? everyRow));
      if (picked !== null) record('in-run shapley1 (same replay as shapley2)', second.get('shapley1')!, s2, picked);
      record('in-run shapley2 (second order, finite-difference HVP)', second.get('shapley2')!, s2, picked);
    }
  }
  if (has('tracin')) {
    const [all2, t1] = await timed(async () => (await tracin({ checkpoints: runs[0]!.dir, train: rowsOf, queries, k: 1, selfInfluence: false, matrix: true })).matrix!);
    record('TracInCP, all layers (every epoch)', all2, t1, null);
    const [last, t2] = await timed(async () => (await tracin({ checkpoints: runs[0]!.dir, train: rowsOf, queries, k: 1, selfInfluence: false, layers: 'last', matrix: true })).matrix!);
    record(`TracInCP, last layer (every epoch)${kind === 'logreg' ? ' (= all layers here)' : ''}`, last, t2, null);
    const [dot, t3] = await timed(async () => (await tracin({ checkpoints: [runs[0]!.final], train: rowsOf, queries, k: 1, selfInfluence: false, matrix: true })).matrix!);
    record('GradDot (final model)', dot, t3, null);
  }
  if (has('sketch')) {
    for (const size of [16, 64]) {
      const [m, t] = await timed(async () => (await tracin({ checkpoints: runs[0]!.dir, train: rowsOf, queries, k: 1, selfInfluence: false, sketch: { size }, matrix: true })).matrix!);
      record(`TracInCP from gradient sketches, size ${size} per side`, m, t, null);
    }
  }
  if (has('trak')) {
    const most = Math.max(...o.trakRuns);
    for (let r = 1; r < most; r++) runs.push(await fullRun(FULL_SEED + 100 + r));
    const matrices: Float32Array[] = [];
    const seconds: number[] = [];
    let firstLambda = 0;
    for (const [r, run] of runs.slice(0, most).entries()) {
      const [res, t] = await timed(async () => await trakOf(run, o.lambda, o.trakSeeds === 'distinct' ? RUN_SEEDS * r : 0));
      if (matrices.length === 0) firstLambda = res.runs[0]![0]!.lambda;
      matrices.push(res.matrix!);
      seconds.push(t);
    }
    const lambdaName = o.lambda === null ? `default lambda (${TRAK_LAMBDA_SCALE} x mean diagonal)` : `lambda ${o.lambda}`;
    for (const k of o.trakRuns) {
      record(`TRAK-${k} (final checkpoint of ${k} run${k > 1 ? 's' : ''}, dim ${dim}, ${lambdaName}${o.trakSeeds === 'same' ? ', one projection for every run' : ''})`, ensembleMean(matrices, k), seconds.slice(0, k).reduce((a, b) => a + b, 0), null);
    }
    if (o.lambdaCompare !== null && o.lambda === null) {
      const [res, t] = await timed(async () => await trakOf(runs[0]!, (firstLambda / TRAK_LAMBDA_SCALE) * o.lambdaCompare!));
      record(`TRAK-1 (dim ${dim}, lambda ${o.lambdaCompare} x mean diagonal: the old default)`, res.matrix!, t, null);
    }
  }
  rmSync(root, { recursive: true, force: true });
  return done(rows, runs[0]!.params, runs[0]!.seconds);
}

/** LDS: per test digit j, Spearman over subsets of (sum of scores[i, j] over the subset's rows i, retrained margin); mean and standard deviation over j. */
export function score(matrix: ArrayLike<number>, subsets: readonly (readonly number[])[], retrained: readonly ArrayLike<number>[], queries: number): { mean: number; spread: number } {
  const per: number[] = [];
  for (let j = 0; j < queries; j++) {
    const predicted = subsets.map((rows) => rows.reduce((s, i) => s + matrix[i * queries + j]!, 0));
    const actual = retrained.map((m) => m[j]!);
    const rho = spearman(predicted, actual);
    if (Number.isFinite(rho)) per.push(rho);
  }
  const mean = per.reduce((s, x) => s + x, 0) / per.length;
  const spread = Math.sqrt(per.reduce((s, x) => s + (x - mean) ** 2, 0) / per.length);
  return { mean, spread };
}

/** dattri's published LDS (MNIST-10, 5,000 training and 500 test examples), by method as the table names them. */
const PUBLISHED: Record<LdsModel, string> = {
  logreg: 'influence functions about 0.80, TRAK-50 0.68, TRAK-10 0.64, TRAK-1 0.42, TracIn 0.33, Grad-Dot 0.33',
  mlp: 'TRAK-50 about 0.45, TRAK-10 0.33, IF-CG 0.26, TracIn 0.15, TRAK-1 0.11, Grad-Dot 0.10',
};

/** The published number a row stands beside, if dattri reports that method. */
function published(model: LdsModel, method: string): string {
  const table: Record<LdsModel, [RegExp, string][]> = {
    logreg: [[/^TRAK-1 \(final/, '0.42'], [/^TRAK-10 /, '0.64'], [/^TracInCP, all/, '0.33 (TracIn)'], [/^GradDot/, '0.33']],
    mlp: [[/^TRAK-1 \(final/, '0.11'], [/^TRAK-10 /, '0.33'], [/^TracInCP, all/, '0.15 (TracIn)'], [/^GradDot/, '0.10']],
  };
  return table[model].find(([re]) => re.test(method))?.[1] ?? '';
}

const MODEL_NAME: Record<LdsModel, string> = {
  logreg: 'logistic regression (Flatten -> Dense 10 softmax)',
  mlp: 'MLP (Flatten -> Dense 128 relu -> Dense 64 relu -> Dense 10 softmax)',
};

export function ldsMarkdown(r: LdsResult, o: LdsOptions): string {
  const full = o.train === LDS_DEFAULTS.train && o.test === LDS_DEFAULTS.test && o.subsets >= LDS_DEFAULTS.subsets;
  const sections = r.models.map((m) => {
    const tables = o.protocols.map((protocol) => {
      const lines = m.rows
        .filter((x) => x.protocol === protocol)
        .map((x) => `| ${x.method}${x.queries === o.test ? '' : ` (first ${x.queries} test digits)`} | ${x.lds.toFixed(3)} | ${x.spread.toFixed(3)} | ${x.seconds.toFixed(1)} | ${protocol === 'multi-seed' ? published(m.model, x.method) : ''} |`);
      return `**${m.model === 'logreg' ? 'Logistic regression' : 'MLP'}, ${protocol}** (${protocol === 'multi-seed' ? "each subset model has its own initial weights and batch order: the field's protocol" : "each subset model replays the full run's initial weights and seeded batch order with the left-out rows removed"}):

| method | LDS (mean over test digits) | spread (sd over test digits) | seconds | dattri |
|---|---|---|---|---|
${lines.join('\n')}`;
    });
    return `### ${m.model === 'logreg' ? 'Logistic regression' : 'MLP'}

${MODEL_NAME[m.model]}, ${m.params} parameters; one full run ${m.runSeconds.toFixed(1)} s. TRAK dim ${m.dim} per side. Retrained margins: ${m.cachedModels} read from
cache, ${m.trainedModels} trained (${m.cacheSeconds.toFixed(0)} s); ${m.seconds.toFixed(0)} s for this model in all. dattri's published LDS: ${PUBLISHED[m.model]}.

${tables.join('\n\n')}`;
  });
  return `## Linear datamodeling score (LDS) on MNIST${full ? '' : ': a small configuration'}

\`eval/lds.ts\` (\`npm run eval -- --only lds\`; \`npx tsx eval/lds.ts --model logreg,mlp\`). ${full ? '' : `**Sizes: ${o.train} training digits, ${o.test} test digits, ${o.subsets} subsets** (dattri's benchmark, and this harness's defaults, use 5,000, 500 and at least 50; this run is smaller, so its numbers are noisier and not directly comparable). `}Every model is trained with
plain SGD (learning rate ${o.lr}, batch ${BATCH}, ${o.epochs} epochs, mean cross-entropy, tf.js \`trainOnBatch\`) in a seeded batch order
(\`trainSeeded\`: each pass is a seeded permutation of all rows with the rows not kept left out), glorot-uniform initial weights from the run's seed.
Digits from the \`mnist\` package (\`digitsData\`, classes balanced, grey levels in [0, 1]; test digits disjoint from training).
${o.subsets} random subsets (subsets ${o.from}..${o.from + o.subsets - 1}) of ${o.fraction === 0.5 ? 'half' : `${o.fraction} of`} the training digits; one model retrained on each, per protocol; the model output is each test
digit's **margin** (correct-class logit minus log-sum-exp of the other logits, i.e. log p_y - log(1 - p_y)). LDS per test digit =
Spearman correlation over the subsets between the sum of the subset's scores and the retrained margin; the table gives the mean
and the standard deviation over test digits. Seconds: scoring only, after the full run's training (each extra TRAK run also costs one
full training run); ${o.backend} backend; ${r.seconds.toFixed(0)} s in all. ${machine()}.

${sections.join('\n\n')}`;
}

const list = (v: string) => v.split(',').filter((x) => x.length > 0);

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      train: { type: 'string', default: String(LDS_DEFAULTS.train) },
      test: { type: 'string', default: String(LDS_DEFAULTS.test) },
      subsets: { type: 'string', default: String(LDS_DEFAULTS.subsets) },
      from: { type: 'string', default: String(LDS_DEFAULTS.from) },
      fraction: { type: 'string', default: String(LDS_DEFAULTS.fraction) },
      lr: { type: 'string', default: String(LDS_DEFAULTS.lr) },
      epochs: { type: 'string', default: String(LDS_DEFAULTS.epochs) },
      model: { type: 'string', default: LDS_DEFAULTS.models.join(',') },
      protocol: { type: 'string', default: LDS_DEFAULTS.protocols.join(',') },
      methods: { type: 'string', default: LDS_DEFAULTS.methods.join(',') },
      'trak-runs': { type: 'string', default: LDS_DEFAULTS.trakRuns.join(',') },
      dim: { type: 'string' },
      lambda: { type: 'string' },
      'lambda-compare': { type: 'string', default: String(LDS_DEFAULTS.lambdaCompare) },
      sweep: { type: 'string' },
      'inrun-test': { type: 'string' },
      'trak-seeds': { type: 'string', default: LDS_DEFAULTS.trakSeeds },
      cache: { type: 'string', default: LDS_DEFAULTS.cache },
      'cache-only': { type: 'boolean', default: false },
      backend: { type: 'string', default: 'wasm' },
      out: { type: 'string', default: 'docs/evaluation.md' },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const options: LdsOptions = {
    ...LDS_DEFAULTS,
    backend: args.backend,
    train: Number(args.train),
    test: Number(args.test),
    subsets: Number(args.subsets),
    from: Number(args.from),
    fraction: Number(args.fraction),
    lr: Number(args.lr),
    epochs: Number(args.epochs),
    models: list(args.model) as LdsModel[],
    protocols: list(args.protocol) as LdsProtocol[],
    methods: list(args.methods) as LdsFamily[],
    trakRuns: list(args['trak-runs']).map(Number),
    dim: args.dim === undefined ? null : Number(args.dim),
    lambda: args.lambda === undefined ? null : Number(args.lambda),
    lambdaCompare: args['lambda-compare'] === 'none' ? null : Number(args['lambda-compare']),
    sweep: args.sweep === undefined ? null : list(args.sweep).map(Number),
    inrunTest: args['inrun-test'] === undefined ? null : Number(args['inrun-test']),
    trakSeeds: args['trak-seeds'] === 'same' ? 'same' : 'distinct',
    cache: args.cache,
    cacheOnly: args['cache-only'],
  };
  const result = await lds(options);
  if (options.cacheOnly) {
    for (const m of result.models) console.log(`cache ${m.model}: ${m.cachedModels} cached, ${m.trainedModels} trained, ${m.cacheSeconds.toFixed(0)} s`);
  } else {
    const markdown = ldsMarkdown(result, options);
    console.log(markdown);
    // A sweep or a study run prints its table; only the reported configuration writes the section.
    if (options.sweep === null && !args['no-write']) writeEvaluation(args.out, 'lds', markdown);
  }
}
