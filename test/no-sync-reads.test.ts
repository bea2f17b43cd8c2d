// No synchronous read on any path of attach, a step, scores() or close(): every sync read throws here.
import * as tf from '@tensorflow/tfjs';
// Registers the webgpu kernels (no device needed) so that the kernel check below can list them.
import '@tensorflow/tfjs-backend-webgpu';
import { attach, InrunError, type AttachOptions } from 'inrun';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { syncReadTrap, type SyncReadTrap } from './helpers.js';

/**
 * On webgpu a sync read fails in Node and can lose the device under Dawn; on webgl it blocks the page
 * (docs/layers.md, "GPU backends"). The cpu backend keeps this true without a GPU: the public sync
 * reads (`dataSync`, `arraySync`, `bufferSync`) throw whenever they are called, and the backend's
 * `readSync` throws unless a tf.js kernel calls it (cpu kernels read their inputs that way; inrun must not).
 * Each case runs on `cpu` (value checks read in place there) and on 'device-like', the cpu kernels under
 * another name and without the kernels webgpu lacks, which inrun treats like a GPU backend (value checks
 * read asynchronously).
 */
const ROWS = 8;
let trap: SyncReadTrap;

beforeAll(() => {
  if (!tf.findBackend('device-like')) {
    tf.registerBackend('device-like', () => new (tf.findBackend('cpu')!.constructor as new () => tf.KernelBackend)());
    // Without the kernels webgpu lacks (tf.js 4.22): Unique.
    for (const kernel of tf.getKernelsForBackend('cpu')) if (kernel.kernelName !== 'Unique') tf.registerKernel({ ...kernel, backendName: 'device-like' });
  }
  trap = syncReadTrap(['cpu', 'device-like']);
});

afterEach(async () => {
  trap.armed = false;
  await tf.setBackend('cpu');
});

interface Case {
  model: tf.LayersModel;
  x: tf.Tensor;
  y: tf.Tensor;
  targets: Record<string, { xs: tf.Tensor; ys: tf.Tensor }>;
}

const init = (seed: number) => ({ kernelInitializer: tf.initializers.glorotNormal({ seed }) });

function classifier(layers: tf.layers.Layer[], x: tf.Tensor, t: tf.Tensor, loss = 'categoricalCrossentropy'): Case {
  const model = tf.sequential({ layers });
  model.compile({ optimizer: tf.train.sgd(0.1), loss });
  const sparse = loss.startsWith('sparse');
  const labels = (n: number, seed: number) =>
    sparse ? tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 3)) : tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 3), 'int32'), 3);
  return { model, x, y: labels(x.shape[0]!, 1), targets: { val: { xs: t, ys: labels(t.shape[0]!, 2) } } };
}

const cases: Record<string, () => Case> = {
  dense: () =>
    classifier([tf.layers.dense({ units: 5, activation: 'relu', inputShape: [4], ...init(1) }), tf.layers.dense({ units: 3, activation: 'softmax', ...init(2) })], tf.randomNormal([ROWS, 4], 0, 1, 'float32', 3), tf.randomNormal([3, 4], 0, 1, 'float32', 4), 'sparseCategoricalCrossentropy'),
  conv: () =>
    classifier(
      [tf.layers.conv2d({ filters: 2, kernelSize: 2, inputShape: [4, 4, 1], ...init(5) }), tf.layers.flatten(), tf.layers.dense({ units: 3, activation: 'softmax', ...init(6) })],
      tf.randomNormal([ROWS, 4, 4, 1], 0, 1, 'float32', 7),
      tf.randomNormal([2, 4, 4, 1], 0, 1, 'float32', 8),
    ),
  layerNorm: () =>
    classifier([tf.layers.dense({ units: 4, inputShape: [4], ...init(9) }), tf.layers.layerNormalization(), tf.layers.dense({ units: 3, activation: 'softmax', ...init(10) })], tf.randomNormal([ROWS, 4], 0, 1, 'float32', 11), tf.randomNormal([2, 4], 0, 1, 'float32', 12)),
  recurrent: () =>
    classifier([tf.layers.simpleRNN({ units: 3, inputShape: [3, 2], ...init(13) }), tf.layers.dense({ units: 3, activation: 'softmax', ...init(14) })], tf.randomNormal([ROWS, 3, 2], 0, 1, 'float32', 15), tf.randomNormal([2, 3, 2], 0, 1, 'float32', 16)),
  embedding: () => {
    const ids = (n: number, seed: number) => tf.tensor2d(Array.from({ length: n * 5 }, (_, i) => (i * seed + (i % 3)) % 11), [n, 5], 'int32');
    return classifier(
      [tf.layers.embedding({ inputDim: 11, outputDim: 3, inputLength: 5, embeddingsInitializer: tf.initializers.randomNormal({ seed: 17 }) }), tf.layers.flatten(), tf.layers.dense({ units: 3, activation: 'softmax', ...init(18) })],
      ids(ROWS, 3),
      ids(3, 5),
    );
  },
};

const ids = Array.from({ length: ROWS }, (_, i) => i);

async function stepThenClose(c: Case, options: AttachOptions, train: (run: ReturnType<typeof attach>) => Promise<unknown>): Promise<void> {
  trap.armed = true;
  const run = attach(c.model, { targets: c.targets, ...options });
  await train(run);
  const scores = await run.scores();
  const closed = await run.close();
  trap.armed = false;
  expect(trap.calls).toEqual([]);
  expect(closed.ids.length).toBeGreaterThanOrEqual(ROWS);
  expect(scores.ids).toEqual(closed.ids);
  for (const column of Object.values(closed.columns)) expect(Array.from(column).every(Number.isFinite)).toBe(true);
}

describe.each(['cpu', 'device-like'])('no synchronous read (%s backend)', (backend) => {
  it.each(Object.keys(cases))('%s: attach, run.step, scores(), close()', async (name) => {
    await tf.setBackend(backend);
    trap.calls.length = 0;
    const c = cases[name]!();
    const methods: AttachOptions['methods'] = name === 'embedding' ? ['shapley1', 'tracin_self', 'tracin_we'] : ['shapley1', 'tracin_self'];
    await stepThenClose(c, { methods, ...(name === 'embedding' ? { tokens: { topK: 2 } } : {}) }, (run) => run.step(ids, () => c.model.trainOnBatch(c.x, c.y)));
  });

  it('shapley2 (the double-backward trial at attach), with run.fit', async () => {
    await tf.setBackend(backend);
    trap.calls.length = 0;
    const c = cases['dense']!();
    await stepThenClose(c, { methods: ['shapley1', 'shapley2'] }, (run) => run.fit(c.x, c.y, { epochs: 1, batchSize: 4 }));
  });

  it('run.fitDataset with sparse labels, and optimizer.minimize in run.step', async () => {
    await tf.setBackend(backend);
    trap.calls.length = 0;
    const c = cases['dense']!();
    const data = tf.data.zip({ xs: tf.data.array(tf.unstack(c.x)), ys: tf.data.array(tf.unstack(c.y)), ids: tf.data.array(ids) }).batch(4);
    await stepThenClose(c, { methods: ['shapley1'] }, async (run) => {
      await run.fitDataset(data, { epochs: 1 });
      await run.step(ids.map((i) => i + 100), () =>
        c.model.optimizer.minimize(() => tf.mean(tf.losses.softmaxCrossEntropy(tf.oneHot(tf.cast(c.y, 'int32'), 3), c.model.apply(c.x, { training: true }) as tf.Tensor)) as tf.Scalar),
      );
    });
  });

  it('a NaN in a target still fails before any training step, naming the field', async () => {
    await tf.setBackend(backend);
    trap.calls.length = 0;
    const c = cases['dense']!();
    trap.armed = true;
    const bad = { val: { xs: tf.tensor2d([[1, NaN, 0, 0]]), ys: tf.tensor1d([0]) } };
    let error: unknown;
    try {
      const run = attach(c.model, { targets: bad });
      // Backends that read asynchronously report it at the first step instead of at attach.
      error = await run.step(ids, () => c.model.trainOnBatch(c.x, c.y)).then(() => null, (e: unknown) => e);
      await run.close();
    } catch (e) {
      error = e;
    }
    trap.armed = false;
    expect(trap.calls).toEqual([]);
    expect(error).toBeInstanceOf(InrunError);
    expect((error as InrunError).field).toBe('targets.val.xs');
  });

  it("a NaN in a target: run.step, run.fit, run.fitDataset and the model's own fit all reject before training (weights unchanged)", async () => {
    await tf.setBackend(backend);
    const c = cases['dense']!();
    const before = c.model.getWeights().map((w) => Array.from(w.dataSync()));
    const bad = { val: { xs: tf.tensor2d([[1, NaN, 0, 0]]), ys: tf.tensor1d([0]) } };
    const data = tf.data.zip({ xs: tf.data.array(tf.unstack(c.x)), ys: tf.data.array(tf.unstack(c.y)), ids: tf.data.array(ids) }).batch(4);
    const entries: [string, (run: ReturnType<typeof attach>) => Promise<unknown>][] = [
      ['run.step', (run) => run.step(ids, () => c.model.trainOnBatch(c.x, c.y))],
      ['run.fit', (run) => run.fit(c.x, c.y, { epochs: 1, batchSize: 4 })],
      ['run.fitDataset', (run) => run.fitDataset(data, { epochs: 1 })],
      ['model.fit', () => c.model.fit(c.x, c.y, { epochs: 1, batchSize: 4, shuffle: false })],
    ];
    for (const [name, train] of entries) {
      let error: unknown = null;
      try {
        const run = attach(c.model, { targets: bad });
        error = await train(run).then(() => null, (e: unknown) => e);
        await run.close();
      } catch (e) {
        error = e;
      }
      expect([name, error instanceof InrunError ? error.field : String(error)]).toEqual([name, 'targets.val.xs']);
    }
    expect(c.model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
  });
});

describe('kernels', () => {
  it('every kernel that attach, steps, scores() and close() run (cpu, device-like) exists on webgl and webgpu', async () => {
    const ran = new Set<string>();
    for (const [backend, name] of ['cpu', 'device-like'].flatMap((b) => Object.keys(cases).map((n) => [b, n] as const))) {
      await tf.setBackend(backend);
      const c = cases[name]!();
      const methods: AttachOptions['methods'] = name === 'embedding' ? ['shapley1', 'tracin_self', 'tracin_we'] : name === 'dense' ? ['shapley1', 'shapley2', 'tracin_self'] : ['shapley1', 'tracin_self'];
      const profile = await tf.profile(async () => {
        const run = attach(c.model, { targets: c.targets, methods });
        await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
        await run.close();
        return tf.scalar(0);
      });
      // kernelNames also holds scope names (gradient scopes, op wrappers): keep the kernels.
      const kernels = new Set(tf.getKernelsForBackend('cpu').map((k) => k.kernelName));
      for (const k of profile.kernelNames) if (kernels.has(k)) ran.add(k);
    }
    expect(ran.size).toBeGreaterThan(20);
    for (const backend of ['webgl', 'webgpu']) {
      const have = new Set(tf.getKernelsForBackend(backend).map((k) => k.kernelName));
      expect({ backend, missing: [...ran].filter((k) => !have.has(k)).sort() }).toEqual({ backend, missing: [] });
    }
  });
});

describe('webgl with 16-bit textures', () => {
  it('attach warns once, only when tensors are stored as 16-bit floats', async () => {
    // A backend named webgl with the cpu kernels: the warning looks at the backend's name and its flags only.
    if (tf.findBackendFactory('webgl') !== null) tf.removeBackend('webgl');
    tf.registerBackend('webgl', () => new (tf.findBackend('cpu')!.constructor as new () => tf.KernelBackend)());
    for (const kernel of tf.getKernelsForBackend('cpu')) {
      if (tf.getKernel(kernel.kernelName, 'webgl') !== undefined) tf.unregisterKernel(kernel.kernelName, 'webgl');
      tf.registerKernel({ ...kernel, backendName: 'webgl' });
    }
    await tf.setBackend('webgl');
    const warned: string[] = [];
    const on = (w: Error) => warned.push(w.message);
    process.on('warning', on);
    const attachOnce = async () => {
      const c = cases['dense']!();
      const run = attach(c.model, { targets: c.targets });
      await run.step(ids, () => c.model.trainOnBatch(c.x, c.y));
      await run.close();
      await new Promise((r) => setImmediate(r));
    };
    try {
      tf.env().set('WEBGL_RENDER_FLOAT32_ENABLED', true);
      tf.env().set('WEBGL_FORCE_F16_TEXTURES', false);
      await attachOnce();
      expect(warned.filter((m) => m.includes('16-bit'))).toEqual([]);
      tf.env().set('WEBGL_RENDER_FLOAT32_ENABLED', false);
      await attachOnce();
      tf.env().set('WEBGL_RENDER_FLOAT32_ENABLED', true);
      tf.env().set('WEBGL_FORCE_F16_TEXTURES', true);
      await attachOnce();
      expect(warned.filter((m) => m.includes('16-bit'))).toHaveLength(1);
      expect(warned.find((m) => m.includes('16-bit'))).toMatch(/0\.1-7%.*docs\/layers\.md/);
    } finally {
      process.off('warning', on);
      tf.env().set('WEBGL_FORCE_F16_TEXTURES', false);
    }
  });
});
