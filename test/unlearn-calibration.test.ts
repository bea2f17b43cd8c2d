// unlearn()'s calibrated forget strength (whole class, the accuracy guard, metrics.calibration), a removal request as an attach/untrac target, and no sync reads.
import * as tf from '@tensorflow/tfjs';
import { attach, untrac, unlearn, type UnlearnRequest } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';

const C = 4;
const D = 8;

interface Rows {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

/** Gaussian blobs, one centre per class. */
function blobs(n: number, seed: number): Rows & { labels: number[] } {
  return tf.tidy(() => {
    const centres = tf.randomNormal([C, D], 0, 2, 'float32', 11);
    const labels = Array.from({ length: n }, (_, i) => i % C);
    const idx = tf.tensor1d(labels, 'int32');
    const xs = tf.keep(tf.add(tf.gather(centres, idx), tf.randomNormal([n, D], 0, 0.8, 'float32', seed)));
    return { xs, ys: tf.keep(tf.oneHot(idx, C).toFloat()), labels };
  });
}

function mlp(): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 16, activation: 'relu', inputShape: [D], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: C, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  return model;
}

function pick(rows: Rows, idx: readonly number[]): Rows {
  return tf.tidy(() => {
    const i = tf.tensor1d([...idx], 'int32');
    return { xs: tf.gather(rows.xs, i), ys: tf.gather(rows.ys, i) };
  });
}

const acc = (m: tf.LayersModel, r: Rows) => tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(m.predict(r.xs) as tf.Tensor, 1), tf.argMax(r.ys, 1)), 'float32')).dataSync()[0]!);
const weightsOf = (m: tf.LayersModel) => m.weights.map((w) => Float32Array.from(w.read().dataSync()));

/** A trained classifier; forget = every class-3 row, retain = the rest; test rows of the forgotten class and of the others. */
let t: { model: tf.Sequential; request: UnlearnRequest & { retain: Rows }; testForget: Rows; testRetain: Rows };

beforeAll(async () => {
  await tf.setBackend('cpu');
  const train = blobs(240, 1);
  const test = blobs(120, 2);
  const model = mlp();
  await model.fit(train.xs, train.ys, { epochs: 30, batchSize: 32, verbose: 0, shuffle: false });
  const of = (r: ReturnType<typeof blobs>, keep: (l: number) => boolean) => pick(r, r.labels.flatMap((l, i) => (keep(l) ? [i] : [])));
  t = { model, request: { forget: of(train, (l) => l === 3), retain: of(train, (l) => l !== 3) }, testForget: of(test, (l) => l === 3), testRetain: of(test, (l) => l !== 3) };
});

describe('calibrated forget strength (defaults)', () => {
  it('forgets a whole class with the defaults, stops calibrated, and metrics.calibration says what it did', async () => {
    const before = weightsOf(t.model);
    expect(acc(t.model, t.testForget)).toBeGreaterThan(0.9);
    const { model, metrics } = await unlearn(t.model, t.request);
    const cal = metrics.calibration!;
    expect(cal).not.toBeNull();
    expect(cal.request).toBe('class');
    expect(cal.forgottenClasses).toEqual([3]);
    expect(cal.heldOut).toBe('retain-split');
    // The target is how the model treats a class on rows of other classes: far above the forget rows' own loss.
    expect(cal.targetLoss).toBeGreaterThan(cal.forgetLoss + 1);
    expect(cal.checks[0]!.epoch).toBe(0);
    expect(cal.checks[0]!.membership).toBeGreaterThan(0.9);
    expect(cal.checks.map((c) => c.epoch)).toEqual([...Array(cal.stopped.epoch + 1).keys()]);
    expect(cal.stopped.reason).toBe('calibrated');
    expect(cal.stopped.epoch).toBeGreaterThan(0);
    expect(metrics.stopped).toEqual({ epoch: cal.stopped.epoch, reason: 'calibrated' });
    // The stop is one-sided (at most membershipTolerance above 0.5); rfa-lora's retain weight fell tenfold after epochs that barely moved the test.
    const kept = cal.checks.find((c) => c.epoch === cal.kept.epoch)!;
    expect(kept.membership).toBeLessThanOrEqual(0.5 + 0.02);
    expect(cal.checks.slice(0, -1).every((c) => c.membership > 0.52)).toBe(true);
    expect(cal.checks.at(-1)!.retainWeight).toBeLessThan(cal.checks[0]!.retainWeight);
    expect(kept.steps).toBe(cal.kept.steps);
    expect(kept.retainAccuracy!).toBeGreaterThanOrEqual(cal.checks[0]!.retainAccuracy! - 0.02);
    // The class is gone from unseen rows; the rest holds; the input model is untouched.
    expect(acc(model, t.testForget)).toBeLessThan(0.1);
    expect(acc(model, t.testRetain)).toBeGreaterThanOrEqual(acc(t.model, t.testRetain) - 0.03);
    expect(weightsOf(t.model)).toEqual(before);
    model.dispose();
  });

  it('the retain-accuracy guard: a step that costs more retain accuracy than accuracyTolerance stops training, and the result carries the kept check (the input model)', async () => {
    // Overlapping classes (forget one of them), and gradient ascent at a rate that wrecks it within one epoch.
    const noisyRows = (n: number, seed: number) =>
      tf.tidy(() => {
        const labels = tf.tensor1d(Array.from({ length: n }, (_, i) => i % C), 'int32');
        const xs = tf.keep(tf.add(tf.gather(tf.randomNormal([C, D], 0, 1, 'float32', 21), labels), tf.randomNormal([n, D], 0, 1, 'float32', seed)));
        return { xs, ys: tf.keep(tf.oneHot(labels, C).toFloat()) };
      });
    const noisy = noisyRows(96, 22);
    const model = mlp();
    await model.fit(noisy.xs, noisy.ys, { epochs: 150, batchSize: 32, verbose: 0, shuffle: false });
    const forget = pick(noisy, [...Array(96).keys()].filter((i) => i % C === 3));
    const retain = pick(noisy, [...Array(96).keys()].filter((i) => i % C !== 3));
    const { model: out, metrics } = await unlearn(model, { forget, retain, method: 'gradient-ascent', learningRate: 0.5 });
    const cal = metrics.calibration!;
    expect(cal.stopped.reason).toBe('guard');
    const first = cal.checks[0]!;
    const last = cal.checks.at(-1)!;
    expect(last.epoch).toBe(cal.stopped.epoch);
    expect(Math.min(last.retainAccuracy!, last.heldOutAccuracy)).toBeLessThan(Math.min(first.retainAccuracy!, first.heldOutAccuracy) - 0.02);
    const kept = cal.checks.find((c) => c.epoch === cal.kept.epoch)!;
    expect(kept.epoch).toBeLessThan(last.epoch);
    expect(kept.retainAccuracy!).toBeGreaterThanOrEqual(first.retainAccuracy! - 0.02);
    // The weights returned are the kept check's, not the breached ones.
    expect(Math.abs(acc(out, retain) - kept.retainAccuracy!)).toBeLessThan(0.02);
    out.dispose();
    model.dispose();
  });
});

describe('one request, two uses', () => {
  it('attach(..., { targets: { concept: request } }) scores like the request.forget rows', async () => {
    const scoresWith = async (target: UnlearnRequest | Rows) => {
      const model = mlp();
      const run = attach(model, { targets: { concept: target }, methods: ['shapley1'] });
      const batch = pick(t.request.retain, [0, 1, 2, 3, 4, 5, 6, 7]);
      await run.step([0, 1, 2, 3, 4, 5, 6, 7], () => model.trainOnBatch(batch.xs, batch.ys));
      const scores = await run.scores();
      await run.close();
      model.dispose();
      return Array.from(scores.columns['shapley1:concept']!);
    };
    const fromRequest = await scoresWith(t.request);
    expect(fromRequest.some((v) => v !== 0)).toBe(true);
    expect(fromRequest).toEqual(await scoresWith(t.request.forget));
    // A different target gives different scores: the comparison can fail.
    expect(fromRequest).not.toEqual(await scoresWith(t.testRetain));
  });

  it('untrac({ targets: { concept: request } }) gives the influence of untrac on request.forget', async () => {
    const sources = { a: pick(t.request.retain, [0, 1, 2, 3, 4, 5, 6, 7]), b: pick(t.request.forget, [0, 1, 2, 3, 4, 5, 6, 7]) };
    const run = (targets: Record<string, UnlearnRequest | Rows>) => untrac(t.model, { sources, targets, optimizer: () => tf.train.adam(0.01), batchSize: 4, progress: false });
    const fromRequest = await run({ concept: t.request });
    const fromRows = await run({ concept: t.request.forget });
    expect(fromRequest.influence).toEqual(fromRows.influence);
    expect(fromRequest.influence['concept']!['b']).toBeGreaterThan(fromRequest.influence['concept']!['a']!);
    const other = await run({ concept: t.testRetain });
    expect(other.influence).not.toEqual(fromRows.influence);
  });
});

describe('no synchronous read in unlearn()', () => {
  it('on cpu with dataSync, arraySync, bufferSync and (outside tf.js kernels) readSync throwing, the calibrated default succeeds', async () => {
    // The pattern of test/no-sync-reads.test.ts: armed only around the call, so this file's helpers may read.
    let armed = false;
    const calls: string[] = [];
    const patch = (owner: object, name: string, allow: (stack: string | undefined) => boolean) => {
      const target = owner as Record<string, (...args: unknown[]) => unknown>;
      const original = target[name]!;
      target[name] = function (this: unknown, ...args: unknown[]) {
        if (armed && !allow(new Error().stack)) {
          calls.push(name);
          throw new Error(`sync read: ${name}`);
        }
        return original.apply(this, args);
      };
      return () => (target[name] = original);
    };
    // Frame 0 is the Error, 1 the patched readSync, 2 its caller.
    const fromTfjs = (stack: string | undefined) => (stack?.split('\n')[3] ?? '').includes('@tensorflow');
    const undo = [...['dataSync', 'arraySync', 'bufferSync'].map((name) => patch(tf.Tensor.prototype, name, () => false)), patch(tf.findBackend('cpu')!, 'readSync', fromTfjs)];
    try {
      armed = true;
      // The patch bites: a sync read throws while armed.
      expect(() => tf.scalar(1).dataSync()).toThrow(/sync read/);
      calls.length = 0;
      const { model, metrics } = await unlearn(t.model, t.request);
      armed = false;
      expect(calls).toEqual([]);
      expect(metrics.calibration!.stopped.reason).toBe('calibrated');
      model.dispose();
    } finally {
      armed = false;
      undo.forEach((f) => f());
    }
  });
});
