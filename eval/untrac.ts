/**
 * Dataset-level influence against leave-source-out retraining (Isonuma & Titov 2024's protocol, small),
 * on two reference models: the text classifier on SpamAssassin with its 5 corpus groups as sources and
 * each group's test emails as a target, and the tiny causal transformer on synthetic corpora (Markov
 * chains with different statistics) with probes drawn from some of them. Truth: retrain from the same
 * initial weights without a source for the same number of steps (rate decayed linearly to 0), target
 * loss without minus with, averaged over seeds; the truth's own seed-to-seed correlation is the ceiling.
 * Compared: UnTrac and UnTrac-Inv (`untrac`), in-run values summed per source (`sourceValues` over
 * `shapley1`, SGD proxy and optimizer-aware), TracIn from checkpoints summed per source, GradDot.
 *
 *   npx tsx eval/untrac.ts [--backend wasm] [--seeds 3] [--per-source 200] [--out docs/evaluation.md]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { useFastEmbeddingGradient } from 'inrun';
import { spamClassifier, splitTensors } from '../examples/spam-classifier.js';
import { spamData, type SpamData } from '../examples/spam-data.js';
import { tinyTransformer } from '../examples/tiny-transformer.js';
import { machine } from '../bench/report.js';
import { uniform } from './metrics.js';
import { isMain, writeEvaluation } from './report.js';
import { runSetting, settingMarkdown, type Data, type SettingResult, type SourceTask } from './untrac-harness.js';

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
  /** Training steps of batch 32 in the equal and the unequal setting. @defaultValue [200, 300] */
  readonly steps?: readonly [number, number];
  /** Adam learning rates of the ascents (each reported). @defaultValue [1e-4, 1e-3] */
  readonly ascentRates?: readonly number[];
  /** Also ascend with plain SGD at this rate (the paper's ablation); null leaves it out. @defaultValue 0.01 */
  readonly sgdRate?: number | null;
  /** TracIn checkpoints, evenly spaced. @defaultValue 5 */
  readonly checkpoints?: number;
  /** Vocabulary size of the classifier (smaller: a quicker run). @defaultValue 5000 */
  readonly vocabSize?: number;
  /** Also measure the truth's seed-to-seed correlation with a constant learning rate (equal-size classifier setting). @defaultValue true */
  readonly constantTrap?: boolean;
  /** The transformer's setting: sequences per corpus and training steps (batch 16); null leaves it out. @defaultValue { perSource: 96, steps: 150 } */
  readonly lm?: { readonly perSource: number; readonly steps: number } | null;
}

export interface UntracEvalResult {
  readonly settings: readonly SettingResult[];
  readonly seconds: number;
}

const GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
const classOf = (group: string) => (group.startsWith('spam') ? 1 : 0);
const LR = 0.005;

/** The text classifier with the chosen training emails of each group as sources. */
function spamTask(data: SpamData, picked: ReadonlyMap<string, number[]>, steps: number, targetRows: number): SourceTask {
  const { seqLen } = data;
  const rows = GROUPS.flatMap((g) => picked.get(g)!);
  const targetData = Object.fromEntries(
    GROUPS.map((g) => [g, splitTensors(data.test, seqLen, data.test.emails.flatMap((e, i) => (e.group === g ? [i] : [])).slice(0, targetRows))]),
  );
  return {
    sources: GROUPS,
    targets: GROUPS,
    train: splitTensors(data.train, seqLen, rows),
    sourceOfRow: GROUPS.flatMap((g) => picked.get(g)!.map(() => g)),
    perSource: Object.fromEntries(GROUPS.map((g) => [g, splitTensors(data.train, seqLen, picked.get(g))])),
    targetData,
    classes: { sources: GROUPS.map(classOf), targets: GROUPS.map(classOf) },
    build: (seed) => {
      const model = spamClassifier({ vocabSize: data.vocabulary.length, seqLen, seed, learningRate: LR });
      return {
        model,
        trainer: model,
        variables: model.trainableWeights.map((w) => w.read() as tf.Variable),
        loss: (d) => tf.metrics.binaryCrossentropy(d.ys, model.apply(d.xs) as tf.Tensor) as tf.Tensor1D,
        dispose: () => model.dispose(),
      };
    },
    learningRate: LR,
    steps,
    batchSize: 32,
  };
}

const LM = { vocab: 48, context: 16, lr: 0.01 };

/**
 * Synthetic corpora for the transformer: first-order Markov chains over one shared vocabulary. "a" and
 * "b" are unrelated chains; "a-noisy" follows "a" half the time and is uniform otherwise; "c" is uniform
 * noise. So the truth is graded: for probes from "a", "a" matters most, "a-noisy" some, "b" and "c" little.
 */
function lmTask(perSource: number, steps: number): SourceTask {
  const random = uniform(7);
  const chain = () =>
    Array.from({ length: LM.vocab }, () => {
      const row = Array.from({ length: LM.vocab }, () => random() ** 8);
      const sum = row.reduce((a, b) => a + b, 0);
      return row.map((p) => p / sum);
    });
  const [a, b] = [chain(), chain()];
  const uniformRow = new Array<number>(LM.vocab).fill(1 / LM.vocab);
  const corpora: Record<string, (prev: number) => readonly number[]> = {
    a: (p) => a[p]!,
    'a-noisy': (p) => (random() < 0.5 ? a[p]! : uniformRow),
    b: (p) => b[p]!,
    c: () => uniformRow,
  };
  const sample = (probs: readonly number[]) => {
    let u = random();
    for (let i = 0; i < probs.length; i++) if ((u -= probs[i]!) <= 0) return i;
    return probs.length - 1;
  };
  const sequences = (next: (prev: number) => readonly number[], n: number): Data => {
    const ids = new Int32Array(n * (LM.context + 1));
    for (let r = 0; r < n; r++) {
      let token = Math.floor(random() * LM.vocab);
      for (let p = 0; p <= LM.context; p++) {
        ids[r * (LM.context + 1) + p] = token;
        token = sample(next(token));
      }
    }
    const all = tf.tensor2d(ids, [n, LM.context + 1], 'int32');
    const out = { xs: tf.slice(all, [0, 0], [n, LM.context]), ys: tf.slice(all, [0, 1], [n, LM.context]) };
    all.dispose();
    return out;
  };
  const sources = Object.keys(corpora);
  const perSourceData = Object.fromEntries(sources.map((s) => [s, sequences(corpora[s]!, perSource)]));
  const targets = ['a', 'b'];
  const targetData = Object.fromEntries(targets.map((t) => [t, sequences(corpora[t]!, 32)]));
  return {
    sources,
    targets,
    train: { xs: tf.concat(sources.map((s) => perSourceData[s]!.xs)), ys: tf.concat(sources.map((s) => perSourceData[s]!.ys)) },
    sourceOfRow: sources.flatMap((s) => new Array<string>(perSource).fill(s)),
    perSource: perSourceData,
    targetData,
    classes: null,
    build: (seed) => {
      const model = tinyTransformer({ vocabSize: LM.vocab, context: LM.context, dModel: 32, heads: 2, layers: 1, learningRate: LM.lr, seed });
      return {
        model,
        trainer: { optimizer: model.optimizer, trainOnBatch: (xs, ys) => model.optimizer.minimize(() => tf.mean(model.loss(ys, model.predict(xs))) as tf.Scalar) },
        variables: model.variables,
        loss: (d) => model.loss(d.ys, model.predict(d.xs)) as tf.Tensor1D,
        dispose: () => {
          model.optimizer.dispose();
          model.dispose();
        },
      };
    },
    learningRate: LM.lr,
    steps,
    batchSize: 16,
  };
}

function disposeTask(task: SourceTask): void {
  tf.dispose([task.train, ...Object.values(task.perSource), ...Object.values(task.targetData)].flatMap((d) => [d.xs, d.ys]));
}

export async function untracEval(options: UntracEvalOptions): Promise<UntracEvalResult> {
  const started = performance.now();
  await tf.setBackend(options.backend);
  useFastEmbeddingGradient();
  const log = (line: string) => console.error(`  ${line} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  const harness = {
    seeds: options.seeds ?? 3,
    ascentRates: options.ascentRates ?? [1e-4, 1e-3],
    sgdRate: options.sgdRate === undefined ? 0.01 : options.sgdRate,
    ascentBatch: 1,
    checkpoints: options.checkpoints ?? 5,
    constantTrap: options.constantTrap ?? true,
    log,
  };
  const data = spamData({ flipRate: 0, ...(options.vocabSize === undefined ? {} : { vocabSize: options.vocabSize }) });
  const byGroup = new Map(GROUPS.map((g) => [g, data.train.emails.flatMap((e, i) => (e.group === g ? [i] : []))]));
  const [equalSteps, unequalSteps] = options.steps ?? [200, 300];
  const perSource = options.perSource ?? 200;
  const targetRows = options.targetRows ?? 64;
  const settings: SettingResult[] = [];
  // The constant-rate trap is measured once, where it is cheapest (it doubles the truth's retraining).
  const picks: [string, Map<string, number[]>, number, boolean][] = [
    ['text classifier, equal sizes', new Map(GROUPS.map((g) => [g, byGroup.get(g)!.slice(0, perSource)])), equalSteps, harness.constantTrap],
    ['text classifier, unequal sizes', new Map(GROUPS.map((g) => [g, byGroup.get(g)!.slice(0, options.cap ?? Number.POSITIVE_INFINITY)])), unequalSteps, false],
  ];
  for (const [name, picked, steps, constantTrap] of picks) {
    const task = spamTask(data, picked, steps, targetRows);
    settings.push(await runSetting(name, task, { ...harness, constantTrap }));
    disposeTask(task);
  }
  const lm = options.lm === undefined ? { perSource: 96, steps: 150 } : options.lm;
  if (lm !== null) {
    const task = lmTask(lm.perSource, lm.steps);
    settings.push(await runSetting('tiny transformer, synthetic corpora', task, { ...harness, ascentBatch: 4, constantTrap: false }));
    disposeTask(task);
  }
  return { settings, seconds: (performance.now() - started) / 1000 };
}

export function untracMarkdown(r: UntracEvalResult, options: UntracEvalOptions): string {
  return `## Dataset-level influence (UnTrac, UnTrac-Inv, source values) against leave-source-out retraining

\`eval/untrac.ts\`. Protocol (Isonuma & Titov 2024, small). Truth: for each source, retrain from the same
initial weights without it for the same number of steps (seeded batch order, the dropped rows left out of
each pass; Adam with the rate decayed linearly to 0), truth = target loss without minus with all; mean over
${options.seeds ?? 3} seeds (initial weights and order). The ceiling is the truth's own seed-to-seed correlation. The methods read
the seed-1 model trained on everything (or its run): UnTrac and UnTrac-Inv (\`untrac\`, a fresh Adam per
ascent at each rate listed, and plain SGD as in the paper's ablation), in-run \`shapley1\` values toward each target summed per source
(\`sourceValues\`), TracIn from ${options.checkpoints ?? 5} evenly spaced checkpoints (each source's summed gradient times the
target's mean gradient times the rate at the checkpoint), GradDot (the same product at the final weights
only). Pearson and Spearman are over all (target, source) pairs; per-target Pearson is across sources,
mean over targets (the paper's figure; few points each, so noisy). Seconds: the method's own time
(in-run values: the attributed run's time minus a plain run's; they need no extra training).

- **Text classifier** (Embedding, pooling, sigmoid; Adam ${LR}, batch 32) on SpamAssassin without label flips:
  the sources are the 5 corpus groups, the targets each group's first ${options.targetRows ?? 64} test emails (hard-ham-1 has
  fewer), so 25 pairs. Sources are single-class (ham or spam), so a class-only answer already
  correlates: the within-class Pearson subtracts, per target, each class's mean from both vectors, and is
  the column to judge methods by. UnTrac ascends at batch 1.
- **Tiny transformer** (1 block, d_model 32, context ${LM.context}, vocabulary ${LM.vocab}; Adam ${LM.lr}, batch 16) on 4 synthetic
  corpora: Markov chains "a" and "b", "a-noisy" (follows "a" half the time, uniform otherwise) and "c"
  (uniform noise); targets: 32 held-out sequences of "a" and of "b" (8 pairs, no classes). UnTrac
  ascends at batch 4.

${options.backend} backend; ${r.seconds.toFixed(0)} s in all. ${machine()}.

${r.settings.map(settingMarkdown).join('\n\n')}`;
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
  const markdown = untracMarkdown(await untracEval(options), options);
  console.log(markdown);
  writeEvaluation(args.out, 'untrac', markdown);
}
