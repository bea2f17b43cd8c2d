/**
 * Memory: peak RSS of a process that trains one reference model for a few steps, plain, with first-order
 * attribution and with second order, each in its own process (RSS is per process, so modes cannot share
 * one), and how it grows with B, K and T. Writes a section of docs/benchmarks.md.
 *
 *   npx tsx bench/memory.ts [--backend cpu] [--steps 10] [--quick]
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { useFastEmbeddingGradient } from 'inrun';
import { machine, writeSection } from './report.js';
import { tabular, text, withMode, type Mode, type Workload } from './workloads.js';

const { values: args } = parseArgs({
  options: {
    child: { type: 'string' },
    backend: { type: 'string', default: 'cpu' },
    steps: { type: 'string', default: '10' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});

const MODES = ['plain', 'first', 'second'] as const satisfies readonly Mode[];
type MemoryMode = (typeof MODES)[number];
const WORKLOADS: Record<string, Workload> = { tabular, text };

interface Config {
  readonly model: string;
  readonly batch: number;
  readonly target: number;
  readonly seqLen?: number;
}

interface Measured {
  readonly rssMB: number;
  /** tf.js' peak tensor bytes over the steps (`tf.profile`), including the model and data. */
  readonly tfPeakMB: number;
}

/** The child: build, train `steps` steps in `mode`, report the process's peak RSS. */
async function child(spec: string): Promise<void> {
  const [mode, config] = JSON.parse(spec) as [MemoryMode, Config];
  await tf.setBackend(args.backend);
  useFastEmbeddingGradient();
  const inst = WORKLOADS[config.model]!.build(config.batch, config.target, config.seqLen);
  const info = await withMode(inst, mode, (step) =>
    tf.profile(async () => {
      for (let i = 0; i < Number(args.steps); i++) await step();
      return [];
    }),
  );
  const measured: Measured = { rssMB: (process.resourceUsage().maxRSS * 1024) / 2 ** 20, tfPeakMB: info.peakBytes / 2 ** 20 };
  console.log(JSON.stringify(measured));
}

if (args.child !== undefined) {
  await child(args.child);
  process.exit(0);
}

function measure(mode: MemoryMode, config: Config): Measured {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/memory.ts', '--child', JSON.stringify([mode, config]), '--backend', args.backend, '--steps', args.steps], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Measured;
}

const configs: Config[] = args.quick
  ? [{ model: 'tabular', batch: 16, target: 1 }]
  : [
      ...[16, 64, 256].map((batch) => ({ model: 'tabular', batch, target: batch / 16 })),
      { model: 'tabular', batch: 64, target: 64 },
      ...[16, 64, 256].map((batch) => ({ model: 'text', batch, target: batch / 16 })),
      { model: 'text', batch: 64, target: 64 },
      { model: 'text', batch: 64, target: 4, seqLen: 32 },
      { model: 'text', batch: 64, target: 4, seqLen: 512 },
    ];

const lines: string[] = [];
for (const config of configs) {
  const m = Object.fromEntries(MODES.map((mode) => [mode, measure(mode, config)])) as Record<MemoryMode, Measured>;
  const w = WORKLOADS[config.model]!;
  const cell = (mode: MemoryMode) => `${m[mode].rssMB.toFixed(0)} (${m[mode].rssMB >= m.plain.rssMB ? '+' : ''}${(m[mode].rssMB - m.plain.rssMB).toFixed(0)})`;
  const line = `| ${w.name} | ${config.batch} | ${config.target} | ${w.seqLen === null ? '-' : (config.seqLen ?? w.seqLen)} | ${m.plain.rssMB.toFixed(0)} | ${cell('first')} | ${cell('second')} | ${MODES.map((mode) => m[mode].tfPeakMB.toFixed(1)).join(' / ')} |`;
  console.log(line);
  lines.push(line);
}

writeSection(
  args.out,
  'memory',
  `## Memory: peak RSS, plain vs first order vs second order

\`bench/memory.ts\`, measured ${machine()}; backend ${args.backend}. Each cell is its own process: build
the reference model on random data of its shape, train ${args.steps} steps plain, with first-order
attribution (\`shapley1\` + \`tracin_self\`, one target of K rows) or with second order (\`shapley1\` +
\`shapley2\`), per-step records off, then read the process's peak resident set size. RSS includes Node, tf.js
and the backend, so the differences to plain are what attribution adds; differences of a few MB either way are
the allocator's noise.
tf.js peak MB is \`tf.profile\`'s peak of tensor bytes over the steps, model and data included.

| model | B | target rows K | T | plain peak RSS MB | first order (+ vs plain) | second order (+ vs plain) | tf.js peak MB: plain / first / second |
|---|---|---|---|---|---|---|---|
${lines.join('\n')}

What grows: first order keeps one copy of each covered layer's input and output gradient for the batch
(and the target's), so its extra memory follows B x T x layer width; second order adds parameter-sized
tensors per target (the target gradients it differences). Transient on top: a sequence layer's ghost
products form per-position Gram matrices (B x T x T for self-influence), and where materialising is the
cheaper way (T (dIn + dOut) > dIn dOut) one layer's per-example gradients at a time; none of it is kept
across steps (the text model's jump at B = 256 is these temporaries).`,
);
console.log(`\nwrote ${args.out}`);
