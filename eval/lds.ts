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
import { shuffle, trainSeeded } from './train.js';

export type LdsProtocol = 'multi-seed' | 'same-run';

export interface LdsOptions {
  readonly backend: string;
  /** Training digits. @defaultValue 5000 */
  readonly train: number;
  /** Test digits (the queries). @defaultValue 500 */
  readonly test: number;
  /** Random half-size subsets, one retrained model each. @defaultValue 50 */
  readonly subsets: number;
  /** Epochs of every training run (full and subset). @defaultValue 3 */
  readonly epochs: number;
  /** Logistic regression (7,850 parameters) or the MLP 784-128-64-10 (about 0.11M). @defaultValue 'logreg' */
  readonly model: 'logreg' | 'mlp';
  /** @defaultValue ['multi-seed', 'same-run'] */
  readonly protocols: readonly LdsProtocol[];
  /** TRAK ensemble sizes (independently trained full models, final checkpoint each). @defaultValue [1, 5] */
  readonly trakRuns: readonly number[];
  /** TRAK's projected width. @defaultValue 512 */
  readonly dim: number;
  /** TRAK's ridge term; null: trak()'s default (1e-3 x the kernel's mean diagonal). @defaultValue null */
  readonly lambda: number | null;
  /** Cache folder of the retrained margins. @defaultValue '.cache/lds' */
  readonly cache: string;
}

export const LDS_DEFAULTS: Omit<LdsOptions, 'backend'> = {
  train: 5000,
  test: 500,
  subsets: 50,
  epochs: 3,
  model: 'logreg',
  protocols: ['multi-seed', 'same-run'],
  trakRuns: [1, 5],
  dim: 512,
  lambda: null,
  cache: '.cache/lds',
};

const BATCH = 32;
const LEARNING_RATE = 0.1;
const FULL_SEED = 1;

export interface LdsRow {
  readonly protocol: LdsProtocol;
  readonly method: string;
  /** Mean over test digits of the per-digit Spearman correlation. */
  readonly lds: number;
  /** Standard deviation of the per-digit correlations over test digits. */
  readonly spread: number;
  /** Seconds the method took (scores only, after the full run's training). */
  readonly seconds: number;
}

export interface LdsResult {
  readonly rows: readonly LdsRow[];
  readonly params: number;
  readonly cacheSeconds: number;
  readonly cachedModels: number;
  readonly trainedModels: number;
  readonly seconds: number;
}

/** The model: Flatten -> [Dense 128 relu -> Dense 64 relu ->] Dense 10 softmax, SGD, seeded init. */
function build(kind: LdsOptions['model'], seed: number): tf.Sequential {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed * 10 + i });
  const hidden = kind === 'mlp' ? [tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: init(1) }), tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(2) })] : [];
  const model = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), ...hidden, tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(3) })] });
  model.compile({ optimizer: tf.train.sgd(LEARNING_RATE), loss: 'categoricalCrossentropy' });
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

export async function lds(options: LdsOptions): Promise<LdsResult> {
  const started = performance.now();
  await tf.setBackend(options.backend);
  const o = options;
  const train = digitsData({ rows: o.train, seed: 1 });
  const test = digitsData({ rows: o.test, offset: Math.ceil(o.train / 10), seed: 1 });
  const all = [...Array(o.train).keys()];
  const stepsFor = (rows: number) => o.epochs * Math.ceil(rows / BATCH);
  const half = Math.floor(o.train / 2);
  // Subset s: its own seeded draw of half the rows.
  const subsets = Array.from({ length: o.subsets }, (_, s) => shuffle(all, uniform(7919 + s)).slice(0, half));

  // Retrained margins, one cache file per (configuration, protocol, subset).
  const key = `${o.model}-n${o.train}-m${o.test}-e${o.epochs}-b${BATCH}-sgd${LEARNING_RATE}`;
  let cachedModels = 0;
  let trainedModels = 0;
  const cacheStarted = performance.now();
  const retrained = new Map<LdsProtocol, Float64Array[]>();
  for (const protocol of o.protocols) {
    const dir = join(o.cache, key, protocol);
    mkdirSync(dir, { recursive: true });
    const list: Float64Array[] = [];
    for (let s = 0; s < o.subsets; s++) {
      const file = join(dir, `subset-${s}.json`);
      if (existsSync(file)) {
        list.push(Float64Array.from(JSON.parse(readFileSync(file, 'utf8')) as number[]));
        cachedModels++;
        continue;
      }
      // multi-seed: own init and order; same-run: the full run's init and seeded order, the left-out rows removed.
      const seed = protocol === 'multi-seed' ? 1000 + s : FULL_SEED;
      const model = build(o.model, seed);
      await trainSeeded(model, train, subsets[s]!, { steps: stepsFor(half), seed, batchSize: BATCH });
      const m = await margins(model, test.xs, test.ys);
      model.dispose();
      writeFileSync(file, JSON.stringify(Array.from(m)));
      list.push(m);
      trainedModels++;
    }
    retrained.set(protocol, list);
  }
  const cacheSeconds = (performance.now() - cacheStarted) / 1000;

  // The full run (seed FULL_SEED), checkpointed after each epoch; more full runs (other seeds) for TRAK ensembles.
  const root = mkdtempSync(join(tmpdir(), 'inrun-lds-'));
  const perEpoch = Math.ceil(o.train / BATCH);
  const fullRun = async (seed: number): Promise<{ dir: string; final: string; params: number }> => {
    const dir = join(root, `run-${seed}`);
    const model = build(o.model, seed);
    let final = '';
    await trainSeeded(model, train, all, {
      steps: stepsFor(o.train),
      seed,
      batchSize: BATCH,
      after: async (step) => {
        if (step % perEpoch !== 0) return;
        final = join(dir, `step-${String(step).padStart(9, '0')}`);
        await saveCheckpoint(model, final, { runId: `lds-${seed}`, step, epoch: step / perEpoch - 1, learningRate: LEARNING_RATE });
      },
    });
    const params = model.countParams();
    model.dispose();
    return { dir, final, params };
  };
  const runs = [await fullRun(FULL_SEED)];
  for (let r = 1; r < Math.max(1, ...o.trakRuns); r++) runs.push(await fullRun(FULL_SEED + 100 + r));
  const rowsOf = { xs: train.xs, ys: train.ys };
  const queries = { xs: test.xs, ys: test.ys };
  const methods: { method: string; scores: () => Promise<Float32Array> }[] = [
    { method: 'TracInCP, all layers (every epoch)', scores: async () => (await tracin({ checkpoints: runs[0]!.dir, train: rowsOf, queries, k: 1, selfInfluence: false, matrix: true })).matrix! },
    { method: 'TracInCP, last layer (every epoch)', scores: async () => (await tracin({ checkpoints: runs[0]!.dir, train: rowsOf, queries, k: 1, selfInfluence: false, layers: 'last', matrix: true })).matrix! },
    { method: 'GradDot (final model)', scores: async () => (await tracin({ checkpoints: [runs[0]!.final], train: rowsOf, queries, k: 1, selfInfluence: false, matrix: true })).matrix! },
    ...o.trakRuns.map((k) => ({
      method: `TRAK-${k} (final checkpoint of ${k} run${k > 1 ? 's' : ''}, dim ${o.dim})`,
      scores: async () => (await trak({ runs: runs.slice(0, k).map((r) => [r.final]), train: rowsOf, queries, k: 1, dim: o.dim, ...(o.lambda === null ? {} : { lambda: o.lambda }), matrix: true })).matrix!,
    })),
  ];
  const rows: LdsRow[] = [];
  for (const { method, scores } of methods) {
    const t = performance.now();
    const matrix = await scores();
    const seconds = (performance.now() - t) / 1000;
    for (const protocol of o.protocols) {
      const { mean, spread } = score(matrix, subsets, retrained.get(protocol)!, o.test);
      rows.push({ protocol, method, lds: mean, spread, seconds });
    }
    console.log(`${method}: ${seconds.toFixed(1)} s`);
  }
  rmSync(root, { recursive: true, force: true });
  tf.dispose([train.xs, train.ys, test.xs, test.ys]);
  return { rows, params: runs[0]!.params, cacheSeconds, cachedModels, trainedModels, seconds: (performance.now() - started) / 1000 };
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

const PUBLISHED: Record<LdsOptions['model'], string> = {
  logreg: 'influence functions about 0.80, TRAK-50 0.68, TRAK-10 0.64, TRAK-1 0.42, TracIn 0.33, Grad-Dot 0.33',
  mlp: 'TRAK-50 about 0.45, TRAK-10 0.33, IF-CG 0.26, TracIn 0.15, TRAK-1 0.11, Grad-Dot 0.10',
};

export function ldsMarkdown(r: LdsResult, o: LdsOptions): string {
  const full = o.train === LDS_DEFAULTS.train && o.test === LDS_DEFAULTS.test && o.subsets >= LDS_DEFAULTS.subsets;
  const tables = o.protocols.map((protocol) => {
    const lines = r.rows.filter((x) => x.protocol === protocol).map((x) => `| ${x.method} | ${x.lds.toFixed(3)} | ${x.spread.toFixed(3)} | ${x.seconds.toFixed(1)} |`);
    return `**${protocol}** (${protocol === 'multi-seed' ? "each subset model has its own initial weights and batch order: the field's protocol" : "each subset model replays the full run's initial weights and seeded batch order with the left-out rows removed"}):

| method | LDS (mean over test digits) | spread (sd over test digits) | seconds |
|---|---|---|---|
${lines.join('\n')}`;
  });
  return `## Linear datamodeling score (LDS) on MNIST${full ? '' : ': a small configuration'}

\`eval/lds.ts\`. ${full ? '' : `**Sizes: ${o.train} training digits, ${o.test} test digits, ${o.subsets} subsets** (dattri's benchmark, and this harness's defaults, use 5,000, 500 and at least 50; this run is smaller to fit a shared 2-core machine, so its numbers are noisier and not directly comparable). `}Model: ${o.model === 'logreg' ? 'logistic regression (Flatten -> Dense 10 softmax)' : 'MLP (Flatten -> Dense 128 relu -> Dense 64 relu -> Dense 10 softmax)'}, ${r.params} parameters, trained with
plain SGD (learning rate ${LEARNING_RATE}, batch ${BATCH}, ${o.epochs} epochs, cross-entropy) in a seeded batch order
(\`trainSeeded\`). Digits from the \`mnist\` package (\`digitsData\`, classes balanced; test digits disjoint from training).
${o.subsets} random subsets of half the training digits; one model retrained on each, per protocol; the model output is each test
digit's **margin** (correct-class logit minus log-sum-exp of the other logits, i.e. log p_y - log(1 - p_y)). LDS per test digit =
Spearman correlation over the subsets between the sum of the subset's scores and the retrained margin; the table gives the mean
over test digits and the standard deviation over test digits. Scores: TracInCP over the full run's checkpoints after each epoch
(\`tracin()\` with \`matrix: true\`, all layers and \`layers: 'last'\`; for logistic regression the two coincide), GradDot
(\`tracin()\` on the final checkpoint only), TRAK (\`trak()\`, margin output, dim ${o.dim}, lambda ${o.lambda ?? 'default (1e-3 x the kernel\'s mean diagonal)'}, the final checkpoint of
1 or several independently seeded full runs). Seconds: scoring only (the extra TRAK runs' training not included). In-run
\`shapley1\` / \`shapley2\` / sketches are not measured yet. Retrained margins cached under \`${o.cache}/\`
(${r.cachedModels} read from cache, ${r.trainedModels} trained, ${r.cacheSeconds.toFixed(0)} s); ${o.backend} backend; ${r.seconds.toFixed(0)} s in all. ${machine()}.

dattri's published LDS (MNIST-10, 5,000 training and 500 test examples, ${o.model === 'logreg' ? 'logistic regression' : 'MLP of about 0.11M parameters'}): ${PUBLISHED[o.model]}.

${tables.join('\n\n')}

${full ? '' : `The full-size run is the documented next step: \`npx tsx eval/lds.ts --train 5000 --test 500 --subsets 50\` (add \`--model mlp\` for the MLP).
Its cache build (the ${'50 x 2'} subset retrainings) is resumable: each retrained model's margins are written to
\`${o.cache}/<configuration>/<protocol>/subset-<s>.json\` as soon as it finishes, and a rerun skips the files that exist.`}`;
}

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      train: { type: 'string', default: String(LDS_DEFAULTS.train) },
      test: { type: 'string', default: String(LDS_DEFAULTS.test) },
      subsets: { type: 'string', default: String(LDS_DEFAULTS.subsets) },
      epochs: { type: 'string', default: String(LDS_DEFAULTS.epochs) },
      model: { type: 'string', default: LDS_DEFAULTS.model },
      protocol: { type: 'string', default: LDS_DEFAULTS.protocols.join(',') },
      'trak-runs': { type: 'string', default: LDS_DEFAULTS.trakRuns.join(',') },
      dim: { type: 'string', default: String(LDS_DEFAULTS.dim) },
      lambda: { type: 'string' },
      cache: { type: 'string', default: LDS_DEFAULTS.cache },
      backend: { type: 'string', default: 'wasm' },
      out: { type: 'string', default: 'docs/evaluation.md' },
    },
  });
  const options: LdsOptions = {
    ...LDS_DEFAULTS,
    backend: args.backend,
    train: Number(args.train),
    test: Number(args.test),
    subsets: Number(args.subsets),
    epochs: Number(args.epochs),
    model: args.model === 'mlp' ? 'mlp' : 'logreg',
    protocols: args.protocol.split(',') as LdsProtocol[],
    trakRuns: args['trak-runs'].split(',').map(Number),
    dim: Number(args.dim),
    cache: args.cache,
    lambda: args.lambda === undefined ? null : Number(args.lambda),
  };
  const result = await lds(options);
  const markdown = ldsMarkdown(result, options);
  console.log(markdown);
  writeEvaluation(args.out, 'lds', markdown);
}
