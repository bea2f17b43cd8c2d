// unlearn()'s calibrated forget strength (whole class, the accuracy guard, metrics.calibration), a removal request as an attach/untrac target, and no sync reads.
import * as tf from '@tensorflow/tfjs';
import { attach, untrac, unlearn, type UnlearnRequest } from 'inrun';
import { beforeAll, describe, expect, it } from 'vitest';
import { syncReadTrap } from './helpers.js';

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
    // The stop is two-sided: inside the band (membership within 0.05 of 0.5, forget accuracy within 0.02 of the unseen rows'), no earlier check was.
    const kept = cal.checks.find((c) => c.epoch === cal.kept.epoch)!;
    expect(cal.kept.why).toBe('calibrated');
    expect(Math.abs(kept.membership - 0.5)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(kept.forgetAccuracy - kept.unseenAccuracy)).toBeLessThanOrEqual(0.02);
    expect(kept.distance).toBeLessThanOrEqual(1);
    expect(cal.checks.slice(0, -1).every((c) => c.distance > 1)).toBe(true);
    // An epoch that went past the band (membership below 0.45) was stepped back from: the next epoch ran at a quarter of the rate.
    const past = cal.checks.findIndex((c) => c.membership < 0.45);
    expect(past).toBeGreaterThan(0);
    expect(cal.checks[past + 1]!.learningRateScale).toBe(cal.checks[past]!.learningRateScale / 4);
    // rfa-lora's retain weight fell after epochs that barely moved the checks.
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

describe('the band and its warnings', () => {
  it('a slice of the data without heldOut: the reference is member data; metrics.calibration.warning says so and a warning is emitted', async () => {
    const warnings: string[] = [];
    const listen = (w: Error) => warnings.push(w.message);
    process.on('warning', listen);
    try {
      const slice = [...Array(t.request.retain.xs.shape[0]!).keys()];
      const forget = pick(t.request.retain, slice.filter((i) => i % 10 === 0));
      const retain = pick(t.request.retain, slice.filter((i) => i % 10 !== 0));
      const { model, metrics } = await unlearn(t.model, { forget, retain });
      const cal = metrics.calibration!;
      expect(cal.request).toBe('rows');
      expect(cal.heldOut).toBe('retain-split');
      expect(cal.warning).toMatch(/pass heldOut/);
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(warnings.some((w) => w.includes('pass heldOut'))).toBe(true);
      // Forget rows look like the member reference from the start: nothing measurable moves, and that is said too.
      expect(metrics.forgetMoved).toBe(false);
      expect(warnings.some((w) => w.includes('rfa-lora') && w.includes('did not move'))).toBe(true);
      warnings.length = 0;
      // A run that changes nothing measurable on the forget rows says so, in the metrics and out loud.
      const still = await unlearn(t.model, { forget, retain, method: 'fine-tune', calibrate: false, epochs: 1, learningRate: 1e-9 });
      expect(still.metrics.forgetMoved).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(warnings.some((w) => w.includes('fine-tune') && w.includes('did not move'))).toBe(true);
      still.model.dispose();
      // With held-out rows there is no warning.
      const given = await unlearn(t.model, { forget, retain, heldOut: t.testRetain });
      expect(given.metrics.calibration!.warning).toBeNull();
      model.dispose();
      given.model.dispose();
    } finally {
      process.off('warning', listen);
    }
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
    // Armed only around the call, so this file's helpers may read.
    const trap = syncReadTrap(['cpu']);
    try {
      trap.armed = true;
      // The patch bites: a sync read throws while armed.
      expect(() => tf.scalar(1).dataSync()).toThrow(/sync read/);
      trap.calls.length = 0;
      const { model, metrics } = await unlearn(t.model, t.request);
      trap.armed = false;
      expect(trap.calls).toEqual([]);
      expect(metrics.calibration!.stopped.reason).toBe('calibrated');
      model.dispose();
    } finally {
      trap.armed = false;
      trap.restore();
    }
  });
});
