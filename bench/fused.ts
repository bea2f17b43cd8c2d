/**
 * The fused target pass against the separate one: kernels per step (`tf.profile`) for a plain step
 * and a first-order step with each pass, and step-time ratios to a plain step (median of per-round
 * ratios, the three modes alternated in one process), per reference model and backend. Writes the
 * `fused-pass` section of docs/benchmarks.md.
 *
 *   npx tsx bench/fused.ts [--backends cpu,wasm] [--rounds 7] [--budget 400] [--kernels-only]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { useFastEmbeddingGradient } from 'inrun';
import { machine, median, writeSection } from './report.js';
import { cnn, kernelCount, tabular, text, timeSteps, withMode, type Instance, type Workload } from './workloads.js';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'cpu,wasm' },
    rounds: { type: 'string', default: '7' },
    /** Milliseconds of plain training per mode and round. */
    budget: { type: 'string', default: '400' },
    'kernels-only': { type: 'boolean', default: false },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});
useFastEmbeddingGradient();

/** The MLP of issue 21's goal: 128-256-256-10, relu, softmax. */
const wideMlp: Workload = {
  name: 'MLP 128-256-256-10',
  seqLen: null,
  build(batch, k) {
    const init = (seed: number) => tf.initializers.glorotUniform({ seed });
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 256, activation: 'relu', inputShape: [128], kernelInitializer: init(1) }),
        tf.layers.dense({ units: 256, activation: 'relu', kernelInitializer: init(2) }),
        tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(3) }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
    const rows = (n: number) => ({ xs: tf.randomNormal([n, 128]), ys: tf.oneHot(tf.randomUniform([n], 0, 10, 'int32') as tf.Tensor1D, 10) });
    const train = rows(batch);
    const target = rows(k);
    return {
      model,
      x: train.xs,
      y: train.ys,
      target,
      step: () => model.trainOnBatch(train.xs, train.ys),
      loss: (ys, xs) => tf.metrics.categoricalCrossentropy(ys, model.apply(xs) as tf.Tensor),
      variables: model.trainableWeights.map((w) => w.read() as tf.Variable),
      dispose: () => {
        tf.dispose([train.xs, train.ys, target.xs, target.ys]);
        model.optimizer.dispose();
        model.dispose();
      },
    } satisfies Instance;
  },
};

type Pass = 'plain' | 'separate' | 'fused';
const PASSES: readonly Pass[] = ['plain', 'separate', 'fused'];

interface Row {
  readonly model: string;
  readonly backend: string;
  readonly batch: number;
  readonly k: number;
  readonly kernels: Record<Pass, number>;
  readonly ran: string | null;
  readonly ratio: { separate: number; fused: number } | null;
  readonly plainMs: number | null;
}

/** Step with `pass` (plain: no attach), for `body`. */
function withPass<T>(inst: Instance, pass: Pass, body: (step: () => Promise<unknown>, ran: string | null) => Promise<T>): Promise<T> {
  return pass === 'plain' ? withMode(inst, 'plain', body) : withMode(inst, 'first', body, pass);
}

/** Median per-round ratios to plain of the separate and the fused pass, the three alternated in rotated order. */
async function ratios(inst: Instance, rounds: number, budgetMs: number): Promise<{ ratio: { separate: number; fused: number }; plainMs: number }> {
  await inst.step();
  const probe = await timeSteps(2, () => inst.step());
  const count = Math.max(2, Math.min(30, Math.round(budgetMs / probe)));
  const per = { separate: [] as number[], fused: [] as number[] };
  const plain: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t: Partial<Record<Pass, number>> = {};
    for (const pass of PASSES.map((_, i) => PASSES[(i + r) % PASSES.length]!)) {
      t[pass] = await withPass(inst, pass, async (step) => {
        await step();
        return timeSteps(count, step);
      });
    }
    plain.push(t.plain!);
    per.separate.push(t.separate! / t.plain!);
    per.fused.push(t.fused! / t.plain!);
  }
  return { ratio: { separate: median(per.separate), fused: median(per.fused) }, plainMs: median(plain) };
}

const configs: readonly (readonly [Workload, number, number])[] = [
  [wideMlp, 64, 4],
  [tabular, 64, 4],
  [text, 64, 4],
  [cnn, 64, 4],
];
const rows: Row[] = [];
for (const backend of args.backends.split(',')) {
  await tf.setBackend(backend);
  for (const [w, batch, k] of configs) {
    // Conv models cannot train on wasm (tf.js 4.22 registers no Conv2DBackpropFilter there).
    if (w === cnn && backend === 'wasm') continue;
    const inst = w.build(batch, k);
    try {
      const plain = await kernelCount(inst, 'plain');
      const separate = await kernelCount(inst, 'first', 'separate');
      const fused = await kernelCount(inst, 'first', 'fused');
      const timed = args['kernels-only'] ? null : await ratios(inst, Number(args.rounds), Number(args.budget));
      const row: Row = { model: w.name, backend, batch, k, kernels: { plain: plain.kernels, separate: separate.kernels, fused: fused.kernels }, ran: fused.pass, ratio: timed?.ratio ?? null, plainMs: timed?.plainMs ?? null };
      rows.push(row);
      console.log(
        `${w.name.padEnd(40)} ${backend.padEnd(4)} B=${batch} K=${k}: kernels ${row.kernels.plain}/${row.kernels.separate}/${row.kernels.fused} (${fused.pass} ran)` +
          (row.ratio === null ? '' : `; time separate ${row.ratio.separate.toFixed(3)}x, fused ${row.ratio.fused.toFixed(3)}x (plain ${row.plainMs!.toFixed(1)} ms)`),
      );
    } finally {
      inst.dispose();
    }
  }
}

const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const table = rows
  .map(
    (r) =>
      `| ${r.model} | ${r.backend} | ${r.batch} | ${r.k} | ${r.kernels.plain} | ${r.kernels.separate} (${x(r.kernels.separate, r.kernels.plain)}) | ${r.kernels.fused} (${x(r.kernels.fused, r.kernels.plain)}) | ${
        r.ratio === null ? '-' : `${r.ratio.separate.toFixed(2)}x`
      } | ${r.ratio === null ? '-' : `${r.ratio.fused.toFixed(2)}x`} |`,
  )
  .join('\n');
writeSection(
  args.out,
  'fused-pass',
  `## The fused target pass: kernels and step time

\`bench/fused.ts\`, measured ${machine()}; backends: ${args.backends}. First order (\`shapley1\` + \`tracin_self\`, one
target of K rows, per-step records off) with \`targetPass: 'separate'\` and \`'fused'\` (docs/hooks.md), against a
plain \`trainOnBatch\` step of the same model. Kernels: \`tf.profile\` over one step after a warm-up step. Time:
the three modes alternate in ${args.rounds} rounds in rotated order in one process, each warmed up, about
${args.budget} ms of plain steps per mode and round; the ratios are medians of the per-round ratios. The machine
was shared with other jobs while this ran: the ratios are the result, absolute times are not reported.

| model | backend | B | K | kernels, plain step | first order, separate pass | first order, fused pass | time, separate | time, fused |
|---|---|---|---|---|---|---|---|---|
${table}`,
);
console.log(`wrote ${args.out}`);
