// The calibrated forget strength of the data-level methods: held-out target losses, the membership stop test and the accuracy guards.
import * as tf from '@tensorflow/tfjs';
import { aucOf } from './metrics.js';
import type { ResolvedUnlearnOptions, UnlearnRows } from './options.js';
import { labelsOf, predictedOf, rowLoss } from './outputs.js';

/** One check of the calibration, after an epoch (epoch 0: the input model). */
export interface CalibrationCheck {
  readonly epoch: number;
  readonly steps: number;
  /** Loss-threshold membership AUC of the forget rows against the held-out validation rows' target losses. */
  readonly membership: number;
  /**
   * Share of the forget rows predicted as their own label, and share of the held-out rows predicted as
   * their target label (`'rows'`: their own label, i.e. held-out accuracy; `'class'`: a forgotten class,
   * i.e. how often the model gives that class to rows it never saw of it). Calibrated forget rows are
   * recognised as often as unseen rows are.
   */
  readonly forgetAccuracy: number;
  readonly unseenAccuracy: number;
  /**
   * How far the check is from calibrated, in band widths: the larger of `|membership - 0.5| /
   * membershipTolerance` and `|forgetAccuracy - unseenAccuracy| / forgetAccuracyTolerance` (at most 1: calibrated).
   */
  readonly distance: number;
  /** Accuracy on the guard's retain rows (at most 256; null without retain rows) and on every held-out row (their true labels). */
  readonly retainAccuracy: number | null;
  readonly heldOutAccuracy: number;
  /** rfa-lora: the retain term's weight the epoch ran with (it falls after an epoch that barely moved the checks). */
  readonly retainWeight: number;
  /** The learning rate the epoch ran with, as a share of `learningRate` (a quarter after each breach or overshoot). */
  readonly learningRateScale: number;
}

/** What the calibration did (`result.metrics.calibration`). */
export interface Calibration {
  /** Where the held-out rows came from: `heldOut`, or every k-th retain row (which the model trained on). */
  readonly heldOut: 'given' | 'retain-split';
  /** Held-out rows used: half set the targets, half are the membership test's validation split; all of them measure accuracy. */
  readonly heldOutRows: number;
  /**
   * null, or why the result cannot be trusted: a slice of the data (`'rows'`) with no `heldOut` has only
   * rows the model trained on as its reference, so forget rows look calibrated from the start.
   */
  readonly warning: string | null;
  /**
   * `'rows'`: the forget rows' labels are also in the retain rows (a slice of the data): the target
   * is the held-out rows' own loss. `'class'`: some forget labels have no retain row (whole classes):
   * the target is the loss held-out rows of other classes have under a forgotten label, i.e. how the
   * model treats a class on rows it never saw of that class.
   */
  readonly request: 'rows' | 'class';
  /** The forget labels with no retain row (empty for `'rows'`). */
  readonly forgottenClasses: readonly number[];
  /** The mean of the per-row target losses of the bounded term (the input model's held-out losses, rank-matched). */
  readonly targetLoss: number;
  /** The input model's mean loss on the forget rows, for comparison. */
  readonly forgetLoss: number;
  /** Every check, in order; the first is the input model. */
  readonly checks: readonly CalibrationCheck[];
  /**
   * Where training stopped and why: `'calibrated'` (inside the band: membership within
   * `membershipTolerance` of 0.5 and forget accuracy within `forgetAccuracyTolerance` of the unseen
   * rows'), `'overshot'` (past the band on the far side: membership below 0.5 - tolerance or forget
   * accuracy below the unseen rows' by more than its tolerance), `'guard'` (retain or held-out accuracy
   * fell more than `accuracyTolerance`), `'epochs'` (the most epochs ran), `'already'` (the input model
   * is already inside the band: nothing to do, or, with a retain split on a slice, see `warning`).
   */
  readonly stopped: { readonly epoch: number; readonly steps: number; readonly reason: 'calibrated' | 'overshot' | 'guard' | 'epochs' | 'already' };
  /**
   * The check whose weights the result carries: the nearest to calibrated (smallest `distance`) among
   * those within the guards, and why (`'calibrated'`: the stop check itself; `'closest'`: an earlier
   * check was nearer, e.g. after an overshoot or a guard breach; `'input'`: no check beat the input model).
   */
  readonly kept: { readonly epoch: number; readonly steps: number; readonly why: 'calibrated' | 'closest' | 'input' };
}

/** Held-out rows, forget targets and the rows of the checks, set up once from the input model. */
export interface CalibrationPlan {
  readonly heldOut: 'given' | 'retain-split';
  readonly heldOutRows: number;
  readonly request: 'rows' | 'class';
  readonly forgottenClasses: readonly number[];
  /** The per-row target losses of the bounded term, one per forget row. */
  readonly targets: Float64Array;
  readonly forgetLoss: number;
  readonly warning: string | null;
  /** Every held-out row used: true labels (guard) and target labels (unseen accuracy); `validation` are the positions of the membership test's half. */
  readonly rows: { readonly xs: tf.Tensor; readonly ys: tf.Tensor; readonly targetYs: tf.Tensor };
  readonly validation: tf.Tensor1D;
  readonly dispose: () => void;
}

const MAX_HELD_OUT = 512;

async function read(t: tf.Tensor): Promise<Float32Array | Int32Array> {
  try {
    return (await t.data()) as Float32Array | Int32Array;
  } finally {
    t.dispose();
  }
}

function gatherRows(rows: UnlearnRows, idx: readonly number[]): UnlearnRows {
  return tf.tidy(() => {
    const i = tf.tensor1d(Int32Array.from(idx), 'int32');
    return { xs: tf.gather(rows.xs, i), ys: tf.gather(rows.ys, i) };
  });
}

/** Labels `ys` of the same form as `like` (one-hot `[n, classes]`, or ids `[n]` / `[n, 1]`) for the class ids `ids`. */
function labelsLike(like: tf.Tensor, ids: readonly number[], classes: number): tf.Tensor {
  return tf.tidy(() => {
    const t = tf.tensor1d(Int32Array.from(ids), 'int32');
    if (like.rank === 2 && like.shape[1] === classes && classes > 1) return tf.cast(tf.oneHot(t, classes), like.dtype);
    return tf.cast(like.rank === 2 ? tf.reshape(t, [-1, 1]) : t, like.dtype);
  });
}

/**
 * Sets up the calibration (docs/unlearning.md#calibration): held-out rows (`heldOut`, else every
 * k-th retain row, at most 512), split in two by position (even rows set the targets, odd rows are
 * the stop test's validation split), and each forget row's target: the held-out target loss of the
 * same rank.
 */
export async function planCalibration(model: tf.LayersModel, o: ResolvedUnlearnOptions): Promise<CalibrationPlan | null> {
  // Neither held-out nor retain rows: nothing to calibrate against.
  if (o.heldOut === null && o.retain === null) return null;
  const classes = o.classes;
  const forgetLabels = await read(labelsOf(o.forget.ys, classes));
  const retainLabels = o.retain === null ? new Int32Array(0) : await read(labelsOf(o.retain.ys, classes));
  const kept = new Set(retainLabels);
  const forgottenClasses = classes < 2 || o.retain === null ? [] : [...new Set(forgetLabels)].filter((l) => !kept.has(l)).sort((a, b) => a - b);
  const request = forgottenClasses.length > 0 ? 'class' : 'rows';

  let source: UnlearnRows;
  let sourceLabels: Float32Array | Int32Array;
  let owned = false;
  if (o.heldOut !== null) {
    source = o.heldOut;
    sourceLabels = await read(labelsOf(o.heldOut.ys, classes));
  } else {
    // No rows the model never saw: every k-th retain row (documented as the weaker target).
    const n = retainLabels.length;
    const count = Math.max(1, Math.min(MAX_HELD_OUT, Math.floor(n / 5)));
    const idx = [...Array(count).keys()].map((i) => Math.floor((i * n) / count));
    source = gatherRows(o.retain!, idx);
    sourceLabels = Int32Array.from(idx, (i) => retainLabels[i]!);
    owned = true;
  }
  // For a class, only rows of other classes say how the model treats a class it never saw there.
  const forgotten = new Set(forgottenClasses);
  let idx = [...sourceLabels.keys()].filter((i) => !forgotten.has(sourceLabels[i]!));
  if (idx.length > MAX_HELD_OUT) idx = [...Array(MAX_HELD_OUT).keys()].map((i) => idx[Math.floor((i * idx.length) / MAX_HELD_OUT)]!);
  if (idx.length === 0) idx = [...sourceLabels.keys()];
  const rows = gatherRows(source, idx);
  if (owned) tf.dispose([source.xs, source.ys]);
  const targetYs = request === 'class' ? labelsLike(rows.ys, idx.map((_, k) => forgottenClasses[k % forgottenClasses.length]!), classes) : rows.ys.clone();
  const half = (parity: number) => Int32Array.from([...idx.keys()].filter((k) => idx.length < 4 || k % 2 === parity));
  const fit = tf.tidy(() => {
    const i = tf.tensor1d(half(0), 'int32');
    return { xs: tf.gather(rows.xs, i), targetYs: tf.gather(targetYs, i) };
  });
  const validation = tf.tensor1d(half(1), 'int32');
  const [held, own] = await Promise.all([
    read(tf.tidy(() => rowLoss(model, fit.targetYs, model.predict(fit.xs, { batchSize: 256 }) as tf.Tensor))),
    read(tf.tidy(() => rowLoss(model, o.forget.ys, model.predict(o.forget.xs, { batchSize: 256 }) as tf.Tensor))),
  ]);
  tf.dispose([fit.xs, fit.targetYs]);
  const sorted = Float64Array.from(held).sort();
  const n = own.length;
  const targets = new Float64Array(n);
  [...own.keys()].sort((a, b) => own[a]! - own[b]!).forEach((row, rank) => (targets[row] = sorted[Math.floor(((rank + 0.5) / n) * sorted.length)]!));
  const members = o.heldOut === null && request === 'rows';
  return {
    heldOut: o.heldOut === null ? 'retain-split' : 'given',
    heldOutRows: idx.length,
    warning: members
      ? 'no heldOut rows: the reference is a split of the retain rows, which the model trained on, so a slice of the training data looks unseen already and the calibration cannot tell it apart; pass heldOut (a validation split the model never trained on)'
      : null,
    request,
    forgottenClasses,
    targets,
    forgetLoss: Array.from(own).reduce((s, v) => s + v, 0) / n,
    rows: { xs: rows.xs, ys: rows.ys, targetYs },
    validation,
    dispose: () => tf.dispose([rows.xs, rows.ys, targetYs, validation]),
  };
}

/** The membership test, the forget and unseen accuracies and the guards' accuracies of `model`, in one asynchronous read. */
export async function checkCalibration(model: tf.LayersModel, plan: CalibrationPlan, forget: UnlearnRows, retain: UnlearnRows | null): Promise<Omit<CalibrationCheck, 'epoch' | 'steps' | 'retainWeight' | 'learningRateScale' | 'distance'>> {
  const nForget = forget.xs.shape[0]!;
  const nVal = plan.validation.shape[0]!;
  const classes = model.outputs[0]!.shape.at(-1) ?? 1;
  const all = tf.tidy(() => {
    const predict = (xs: tf.Tensor) => model.predict(xs, { batchSize: 256 }) as tf.Tensor;
    const share = (out: tf.Tensor, ys: tf.Tensor) => tf.reshape(tf.mean(tf.cast(tf.equal(predictedOf(model, out), labelsOf(ys, classes)), 'float32')), [1]);
    const held = predict(plan.rows.xs);
    const out = predict(forget.xs);
    const heldLoss = tf.gather(rowLoss(model, plan.rows.targetYs, held), plan.validation);
    return tf.concat([rowLoss(model, forget.ys, out), heldLoss, share(out, forget.ys), share(held, plan.rows.targetYs), share(held, plan.rows.ys), ...(retain === null ? [] : [share(predict(retain.xs), retain.ys)])]);
  });
  const v = await read(all);
  const at = nForget + nVal;
  return {
    membership: aucOf(v.subarray(0, nForget), v.subarray(nForget, at)),
    forgetAccuracy: v[at]!,
    unseenAccuracy: v[at + 1]!,
    heldOutAccuracy: v[at + 2]!,
    retainAccuracy: retain === null ? null : v[at + 3]!,
  };
}

/**
 * rfa-lora: the factor the retain term's weight falls by after an epoch that barely moved the checks
 * (and rises by after a breach). sqrt(10), not 10: a tenfold cut overshot into the guard on a random
 * slice of MNIST (docs/unlearning.md#calibration).
 */
const RETAIN_STEP = Math.sqrt(10);

/** Breaches and overshoots the calibration steps back from (restoring the best weights, a shorter step) before it stops. */
const MAX_BOUNCES = 2;

/**
 * The calibration's control, one check after each epoch (docs/unlearning.md#calibration): a two-sided
 * band around unseen behaviour. It keeps the weights of the check nearest the band (smallest `distance`
 * within the guards) and stops inside the band (`'calibrated'`). A guard breach or a step past the band
 * puts the best weights back and continues at a quarter of the learning rate (after a breach rfa-lora's
 * retain term also gets `RETAIN_STEP` times stronger); the third such bounce stops (`'guard'`,
 * `'overshot'`). rfa-lora's retain weight falls `RETAIN_STEP`-fold after an epoch that closed less than
 * a quarter of the distance to the band.
 */
export class Calibrator {
  readonly checks: CalibrationCheck[] = [];
  stop: Calibration['stopped'] | null = null;
  private best: { check: CalibrationCheck; snapshot: tf.Tensor[] } | null = null;
  private lastGood: CalibrationCheck | null = null;
  private bounces = 0;
  private floor = 0;

  constructor(
    private readonly plan: CalibrationPlan,
    private readonly o: ResolvedUnlearnOptions,
    private readonly variables: readonly tf.Variable[],
    private readonly strength: { retainWeight: number; learningRateScale: number },
    private readonly guardRetain: UnlearnRows | null,
  ) {}

  async check(model: tf.LayersModel, epoch: number, steps: number): Promise<void> {
    const m = await checkCalibration(model, this.plan, this.o.forget, this.guardRetain);
    const accuracyGap = m.forgetAccuracy - m.unseenAccuracy;
    const distance = Math.max(Math.abs(m.membership - 0.5) / this.o.membershipTolerance, Math.abs(accuracyGap) / this.o.forgetAccuracyTolerance);
    const c: CalibrationCheck = { epoch, steps, retainWeight: this.strength.retainWeight, learningRateScale: this.strength.learningRateScale, distance, ...m };
    this.checks.push(c);
    const first = this.checks[0]!;
    const tol = this.o.accuracyTolerance;
    const guarded = c.heldOutAccuracy >= first.heldOutAccuracy - tol && (c.retainAccuracy === null || c.retainAccuracy >= first.retainAccuracy! - tol);
    if (guarded && (this.best === null || c.distance < this.best.check.distance)) {
      if (this.best !== null) tf.dispose(this.best.snapshot);
      this.best = { check: c, snapshot: this.variables.map((v) => tf.keep(v.clone())) };
    }
    const knob = this.o.method === 'rfa-lora';
    const previous = this.lastGood;
    if (guarded) this.lastGood = c;
    const overshot = c.membership < 0.5 - this.o.membershipTolerance || accuracyGap < -this.o.forgetAccuracyTolerance;
    const last = epoch === this.o.epochs;
    if (!guarded || (overshot && previous !== null && c.distance > 1)) {
      // A breach or an overshoot: back to the best weights with a step a quarter as long (and, after a
      // breach, rfa-lora's retain term RETAIN_STEP times stronger, never again below it); the third stops.
      this.bounces++;
      if (this.bounces > MAX_BOUNCES || last) this.stop = { epoch, steps, reason: guarded ? 'overshot' : 'guard' };
      else {
        this.restore();
        this.strength.learningRateScale /= 4;
        if (!guarded && knob) {
          this.floor = this.strength.retainWeight * RETAIN_STEP;
          this.strength.retainWeight = this.floor;
        }
      }
    } else if (c.distance <= 1) this.stop = { epoch, steps, reason: previous === null ? 'already' : 'calibrated' };
    else if (last) this.stop = { epoch, steps, reason: 'epochs' };
    else if (knob && previous !== null && previous.distance - c.distance < 0.25 * (previous.distance - 1) && this.strength.retainWeight / RETAIN_STEP >= this.floor) {
      // The retain term holds the forget rows back.
      this.strength.retainWeight /= RETAIN_STEP;
    }
  }

  /** Puts the best check's weights back (when training went past it); returns the check kept. */
  restore(): CalibrationCheck | null {
    const best = this.best;
    if (best !== null && best.check !== this.checks.at(-1)) this.variables.forEach((v, i) => v.assign(best.snapshot[i]!));
    return best?.check ?? null;
  }

  /** Restores the best weights, frees the snapshot and says what the calibration did. */
  finish(targets: Float64Array | null, epochs: number, steps: number): Calibration {
    const kept = this.restore();
    if (this.best !== null) tf.dispose(this.best.snapshot);
    this.best = null;
    const t = targets ?? this.plan.targets;
    const stopped = this.stop ?? { epoch: epochs, steps, reason: 'epochs' as const };
    const why = kept === null || kept.epoch === 0 ? 'input' : kept.distance <= 1 && kept.epoch === stopped.epoch ? 'calibrated' : 'closest';
    return {
      heldOut: this.plan.heldOut,
      heldOutRows: this.plan.heldOutRows,
      warning: this.plan.warning,
      request: this.plan.request,
      forgottenClasses: this.plan.forgottenClasses,
      targetLoss: t.reduce((a, b) => a + b, 0) / t.length,
      forgetLoss: this.plan.forgetLoss,
      checks: this.checks,
      stopped,
      kept: kept === null ? { epoch: 0, steps: 0, why: 'input' } : { epoch: kept.epoch, steps: kept.steps, why },
    };
  }
}
