// unlearn(): remove rows or a concept from a trained model by rfa-lora, hinge-kl, gradient ascent or fine-tuning, on a copy.
import * as tf from '@tensorflow/tfjs';
import { permutation, seededRandom } from '../hooks/fit.js';
import { adaptedLayers, cloneModel, mergeAdapters, withAdapters } from './adapt.js';
import { Calibrator, planCalibration, type Calibration } from './calibrate.js';
import { stepLoss, type StepBatch, type Strength } from './losses.js';
import { InrunError } from '../errors.js';
import { checkFiniteRows } from '../posthoc/finite-rows.js';
import { resolveUnlearnOptions, type ResolvedUnlearnOptions, type UnlearnMethod, type UnlearnOptions, type UnlearnRows } from './options.js';
import { membershipAuc } from './metrics.js';
import { warn } from '../warn.js';
import { accuracy, predictedOf, probabilitiesOf, rowLosses } from './outputs.js';

/** One point of the training curve: mean loss (the model's own) on the forget and retain rows after an epoch. */
export interface UnlearnEpoch {
  /** 0 = before unlearning. */
  readonly epoch: number;
  readonly forgetLoss: number;
  /** null when no retain rows were given. */
  readonly retainLoss: number | null;
}

/** What {@link unlearn} measured, on the rows it was given. */
export interface UnlearnMetrics {
  readonly method: UnlearnMethod;
  /** Accuracy of the returned model on the forget rows. */
  readonly forgetAccuracy: number;
  /** Accuracy of the returned model on the retain rows; null without retain rows. */
  readonly retainAccuracy: number | null;
  /** Wall time of the unlearning steps (not the curve points nor these metrics). */
  readonly seconds: number;
  /** Parameters that trained: the adapters' A and B, or every trainable weight. */
  readonly trainableParams: number;
  /** Parameters of the input model. */
  readonly params: number;
  /** Layers that got adapters (empty for full-parameter methods). */
  readonly adaptedLayers: readonly string[];
  /** The adapter's rank on each adapted layer: the `rank` option clamped to the layer's width. */
  readonly adaptedRanks: Readonly<Record<string, number>>;
  readonly steps: number;
  /** Mean forget loss (the model's own) before unlearning. */
  readonly forgetLossBefore: number;
  /** Mean forget loss of the returned model. */
  readonly forgetLossAfter: number;
  /**
   * Whether the forget set moved: its mean loss rose by at least 0.01 nats or its accuracy changed.
   * false means the run changed nothing measurable on the forget rows (raise learningRate or epochs,
   * lower retainWeight, or retrain: docs/unlearning.md).
   */
  readonly forgetMoved: boolean;
  /**
   * With `heldOut` rows: the loss-threshold membership AUC of forget vs held-out rows
   * (`membershipAuc`) for the input model and the returned one; null without `heldOut`.
   */
  readonly membership: { readonly before: number; readonly after: number } | null;
  /** rfa-lora's bounded forget term: the mean loss the forget rows were raised to; null otherwise. */
  readonly forgetLossTarget: number | null;
  /** Forget and retain loss per epoch (retain loss on at most 512 retain rows). */
  readonly history: readonly UnlearnEpoch[];
  /**
   * The epoch training ended after, and why: all `epochs` ran, (`stopWhenForgotten`) the concept was
   * forgotten, or the calibration stopped it (`'calibrated'`, `'guard'`, `'already'`: see `calibration`).
   */
  readonly stopped: { readonly epoch: number; readonly reason: 'epochs' | 'forgotten' | Calibration['stopped']['reason'] };
  /** What the calibrated forget strength did (target loss, checks, where it stopped and why); null when it did not run (`calibrate: false`, hinge-kl). */
  readonly calibration: Calibration | null;
}

export interface UnlearnResult {
  /** A new model; the input model is unchanged. Unmerged adapters are LoraDense/LoraConv2D layers. */
  readonly model: tf.LayersModel;
  readonly metrics: UnlearnMetrics;
}

const HISTORY_ROWS = 512;
const GUARD_ROWS = 256;

function take(rows: UnlearnRows, idx: readonly number[] | Int32Array): UnlearnRows {
  return tf.tidy(() => {
    const i = tf.tensor1d(Int32Array.from(idx), 'int32');
    return { xs: tf.gather(rows.xs, i), ys: tf.gather(rows.ys, i) };
  });
}

async function meanLoss(model: tf.LayersModel, rows: UnlearnRows): Promise<number> {
  const losses = await rowLosses(model, rows);
  return losses.reduce((s, v) => s + v, 0) / losses.length;
}

/**
 * The loss the bounded forget term raises each forget row to (see UnlearnOptions.forgetLoss): a
 * constant, or with held-out rows the held-out loss of the same rank, so that the forget rows'
 * losses end up distributed like those of rows the model never saw.
 */
async function forgetLossTargets(model: tf.LayersModel, o: ResolvedUnlearnOptions): Promise<Float64Array> {
  const n = o.forget.xs.shape[0]!;
  if (o.forgetLoss !== null || o.heldOut === null) return new Float64Array(n).fill(o.forgetLoss ?? Math.log(Math.max(o.classes, 2)));
  const own = await rowLosses(model, o.forget);
  const held = Float64Array.from(await rowLosses(model, o.heldOut)).sort();
  const targets = new Float64Array(n);
  [...own.keys()].sort((a, b) => own[a]! - own[b]!).forEach((row, rank) => (targets[row] = held[Math.floor(((rank + 0.5) / n) * held.length)]!));
  return targets;
}

/** Whether every weight of `model` is finite (one boolean read per weight). */
async function finiteWeights(model: tf.LayersModel): Promise<boolean> {
  for (const w of model.weights) {
    const ok = tf.tidy(() => tf.all(tf.isFinite(w.read())));
    const [v] = await ok.data();
    ok.dispose();
    if (v === 0) return false;
  }
  return true;
}

/**
 * Removes what `options.forget` taught `model`, keeping `options.retain` (data-level), or removes a
 * concept (`forgetLabel`) while keeping its parent (`coarseOf`) and siblings (knowledge-level).
 * Trains a copy: `result.model` is new and `model` is left bit-for-bit as it was. Methods and their
 * losses: docs/unlearning.md.
 *
 * One epoch is one pass over the forget rows in a seeded order; each step also takes as many
 * retain rows, cycling through them, so every method gets the same step budget.
 */
export async function unlearn(model: tf.LayersModel, options: UnlearnOptions): Promise<UnlearnResult> {
  const o = resolveUnlearnOptions(model, options);
  // A NaN or an infinity in any row would train every weight into NaN, without an error.
  for (const [field, rows] of [['forget', o.forget], ['retain', o.retain], ['heldOut', o.heldOut]] as const) {
    if (rows !== null) {
      await checkFiniteRows(`${field}.xs`, [rows.xs]);
      await checkFiniteRows(`${field}.ys`, [rows.ys]);
    }
  }
  const spec = { layers: o.layers, rank: o.rank, alpha: o.alpha, seed: o.seed };
  const adapted = o.adapters ? adaptedLayers(model, spec) : [];
  const names = adapted.map((l) => l.name);
  const work = o.adapters ? await withAdapters(model, spec, adapted) : await cloneModel(model);
  const variables = (o.adapters ? names.flatMap((n) => work.getLayer(n).trainableWeights) : work.trainableWeights).map((w) => w.read() as tf.Variable);
  const trainableParams = variables.reduce((s, v) => s + v.size, 0);
  const plan = o.calibrate ? await planCalibration(model, o) : null;
  const bounded = o.method === 'rfa-lora' && o.forgetTerm === 'bounded';
  const targets = !bounded ? null : plan !== null && o.forgetLoss === null ? plan.targets : await forgetLossTargets(model, o);
  // Loss L as the true label's log-odds: -log(e^L - 1) (L kept above 1e-6 so that it stays finite).
  const forgetTarget = targets === null ? null : tf.tensor1d(Float32Array.from(targets, (l) => -Math.log(Math.expm1(Math.max(l, 1e-6)))));
  const strength: Strength = { retainWeight: o.retainWeight, learningRateScale: 1 };
  const loss = stepLoss(work, o, strength);
  const before = (rows: UnlearnRows | null) => (o.method === 'hinge-kl' && rows !== null ? tf.tidy(() => probabilitiesOf(model, model.predict(rows.xs, { batchSize: 256 }) as tf.Tensor)) : null);
  const forgetBefore = before(o.forget);
  const retainBefore = before(o.retain);

  const nForget = o.forget.xs.shape[0]!;
  const nRetain = o.retain?.xs.shape[0] ?? 0;
  const spread = (rows: UnlearnRows, n: number, count: number) => (n <= count ? rows : take(rows, [...Array(count).keys()].map((i) => Math.floor((i * n) / count))));
  const historyRetain = o.retain === null ? null : spread(o.retain, nRetain, HISTORY_ROWS);
  // The calibration guard's retain rows: fewer, since they are read after every epoch.
  const guardRetain = historyRetain === null ? null : spread(historyRetain, historyRetain.xs.shape[0]!, GUARD_ROWS);
  const point = async (epoch: number): Promise<UnlearnEpoch> => ({ epoch, forgetLoss: await meanLoss(work, o.forget), retainLoss: historyRetain === null ? null : await meanLoss(work, historyRetain) });
  const history = [await point(0)];
  const forgetAccuracyBefore = await accuracy(model, o.forget);

  const random = seededRandom(o.seed);
  const optimizer = tf.train.adam(o.learningRate);
  let retainOrder: number[] = [];
  let seconds = 0;
  let steps = 0;
  let stopped: UnlearnMetrics['stopped'] = { epoch: o.epochs, reason: 'epochs' };
  // The calibration's checks: the first on the input model (through the unchanged copy), then one per epoch.
  const calibrator = plan === null ? null : new Calibrator(plan, o, variables, strength, guardRetain);
  const calibrate = async (epoch: number): Promise<void> => {
    const started = performance.now();
    await calibrator!.check(work, epoch, steps);
    if (calibrator!.stop !== null) stopped = { epoch, reason: calibrator!.stop.reason };
    seconds += (performance.now() - started) / 1000;
  };
  if (calibrator !== null) await calibrate(0);
  const probe = o.heldOut ?? o.forget;
  const forgotten = async () => {
    const hits = tf.tidy(() => tf.sum(tf.cast(tf.equal(predictedOf(work, work.predict(probe.xs, { batchSize: 256 }) as tf.Tensor), o.forgetLabel!), 'int32')));
    const [n] = await hits.data();
    hits.dispose();
    return n! <= 0.1 * probe.xs.shape[0]!;
  };
  for (let epoch = 1; epoch <= o.epochs && (calibrator === null || calibrator.stop === null); epoch++) {
    const started = performance.now();
    // Adam reads its rate at every step; the calibration shortens it after a breach or an overshoot.
    (optimizer as unknown as { learningRate: number }).learningRate = o.learningRate * strength.learningRateScale;
    const order = permutation(nForget, random);
    for (let at = 0; at < nForget; at += o.batchSize) {
      const idx = order.subarray(at, Math.min(at + o.batchSize, nForget));
      let retainIdx: number[] = [];
      if (o.retain !== null) {
        while (retainOrder.length < idx.length) retainOrder = retainOrder.concat([...permutation(nRetain, random)]);
        retainIdx = retainOrder.splice(0, idx.length);
      }
      const gathered = (t: tf.Tensor | null, rows: readonly number[] | Int32Array) => (t === null ? null : (tf.gather(t, tf.tensor1d(Int32Array.from(rows), 'int32')) as tf.Tensor2D));
      const keep: tf.Tensor[] = [];
      tf.tidy(() => {
        const batch: StepBatch = {
          forget: take(o.forget, idx),
          retain: o.retain === null ? null : take(o.retain, retainIdx),
          forgetBefore: gathered(forgetBefore, idx),
          retainBefore: gathered(retainBefore, retainIdx),
          forgetTarget: gathered(forgetTarget, idx) as tf.Tensor1D | null,
        };
        optimizer.minimize(() => loss(batch, keep), false, variables);
      });
      tf.dispose(keep);
      steps++;
    }
    seconds += (performance.now() - started) / 1000;
    history.push(await point(epoch));
    if (calibrator !== null) await calibrate(epoch);
    if (o.method === 'hinge-kl' && o.stopWhenForgotten && epoch < o.epochs && (await forgotten())) {
      stopped = { epoch, reason: 'forgotten' };
      break;
    }
  }
  optimizer.dispose();
  loss.dispose?.();
  // The best check's weights (nearest 0.5 within the guards), when training went past it.
  const calibration = calibrator === null ? null : calibrator.finish(targets, o.epochs, steps);
  plan?.dispose();
  for (const t of [forgetBefore, retainBefore, forgetTarget]) t?.dispose();
  if (guardRetain !== null && guardRetain !== historyRetain) tf.dispose([guardRetain.xs, guardRetain.ys]);
  if (historyRetain !== null && historyRetain !== o.retain) tf.dispose([historyRetain.xs, historyRetain.ys]);

  let result = work;
  if (o.adapters && o.merge) {
    const started = performance.now();
    result = await mergeAdapters(work);
    work.dispose();
    seconds += (performance.now() - started) / 1000;
  }
  if (!(await finiteWeights(result))) {
    result.dispose();
    throw new InrunError(`unlearning diverged: the model's weights became NaN or infinite (learningRate ${o.learningRate} is too large for this model?); the input model is unchanged`, { field: 'learningRate', code: 'invalid_option' });
  }
  const forgetAccuracy = await accuracy(result, o.forget);
  const forgetLossBefore = history[0]!.forgetLoss;
  const forgetLossAfter = await meanLoss(result, o.forget);
  const retainAccuracy = o.retain === null ? null : await accuracy(result, o.retain);
  const membership = o.heldOut === null ? null : { before: await membershipAuc(model, o.forget, o.heldOut), after: await membershipAuc(result, o.forget, o.heldOut) };
  const forgetMoved = forgetLossAfter - forgetLossBefore >= 0.01 || forgetAccuracy !== forgetAccuracyBefore;
  // Said out loud as well as in the metrics: a run that returns the input model, in effect, looks like success otherwise.
  if (calibration?.warning != null) warn(`unlearn: ${calibration.warning}`);
  if (!forgetMoved && o.epochs > 0) {
    const why = calibration === null ? '' : ` (calibration stopped: ${calibration.stopped.reason} after epoch ${calibration.stopped.epoch}, kept epoch ${calibration.kept.epoch})`;
    warn(`unlearn (${o.method}): the forget rows did not move${why}; see metrics.forgetMoved and docs/unlearning.md (when retraining is the better tool)`);
  }
  return {
    model: result,
    metrics: {
      method: o.method,
      forgetAccuracy,
      retainAccuracy,
      seconds,
      trainableParams,
      params: model.countParams(),
      adaptedLayers: names,
      adaptedRanks: Object.fromEntries(adapted.map((l) => [l.name, l.rank])),
      steps,
      forgetLossBefore,
      forgetLossAfter,
      membership,
      forgetMoved,
      forgetLossTarget: targets === null ? null : targets.reduce((a, b) => a + b, 0) / targets.length,
      history,
      stopped,
      calibration,
    },
  };
}

