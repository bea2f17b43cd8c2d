/**
 * Step time and memory per layer kind beyond Dense and Embedding: the reference CNN on digits
 * (Conv2D), an LSTM sequence classifier (recurrent) and an MLP with LayerNorm, each plain vs first
 * order vs `targetEvery: 16` vs second order vs one backward per example, side by side in one process.
 * Writes the "layer-kinds" section of docs/benchmarks.md.
 *
 *   npx tsx bench/layers.ts [--backends cpu,wasm] [--models cnn,recurrent,layer-norm] [--budget 600] [--quick]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { attach } from 'inrun';
import { machine, writeSection } from './report.js';
import { cnn, layerNormMlp, measureModes, naiveStep, peakMegabytes, recurrent, timeSteps, type Workload } from './workloads.js';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'cpu,wasm' },
    models: { type: 'string', default: 'cnn,recurrent,layer-norm' },
    rounds: { type: 'string', default: '5' },
    budget: { type: 'string', default: '600' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});
const WORKLOADS: Record<string, Workload> = { cnn, recurrent, 'layer-norm': layerNormMlp };
/** The grid per backend: the CNN's cpu steps take a second at B = 16, so cpu gets one row per model. */
function grid(backend: string): { batch: number; target: number; naive: boolean }[] {
  if (args.quick || backend === 'cpu') return [{ batch: 16, target: 1, naive: true }];
  return [{ batch: 16, target: 1, naive: false }, { batch: 64, target: 4, naive: true }, { batch: 64, target: 16, naive: false }];
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
const lines: string[] = [];
for (const backend of args.backends.split(',')) {
  await tf.setBackend(backend);
  for (const key of args.models.split(',')) {
    const w = WORKLOADS[key];
    if (w === undefined) throw new Error(`unknown model ${key}; known: ${Object.keys(WORKLOADS).join(', ')}`);
    for (const config of grid(backend)) {
      const inst = w.build(config.batch, config.target);
      const refusal = await inst.step().then(
        () => null,
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      if (refusal !== null) {
        // tf.js itself cannot train this model on this backend (e.g. wasm has no Conv2DBackpropFilter kernel).
        const line = `| ${w.name} | ${backend} | ${config.batch} | ${config.target} | | tf.js cannot train it here: ${refusal.replace(/\|/g, '/')} | | | | | |`;
        console.log(line);
        lines.push(line);
        inst.dispose();
        break;
      }
      const coverage = await (async () => {
        const run = attach(inst.model, { delivery: { stepRecords: false } });
        const { covered, coveredParams, trainableParams } = run.info.layers;
        await run.close();
        return `${[...new Set(covered.map((l) => l.kind))].join(', ')}: ${((100 * coveredParams) / trainableParams).toFixed(0)}%`;
      })();
      const { ms, ratio, hvp } = await measureModes(inst, args.quick ? 1 : Number(args.rounds), args.quick ? 1 : null, Number(args.budget));
      const naive = config.naive ? await timeSteps(1, () => naiveStep(inst)) : null;
      const peak = await peakMegabytes(inst);
      const line = `| ${w.name} | ${backend} | ${config.batch} | ${config.target} | ${coverage} | ${fmt(ms.plain)} | ${fmt(ms.first)} (${ratio.first.toFixed(2)}x) | ${fmt(ms.every16)} (${ratio.every16.toFixed(2)}x) | ${fmt(ms.second)} (${ratio.second.toFixed(2)}x, ${hvp}) | ${naive === null ? '' : `${fmt(naive)} (${(naive / ms.first).toFixed(0)}x first order)`} | ${peak.plain.toFixed(1)} / ${peak.first.toFixed(1)} / ${peak.second.toFixed(1)} |`;
      console.log(line);
      lines.push(line);
      inst.dispose();
    }
  }
}

writeSection(
  args.out,
  'layer-kinds',
  `## Layer kinds: CNN, LSTM and LayerNorm models

\`bench/layers.ts\`, measured ${machine()}. As the step-time section, for models whose weights the
Conv, recurrent and LayerNorm kinds cover (docs/layers.md): the reference CNN of
\`examples/digits-cnn.ts\` on real digits, an LSTM(32) over 32 steps of 16 features, and the tabular MLP
with a LayerNormalization after each hidden layer. "Covered" names the kinds and the share of the
model's trainable parameters the scores cover. First order is \`shapley1\` + \`tracin_self\` toward a
target of K rows; second order \`shapley1\` + \`shapley2\`; the naive way one backward pass per example.
Peak MB is tf.js' peak tensor memory during one step above what was allocated before it.

| model | backend | B | K | covered | plain ms/step | first order | first, \`targetEvery: 16\` | second order | naive | tf.js peak MB: plain / first / second |
|---|---|---|---|---|---|---|---|---|---|---|
${lines.join('\n')}

Where the time goes. A convolution's per-example gradient is a sum over output positions, so the ghost
products see T = output positions (676 and 169 for the two conv layers at 28 x 28): the pairwise path
would compare every position of every example with every target position, so the cost rule picks the
materialised path (the target's kernel gradient once, then one more pass over the training patches).
The patches themselves (kernel area x channels per position) are the memory cost. The LSTM's time steps
are positions of one outer piece per layer (input and hidden state against the four gates), so its
products cost about one more pass over the recorded steps; recording each step's input, state and gate
gradients is the memory cost. LayerNorm's per-example gradients are materialised (2 x width numbers per
example), which is cheap next to the Dense layers around it.`,
);
console.log(`\nwrote ${args.out}`);
