// When scores cannot be trusted inrun says so: coverage under 100% at attach, a model that has not learnt at close; described ids never trained are no scored rows; inrun's commands print no tf.js node-backend banner.
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { attach, type Run } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { oneHot, randn } from './cases.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Messages of the process warnings emitted while `work` runs (Node emits them on the next tick). */
async function warningsDuring(work: () => unknown): Promise<string[]> {
  const list: string[] = [];
  const on = (w: Error) => list.push(w.message);
  process.on('warning', on);
  try {
    await work();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', on);
  }
  return list;
}

const coverage = (ws: string[]) => ws.filter((w) => w.includes('of the trainable parameters'));
const notLearnt = (ws: string[]) => ws.filter((w) => w.includes('has not learnt'));

function batchNormModel(): tf.LayersModel {
  const model = tf.sequential({
    layers: [tf.layers.dense({ units: 4, inputShape: [3] }), tf.layers.batchNormalization(), tf.layers.dense({ units: 2, activation: 'softmax' })],
  });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  return model;
}

const target = () => ({ val: { xs: randn([2, 3], 1), ys: oneHot(2, 2, 2) } });

describe('attach warns once when the scores cover under 100% of the trainable parameters', () => {
  it('names each left-out layer with its class, parameter count and reason, and the covered share', async () => {
    const model = batchNormModel();
    const bn = model.layers[1]!;
    let run: Run | undefined;
    const ws = coverage(await warningsDuring(() => (run = attach(model, { targets: target() }))));
    expect(ws).toHaveLength(1);
    const { coveredParams, trainableParams } = run!.info.layers;
    expect(ws[0]).toContain(`${((100 * coveredParams) / trainableParams).toFixed(1)}% of the trainable parameters (${coveredParams} of ${trainableParams})`);
    expect(ws[0]).toContain(`"${bn.name}" (BatchNormalization, 8 parameters: per-example gradients are not defined in training mode`);
    await run!.close();
    // Once per model: attaching it again says nothing new.
    expect(coverage(await warningsDuring(async () => attach(model, { targets: target() }).close()))).toEqual([]);
  });

  it('says nothing for a fully covered model, or for layers the user chose', async () => {
    const full = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3] })] });
    full.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
    expect(coverage(await warningsDuring(async () => attach(full, { targets: target() }).close()))).toEqual([]);
    const chosen = batchNormModel();
    const last = chosen.layers[2]!.name;
    expect(coverage(await warningsDuring(async () => attach(chosen, { targets: target(), layers: [last] }).close()))).toEqual([]);
  });
});

/** Sign-of-the-first-feature data (as in examples/quick-start.ts), `n` rows. */
function signRows(n: number, seed: number): { xs: tf.Tensor; ys: tf.Tensor } {
  const xs = randn([n, 4], seed);
  return { xs, ys: tf.cast(tf.greater(tf.slice(xs, [0, 0], [n, 1]), 0), 'float32') };
}

function classifier(lr: number): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 8, activation: 'relu', inputShape: [4], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(lr), loss: 'binaryCrossentropy' });
  return model;
}

async function trainAndClose(model: tf.LayersModel, train: { xs: tf.Tensor; ys: tf.Tensor }, val: { xs: tf.Tensor; ys: tf.Tensor }, epochs: number) {
  const n = train.xs.shape[0]!;
  const run = attach(model, { targets: { val } });
  const ws = await warningsDuring(async () => {
    await run.fit(train.xs, train.ys, { ids: Array.from({ length: n }, (_, i) => `row-${i}`), epochs, batchSize: 20, verbose: 0 });
    await run.close();
  });
  return { ws: notLearnt(ws), learning: run.info.meta['learning'] as { learned: boolean; targets: { target: string; startLoss: number; endLoss: number; accuracy: number | null; chance: number | null; notLearned: string | null }[] } };
}

describe('close() says when the model has not learnt its targets', () => {
  it('a model that learns: no warning, run.info.meta.learning says learned with the losses and accuracy', async () => {
    const { ws, learning } = await trainAndClose(classifier(0.5), signRows(200, 3), signRows(64, 4), 20);
    expect(ws).toEqual([]);
    expect(learning.learned).toBe(true);
    const [val] = learning.targets;
    expect(val!.target).toBe('val');
    expect(val!.endLoss).toBeLessThan(val!.startLoss);
    expect(val!.accuracy).toBeGreaterThan(0.85);
    expect(val!.chance).toBeGreaterThanOrEqual(0.5);
    expect(val!.notLearned).toBeNull();
  });

  it('learning rate 0: the target loss is not below its start, and close warns', async () => {
    const { ws, learning } = await trainAndClose(classifier(0), signRows(60, 5), signRows(32, 6), 2);
    expect(learning.learned).toBe(false);
    expect(learning.targets[0]!.endLoss).toBe(learning.targets[0]!.startLoss);
    expect(learning.targets[0]!.notLearned).toMatch(/not below its start/);
    expect(ws).toHaveLength(1);
    expect(ws[0]).toMatch(/target "val": its mean loss went from .* not below its start.*rank examples by noise/);
  });

  it('accuracy at chance (every target input twice, once per label) while the loss falls: close warns', async () => {
    const x = randn([16, 4], 7);
    const xs = tf.concat([x, x]);
    const ys = tf.concat([tf.ones([16, 1]), tf.zeros([16, 1])]);
    const { ws, learning } = await trainAndClose(classifier(0.5), { xs, ys }, { xs, ys }, 10);
    const [val] = learning.targets;
    expect(val!.endLoss).toBeLessThan(val!.startLoss);
    expect(val!.accuracy).toBe(0.5);
    expect(val!.chance).toBe(0.5);
    expect(val!.notLearned).toMatch(/near the 0.500 of always guessing its majority label/);
    expect(ws).toHaveLength(1);
  });
});

describe('run.describe() ids that never train are no scored rows', () => {
  it('an id described at attach and one described later, never trained: absent from the scores; trained ids keep theirs', async () => {
    const model = classifier(0.5);
    const train = signRows(20, 8);
    const ids = Array.from({ length: 20 }, (_, i) => `row-${i}`);
    const run = attach(model, { examples: [{ id: 'never-a', source: 'web' }, { id: 'row-0', source: 'web' }] });
    run.describe([{ id: 'never-b', source: 'books' }]);
    await run.fit(train.xs, train.ys, { ids, epochs: 1, batchSize: 10, verbose: 0 });
    const scores = await run.close();
    expect(scores.ids).toEqual(ids);
    expect(Array.from(scores.steps).every((s) => s === 1)).toBe(true);
  });
});

describe("tf.js' node-backend banner", () => {
  const script = (quiet: boolean) =>
    `import * as tf from '@tensorflow/tfjs'; ${quiet ? "import { quietNodeBanner } from 'inrun/internal'; quietNodeBanner();" : ''} tf.tensor([1]).dispose(); console.log('backend', tf.getBackend());`;
  const run = (quiet: boolean) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(quiet)], {
      encoding: 'utf8',
      env: { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.json' },
    });

  it("prints without quietNodeBanner(); with it (inrun's own commands) it does not, and the backend is still tf.js' own choice", () => {
    const loud = run(false);
    expect(loud.stdout + loud.stderr).toMatch(/install our node backend/);
    const quiet = run(true);
    expect(quiet.status).toBe(0);
    expect(quiet.stdout + quiet.stderr).not.toMatch(/install our node backend/);
    expect(quiet.stdout).toMatch(/backend cpu/);
  });
});
