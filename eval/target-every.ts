/**
 * What `targetEvery: n` costs in accuracy: the demo's run with the target pass every step (exact) and
 * every n steps, compared by the run totals' rank correlation, the overlap of the 100 most harmful
 * emails, and how well each ranks the flipped labels.
 *
 *   npx tsx eval/target-every.ts [--epochs 3] [--backend wasm] [--out docs/evaluation.md]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, useFastEmbeddingGradient } from 'inrun';
import { spamClassifier, splitTensors } from '../examples/spam-classifier.js';
import { spamData } from '../examples/spam-data.js';
import { machine } from '../bench/report.js';
import { auroc, spearman } from './metrics.js';
import { isMain, writeEvaluation } from './report.js';

export interface TargetEveryOptions {
  readonly backend: string;
  readonly epochs: number;
  readonly every: readonly number[];
  readonly limit?: number;
}

export interface TargetEveryRow {
  readonly every: number;
  readonly seconds: number;
  readonly spearman: number;
  /** Share of the exact run's 100 lowest-value emails among this run's 100 lowest. */
  readonly harmfulOverlap: number;
  readonly auroc: number;
}

export async function targetEvery(options: TargetEveryOptions): Promise<TargetEveryRow[]> {
  await tf.setBackend(options.backend);
  useFastEmbeddingGradient();
  const data = spamData(options.limit === undefined ? {} : { limit: options.limit, valSize: 100, testSize: 100 });
  const train = splitTensors(data.train, data.seqLen);
  const val = splitTensors(data.val, data.seqLen, [...Array(Math.min(128, data.val.emails.length)).keys()]);
  const ids = data.train.emails.map((e) => e.id);
  const values = async (every: number) => {
    const started = performance.now();
    const model = spamClassifier({ vocabSize: data.vocabulary.length, seqLen: data.seqLen });
    const run = attach(model, { targets: { val }, methods: ['shapley1'], targetEvery: every, seed: 1, delivery: { stepRecords: false } });
    await run.fit(train.xs, train.ys, { ids, epochs: options.epochs, batchSize: 32, verbose: 0 });
    const scores = await run.close();
    model.optimizer.dispose();
    model.dispose();
    const byId = new Map(scores.ids.map((id, i) => [id, scores.columns['shapley1:val']![i]!]));
    return { value: Float64Array.from(ids, (id) => byId.get(id) ?? 0), seconds: (performance.now() - started) / 1000 };
  };
  const lowest = (v: Float64Array) => new Set([...v.keys()].sort((a, b) => v[a]! - v[b]!).slice(0, 100));
  const exact = await values(1);
  const exactLowest = lowest(exact.value);
  const rows: TargetEveryRow[] = [];
  for (const every of [1, ...options.every]) {
    const r = every === 1 ? exact : await values(every);
    rows.push({
      every,
      seconds: r.seconds,
      spearman: spearman(r.value, exact.value),
      harmfulOverlap: [...lowest(r.value)].filter((i) => exactLowest.has(i)).length / 100,
      auroc: auroc(r.value.map((v) => -v), data.train.flipped),
    });
  }
  tf.dispose([train.xs, train.ys, val.xs, val.ys]);
  return rows;
}

export function targetEveryMarkdown(rows: readonly TargetEveryRow[], options: TargetEveryOptions): string {
  const lines = rows.map((r) => `| ${r.every} | ${r.seconds.toFixed(0)} | ${r.spearman.toFixed(4)} | ${(r.harmfulOverlap * 100).toFixed(0)}% | ${r.auroc.toFixed(3)} |`);
  return `## The target pass every n steps (\`targetEvery\`)

\`eval/target-every.ts\`. Protocol: the demo's run (SpamAssassin with 10% flipped labels, the text classifier,
Adam 0.005, batch 32, ${options.epochs} epochs, seed 1, \`shapley1\` toward 128 clean validation emails), once
with the target pass at every step and once per n with \`targetEvery: n\`; training is identical, only
the target rows are older between refreshes. Compared with the exact run: Spearman of the run totals over
all training emails, the overlap of the 100 lowest-value (most harmful) emails, and the AUROC of the
lowest values for the flipped labels. The seconds include training. ${options.backend} backend. ${machine()}.

| targetEvery | seconds | Spearman with exact | 100 most harmful: shared with exact | flipped-label AUROC |
|---|---|---|---|---|
${lines.join('\n')}`;
}

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: { epochs: { type: 'string', default: '3' }, backend: { type: 'string', default: 'wasm' }, out: { type: 'string', default: 'docs/evaluation.md' } },
  });
  const options: TargetEveryOptions = { backend: args.backend, epochs: Number(args.epochs), every: [4, 16, 64] };
  const markdown = targetEveryMarkdown(await targetEvery(options), options);
  console.log(markdown);
  writeEvaluation(args.out, 'target-every', markdown);
}
