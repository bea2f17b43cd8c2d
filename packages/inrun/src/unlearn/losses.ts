// Each unlearning method's loss on one step's batch: rfa-lora, hinge-kl, gradient-ascent, fine-tune.
import * as tf from '@tensorflow/tfjs';
import { withResiduals } from './lora.js';
import type { ResolvedUnlearnOptions, UnlearnRows } from './options.js';
import { labelsOf, logitsOf, probabilitiesOf, rowLoss, trueLogOdds } from './outputs.js';

/** One step's rows, with the original model's class probabilities on them (hinge-kl's KL terms). */
export interface StepBatch {
  readonly forget: UnlearnRows;
  readonly retain: UnlearnRows | null;
  readonly forgetBefore: tf.Tensor2D | null;
  readonly retainBefore: tf.Tensor2D | null;
  /** rfa-lora's bounded term: each forget row's target log-odds of its true label. */
  readonly forgetTarget: tf.Tensor1D | null;
}

/**
 * A method's loss. Tensors it must keep alive until the gradient is taken (the residual features)
 * go in `keep`; the caller disposes them after the step.
 */
export type StepLoss = (batch: StepBatch, keep: tf.Tensor[]) => tf.Scalar;

/** What the calibration changes between epochs: rfa-lora's retain term, and the learning rate as a share of `learningRate`. */
export interface Strength {
  retainWeight: number;
  learningRateScale: number;
}

const EPS = 1e-7;

/** KL(p || q) per row, `[n]`, for distributions along the last axis. */
function kl(p: tf.Tensor, q: tf.Tensor): tf.Tensor1D {
  const pc = tf.clipByValue(p, EPS, 1);
  return tf.sum(tf.mul(pc, tf.sub(tf.log(pc), tf.log(tf.clipByValue(q, EPS, 1)))), -1) as tf.Tensor1D;
}

/** The `[classes, coarse classes]` 0/1 matrix mapping fine probabilities to coarse ones (fine summed per coarse label). */
export function coarseMap(coarseOf: readonly number[]): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.tensor1d([...coarseOf], 'int32'), Math.max(...coarseOf) + 1).toFloat() as tf.Tensor2D);
}

/** rfa-lora: zero residual on retained rows; the forget rows' loss pushed up (bounded) or toward the best wrong label. */
function rfaLora(model: tf.LayersModel, o: ResolvedUnlearnOptions, strength: Strength): StepLoss {
  return (batch, keep) => {
    const { residuals } = withResiduals(() => model.apply(batch.retain!.xs));
    keep.push(...residuals);
    // Mean over rows of ||R(a)||^2, averaged over the adapted layers.
    const perLayer = residuals.map((r) => tf.mul(tf.sum(tf.square(r)), 1 / r.shape[0]!));
    const retainTerm = tf.div(tf.addN(perLayer), perLayer.length);
    const out = model.apply(batch.forget.xs) as tf.Tensor;
    let forgetTerm: tf.Tensor;
    if (o.forgetTerm === 'bounded') {
      // Cross-entropy L above its target is the same as the true label's log-odds below
      // -log(e^L - 1); the log-odds keep a gradient where a saturated softmax's loss has none.
      forgetTerm = tf.mean(tf.relu(tf.sub(trueLogOdds(model, batch.forget.ys, out, o.classes), batch.forgetTarget!)));
    } else if (o.classes === 1) {
      forgetTerm = tf.mean(rowLoss(model, tf.sub(1, batch.forget.ys), out));
    } else {
      const labels = tf.oneHot(labelsOf(batch.forget.ys, o.classes), o.classes);
      const wrong = tf.argMax(tf.sub(logitsOf(model, out), tf.mul(labels, 1e9)), 1);
      const p = probabilitiesOf(model, out);
      forgetTerm = tf.neg(tf.mean(tf.log(tf.clipByValue(tf.sum(tf.mul(p, tf.oneHot(wrong, o.classes)), 1), EPS, 1))));
    }
    return tf.add(tf.mul(retainTerm, strength.retainWeight), tf.mul(forgetTerm, o.forgetWeight)) as tf.Scalar;
  };
}

/**
 * hinge-kl (Tan & Gong): on the forget rows, a hinge pushing the forgotten label's logit `margin`
 * below the best other label, plus KL terms keeping the original coarse distribution (fine
 * probabilities summed per coarse label) and the original distribution over the other fine labels.
 * Retained rows, when given, keep the whole original distribution (weight `fineWeight`).
 */
function hingeKl(model: tf.LayersModel, o: ResolvedUnlearnOptions): StepLoss {
  const f = o.forgetLabel!;
  const mask = tf.tidy(() => tf.oneHot([f], o.classes).toFloat());
  const coarse = o.coarseOf === null ? null : coarseMap(o.coarseOf);
  const others = (p: tf.Tensor) => {
    const kept = tf.mul(p, tf.sub(1, mask));
    return tf.div(kept, tf.add(tf.sum(kept, -1, true), EPS));
  };
  const loss: StepLoss = (batch) => {
    const out = model.apply(batch.forget.xs) as tf.Tensor;
    const z = logitsOf(model, out);
    const zf = tf.sum(tf.mul(z, mask), 1);
    const zo = tf.max(tf.sub(z, tf.mul(mask, 1e9)), 1);
    let total = tf.mean(tf.relu(tf.add(tf.sub(zf, zo), o.margin)));
    const p = probabilitiesOf(model, out);
    const p0 = batch.forgetBefore!;
    if (coarse !== null) total = tf.add(total, tf.mul(tf.mean(kl(tf.matMul(p0, coarse), tf.matMul(p, coarse))), o.coarseWeight));
    total = tf.add(total, tf.mul(tf.mean(kl(others(p0), others(p))), o.fineWeight));
    if (batch.retain !== null) {
      const pr = probabilitiesOf(model, model.apply(batch.retain.xs) as tf.Tensor);
      total = tf.add(total, tf.mul(tf.mean(kl(batch.retainBefore!, pr)), o.fineWeight));
    }
    return total as tf.Scalar;
  };
  return Object.assign(loss, { dispose: () => tf.dispose([mask, ...(coarse === null ? [] : [coarse])]) });
}

/** The step loss of the resolved method. `dispose` frees what the loss holds across steps. */
export function stepLoss(model: tf.LayersModel, o: ResolvedUnlearnOptions, strength: Strength): StepLoss & { dispose?: () => void } {
  switch (o.method) {
    case 'rfa-lora':
      return rfaLora(model, o, strength);
    case 'hinge-kl':
      return hingeKl(model, o);
    case 'gradient-ascent':
      return (batch) => tf.neg(tf.mean(rowLoss(model, batch.forget.ys, model.apply(batch.forget.xs) as tf.Tensor))) as tf.Scalar;
    case 'fine-tune':
      return (batch) => tf.mean(rowLoss(model, batch.retain!.ys, model.apply(batch.retain!.xs) as tf.Tensor));
  }
}
