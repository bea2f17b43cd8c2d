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
  /** Accuracy on the guard's retain rows (at most 512; null without retain rows) and on the held-out validation rows (their true labels). */
  readonly retainAccuracy: number | null;
  readonly heldOutAccuracy: number;
  /** rfa-lora: the retain term's weight the epoch ran with (it falls tenfold after an epoch that barely moved the test). */
  readonly retainWeight: number;
}

/** What the calibration did (`result.metrics.calibration`). */
export interface Calibration {
  /** Where the held-out rows came from: `heldOut`, or every k-th retain row (which the model trained on). */
  readonly heldOut: 'given' | 'retain-split';
  /** Held-out rows used: half set the targets, half are the stop test's validation split. */
  readonly heldOutRows: number;
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
   * Where training stopped and why: `'calibrated'` (membership within `membershipTolerance` of 0.5),
   * `'guard'` (retain or held-out accuracy fell more than `accuracyTolerance`), `'epochs'` (the most
   * epochs ran), `'already'` (the input model already passed: nothing to do, or, with a retain split,
   * rows the model trained on cannot tell a slice of the data apart: give `heldOut`).
   */
  readonly stopped: { readonly epoch: number; readonly steps: number; readonly reason: 'calibrated' | 'guard' | 'epochs' | 'already' };
  /** The check whose weights the result carries: the one nearest 0.5 among those within the guards. */
  readonly kept: { readonly epoch: number; readonly steps: number };
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
  /** Validation rows: true labels (guard) and target labels (membership test). */
  readonly validation: { readonly xs: tf.Tensor; readonly ys: tf.Tensor; readonly targetYs: tf.Tensor };
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
  const half = (parity: number) => {
    const pick = [...idx.keys()].filter((k) => idx.length < 4 || k % 2 === parity);
    return tf.tidy(() => {
      const i = tf.tensor1d(Int32Array.from(pick), 'int32');
      return { xs: tf.gather(rows.xs, i), ys: tf.gather(rows.ys, i), targetYs: tf.gather(targetYs, i) };
    });
  };
  const fit = half(0);
  const validation = half(1);
  const [held, own] = await Promise.all([
    read(tf.tidy(() => rowLoss(model, fit.targetYs, model.predict(fit.xs, { batchSize: 256 }) as tf.Tensor))),
    read(tf.tidy(() => rowLoss(model, o.forget.ys, model.predict(o.forget.xs, { batchSize: 256 }) as tf.Tensor))),
  ]);
  tf.dispose([rows.xs, rows.ys, targetYs, fit.xs, fit.ys, fit.targetYs]);
  const sorted = Float64Array.from(held).sort();
  const n = own.length;
  const targets = new Float64Array(n);
  [...own.keys()].sort((a, b) => own[a]! - own[b]!).forEach((row, rank) => (targets[row] = sorted[Math.floor(((rank + 0.5) / n) * sorted.length)]!));
  return {
    heldOut: o.heldOut === null ? 'retain-split' : 'given',
    heldOutRows: idx.length,
    request,
    forgottenClasses,
    targets,
    forgetLoss: Array.from(own).reduce((s, v) => s + v, 0) / n,
    validation,
    dispose: () => tf.dispose([validation.xs, validation.ys, validation.targetYs]),
  };
}

/** The membership test and both accuracies of `model`, in one asynchronous read. */
export async function checkCalibration(model: tf.LayersModel, plan: CalibrationPlan, forget: UnlearnRows, retain: UnlearnRows | null): Promise<Omit<CalibrationCheck, 'epoch' | 'steps' | 'retainWeight'>> {
  const nForget = forget.xs.shape[0]!;
  const nVal = plan.validation.xs.shape[0]!;
  const classes = model.outputs[0]!.shape.at(-1) ?? 1;
  const all = tf.tidy(() => {
    const predict = (xs: tf.Tensor) => model.predict(xs, { batchSize: 256 }) as tf.Tensor;
    const share = (out: tf.Tensor, ys: tf.Tensor) => tf.reshape(tf.mean(tf.cast(tf.equal(predictedOf(model, out), labelsOf(ys, classes)), 'float32')), [1]);
    const val = predict(plan.validation.xs);
    return tf.concat([rowLoss(model, forget.ys, predict(forget.xs)), rowLoss(model, plan.validation.targetYs, val), share(val, plan.validation.ys), ...(retain === null ? [] : [share(predict(retain.xs), retain.ys)])]);
  });
  const v = await read(all);
  return { membership: aucOf(v.subarray(0, nForget), v.subarray(nForget, nForget + nVal)), heldOutAccuracy: v[nForget + nVal]!, retainAccuracy: retain === null ? null : v[nForget + nVal + 1]! };
}

/**
 * The calibration's control, one check after each epoch: keeps the weights of the best check (nearest
 * 0.5 within the guards), stops once calibrated, and sets rfa-lora's strength: the retain term's
 * weight falls tenfold after an epoch that closed less than a quarter of the gap to 0.5, and after a
 * guard breach the best weights come back and the weight rises tenfold (never again below it); a
 * second breach, or any breach of a method without that knob, stops.
 */
export class Calibrator {
  readonly checks: CalibrationCheck[] = [];
  stop: Calibration['stopped'] | null = null;
  private best: { check: CalibrationCheck; snapshot: tf.Tensor[] } | null = null;
  private lastGood: CalibrationCheck | null = null;
  private breaches = 0;
  private floor = 0;

  constructor(
    private readonly plan: CalibrationPlan,
    private readonly o: ResolvedUnlearnOptions,
    private readonly variables: readonly tf.Variable[],
    private readonly strength: { retainWeight: number },
    private readonly guardRetain: UnlearnRows | null,
  ) {}

  async check(model: tf.LayersModel, epoch: number, steps: number): Promise<void> {
    const c: CalibrationCheck = { epoch, steps, retainWeight: this.strength.retainWeight, ...(await checkCalibration(model, this.plan, this.o.forget, this.guardRetain)) };
    this.checks.push(c);
    const first = this.checks[0]!;
    const tol = this.o.accuracyTolerance;
    const guarded = c.heldOutAccuracy >= first.heldOutAccuracy - tol && (c.retainAccuracy === null || c.retainAccuracy >= first.retainAccuracy! - tol);
    const gap = (x: CalibrationCheck) => Math.abs(x.membership - 0.5);
    if (guarded && (this.best === null || gap(c) < gap(this.best.check))) {
      if (this.best !== null) tf.dispose(this.best.snapshot);
      this.best = { check: c, snapshot: this.variables.map((v) => tf.keep(v.clone())) };
    }
    const knob = this.o.method === 'rfa-lora';
    const previous = this.lastGood;
    if (guarded) this.lastGood = c;
    if (!guarded) {
      this.breaches++;
      if (!knob || this.breaches > 1 || epoch === this.o.epochs) this.stop = { epoch, steps, reason: 'guard' };
      else {
        this.restore();
        this.floor = this.strength.retainWeight * 10;
        this.strength.retainWeight = this.floor;
      }
    } else if (c.membership <= 0.5 + this.o.membershipTolerance) this.stop = { epoch, steps, reason: previous === null ? 'already' : 'calibrated' };
    else if (epoch === this.o.epochs) this.stop = { epoch, steps, reason: 'epochs' };
    else if (knob && previous !== null && previous.membership - c.membership < 0.25 * (previous.membership - 0.5) && this.strength.retainWeight / 10 >= this.floor) {
      // The retain term holds the forget rows back.
      this.strength.retainWeight /= 10;
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
    return {
      heldOut: this.plan.heldOut,
      heldOutRows: this.plan.heldOutRows,
      request: this.plan.request,
      forgottenClasses: this.plan.forgottenClasses,
      targetLoss: t.reduce((a, b) => a + b, 0) / t.length,
      forgetLoss: this.plan.forgetLoss,
      checks: this.checks,
      stopped: this.stop ?? { epoch: epochs, steps, reason: 'epochs' },
      kept: kept === null ? { epoch: 0, steps: 0 } : { epoch: kept.epoch, steps: kept.steps },
    };
  }
}
