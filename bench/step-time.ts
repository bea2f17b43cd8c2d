/**
 * Step time, side by side in one process: plain training vs training with inrun's first-order
 * attribution (shapley1 + tracin_self toward a target of B/16 rows) vs the naive way (one backward
 * pass per example). Prints a table and writes docs/benchmarks.md.
 *
 *   npm run bench              (or: npx tsx bench/step-time.ts [--steps 10] [--backends cpu,wasm])
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach, useFastEmbeddingGradient } from 'inrun';
import { machine, median, writeSection } from './report.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '5' },
    backends: { type: 'string', default: 'cpu,wasm' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});
const STEPS = Number(args.steps);
const ROUNDS = Number(args.rounds);
useFastEmbeddingGradient();

interface Workload {
  readonly name: string;
  readonly batch: number;
  build(): { model: tf.LayersModel; x: tf.Tensor; y: tf.Tensor; target: { xs: tf.Tensor; ys: tf.Tensor } };
  /** Per-example loss, for the naive baseline. */
  readonly loss: (y: tf.Tensor, p: tf.Tensor) => tf.Tensor;
}

const workloads: Workload[] = [
  {
    name: 'MLP 32-64-64-10',
    batch: 64,
    loss: (y, p) => tf.metrics.categoricalCrossentropy(y, p),
    build() {
      const model = tf.sequential({
        layers: [
          tf.layers.dense({ units: 64, activation: 'relu', inputShape: [32] }),
          tf.layers.dense({ units: 64, activation: 'relu' }),
          tf.layers.dense({ units: 10, activation: 'softmax' }),
        ],
      });
      model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
      const labels = (n: number) => tf.oneHot(tf.randomUniform([n], 0, 10, 'int32') as tf.Tensor1D, 10);
      return { model, x: tf.randomNormal([this.batch, 32]), y: labels(this.batch), target: { xs: tf.randomNormal([this.batch / 16, 32]), ys: labels(this.batch / 16) } };
    },
  },
  {
    name: 'text: Embedding(5000,32)-pool-Dense, T=128',
    batch: 64,
    loss: (y, p) => tf.metrics.binaryCrossentropy(y, p),
    build() {
      const model = tf.sequential({
        layers: [
          tf.layers.embedding({ inputDim: 5000, outputDim: 32, inputLength: 128 }),
          tf.layers.globalAveragePooling1d(),
          tf.layers.dense({ units: 1, activation: 'sigmoid' }),
        ],
      });
      model.compile({ optimizer: tf.train.adam(5e-3), loss: 'binaryCrossentropy' });
      const ids = (n: number) => tf.randomUniform([n, 128], 0, 5000, 'int32');
      const labels = (n: number) => tf.cast(tf.randomUniform([n, 1], 0, 2, 'int32'), 'float32');
      return { model, x: ids(this.batch), y: labels(this.batch), target: { xs: ids(this.batch / 16), ys: labels(this.batch / 16) } };
    },
  },
];

async function timePerStep(steps: number, step: () => Promise<unknown>, warmup = 3): Promise<number> {
  for (let i = 0; i < warmup; i++) await step();
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  return (performance.now() - start) / steps;
}


/** The naive way: one backward pass per example, dot products with the target gradient, then the step. */
function naiveStep(w: Workload, model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, target: { xs: tf.Tensor; ys: tf.Tensor }): Promise<unknown> {
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  tf.tidy(() => {
    const gradOf = (xs: tf.Tensor, ys: tf.Tensor) => {
      const { grads } = tf.variableGrads(() => tf.sum(w.loss(ys, model.apply(xs) as tf.Tensor)) as tf.Scalar, vars);
      return tf.concat(vars.map((v) => tf.reshape(grads[v.name]!, [-1])));
    };
    const gT = gradOf(target.xs, target.ys);
    const values: tf.Tensor[] = [];
    for (let i = 0; i < w.batch; i++) values.push(tf.sum(tf.mul(gT, gradOf(tf.slice(x, i, 1), tf.slice(y, i, 1)))));
    tf.stack(values).dataSync();
  });
  return model.trainOnBatch(x, y);
}

interface Row {
  readonly workload: string;
  readonly backend: string;
  readonly batch: number;
  readonly target: number;
  readonly plain: number;
  readonly first: number;
  readonly overhead: number;
  readonly naive: number;
}

const rows: Row[] = [];
for (const backend of args.backends.split(',')) {
  await tf.setBackend(backend);
  for (const w of workloads) {
    const { model, x, y, target } = w.build();
    // Interleaved rounds (plain, then attributed) so that drift on a busy machine hits both alike.
    const plains: number[] = [];
    const firsts: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const p = await timePerStep(STEPS, () => model.trainOnBatch(x, y), r === 0 ? 3 : 1);
      const run = attach(model, { targets: { target }, methods: ['shapley1', 'tracin_self'], stepRecords: false });
      let step = 0;
      const f = await timePerStep(STEPS, () => run.step(Array.from({ length: w.batch }, (_, i) => (step++ % 16) * w.batch + i), () => model.trainOnBatch(x, y)), r === 0 ? 3 : 1);
      await run.close();
      plains.push(p);
      firsts.push(f);
      ratios.push(f / p);
    }
    const plain = median(plains);
    const first = median(firsts);
    const overhead = median(ratios);
    const naive = await timePerStep(Math.max(2, Math.floor(STEPS / 5)), () => naiveStep(w, model, x, y, target));
    const row = { workload: w.name, backend, batch: w.batch, target: target.xs.shape[0]!, plain, first, overhead, naive };
    rows.push(row);
    console.log(
      `${w.name.padEnd(44)} ${backend.padEnd(5)} B=${w.batch} K=${row.target}  plain ${plain.toFixed(1)} ms  first-order ${first.toFixed(1)} ms (${overhead.toFixed(2)}x)  naive ${naive.toFixed(0)} ms (${(naive / first).toFixed(0)}x slower)`,
    );
    tf.dispose([x, y, target.xs, target.ys]);
    model.dispose();
  }
}

const table = [
  '| workload | backend | B | target rows | plain ms/step | first order ms/step | overhead | naive ms/step | first order vs naive |',
  '|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.workload} | ${r.backend} | ${r.batch} | ${r.target} | ${r.plain.toFixed(1)} | ${r.first.toFixed(1)} | ${r.overhead.toFixed(2)}x | ${r.naive.toFixed(0)} | ${(r.naive / r.first).toFixed(0)}x faster |`,
  ),
].join('\n');
writeSection(
  args.out,
  'step-time',
  `## Step time: plain vs first-order attribution vs one backward per example

\`bench/step-time.ts\`. Each row runs plain training, training with inrun's first-order attribution
(\`shapley1\` + \`tracin_self\` toward one target of B/16 rows, per-step records off), and the naive way
(one backward pass per example, then dot products with the target gradient) on the same model in the
same process. Plain and attributed steps alternate in ${ROUNDS} rounds of ${STEPS} timed steps (after
warm-up); the table gives medians, and the overhead is the median of the per-round ratios, so that drift
on a busy machine hits both alike. Ratios are the result; absolute times depend on the machine.

Measured ${machine()}; backends: ${args.backends}; the embedding gradient is inrun's opt-in \`useFastEmbeddingGradient()\`.

${table}

The overhead is the target's forward and backward pass (B/16 rows through the model, every step, at the
step's weights) plus the ghost products; on small models per-kernel dispatch in tf.js' cpu and wasm
backends weighs as much as the arithmetic. The naive baseline materialises every example's gradient,
which inrun never does.`,
);
console.log(`\nwrote ${args.out}`);
