// Metrics that judge an unlearned model: the loss-threshold membership-inference AUC and Tan & Gong's Quality, Utility and Q-U.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import { coarseMap } from './losses.js';
import type { UnlearnRows } from './options.js';
import { labelsOf, predictedOf, probabilitiesOf, rowLosses } from './outputs.js';

/**
 * Loss-threshold membership inference: the AUC of telling `forget` rows from `heldOut` rows (never
 * trained on) by a low loss, i.e. P(loss on a forget row < loss on a held-out row), ties counting
 * half. A model that never saw the forget rows scores near 0.5 on a random slice; compare with the
 * retrained model's AUC, not with 0.5 (a whole class, for instance, differs from held-out rows).
 */
export async function membershipAuc(model: tf.LayersModel, forget: UnlearnRows, heldOut: UnlearnRows): Promise<number> {
  return aucOf(await rowLosses(model, forget), await rowLosses(model, heldOut));
}

/** P(a < b) over all pairs of `a` and `b`, ties counting half: the AUC of telling `a` from `b` by a low value. */
export function aucOf(a: ArrayLike<number>, heldOut: ArrayLike<number>): number {
  const b = Float64Array.from(heldOut).sort();
  // For each forget loss, count held-out losses above it (and ties), by binary search.
  const above = (v: number, strict: boolean) => {
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (strict ? b[mid]! <= v : b[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return b.length - lo;
  };
  let wins = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    wins += above(v, true) + 0.5 * (above(v, false) - above(v, true));
  }
  return wins / (a.length * b.length);
}

/** Rows of one concept and of the others, with fine labels, for {@link qualityUtility}. */
export interface ConceptRows {
  /** Rows of the forgotten concept (fine label `forgetLabel`), best held out. */
  readonly concept: UnlearnRows;
  /** Rows of the other concepts. */
  readonly others: UnlearnRows;
  readonly forgetLabel: number;
  /** Fine label -> coarse label. */
  readonly coarseOf: readonly number[];
}

/** Tan & Gong's knowledge-unlearning scores, with the accuracies they come from (all in [0, 1]). */
export interface QualityUtility {
  /** Relative drop of fine accuracy on the concept: (before - after) / before, floored at 0. */
  readonly quality: number;
  /** Mean of the kept ratios (after / before, capped at 1) of coarse accuracy on the concept and accuracy on the others. */
  readonly utility: number;
  /** Harmonic mean of quality and utility (the paper reports it x 100). */
  readonly qu: number;
  readonly fineAccuracy: { readonly before: number; readonly after: number };
  readonly coarseAccuracy: { readonly before: number; readonly after: number };
  readonly othersAccuracy: { readonly before: number; readonly after: number };
}

/** Fine accuracy and coarse accuracy (argmax of fine probabilities summed per coarse label). */
async function accuracies(model: tf.LayersModel, rows: UnlearnRows, coarseOf: readonly number[]): Promise<{ fine: number; coarse: number }> {
  const classes = coarseOf.length;
  const both = tf.tidy(() => {
    const out = model.predict(rows.xs, { batchSize: 256 }) as tf.Tensor;
    const labels = labelsOf(rows.ys, classes);
    const map = coarseMap(coarseOf);
    const coarsePred = tf.argMax(tf.matMul(probabilitiesOf(model, out), map), 1);
    const coarseTrue = tf.gather(tf.tensor1d([...coarseOf], 'int32'), labels);
    const share = (a: tf.Tensor, b: tf.Tensor) => tf.mean(tf.cast(tf.equal(a, b), 'float32'));
    return tf.stack([share(predictedOf(model, out), labels), share(coarsePred, coarseTrue)]);
  });
  // Both shares in one asynchronous read.
  const [fine, coarse] = await both.data();
  both.dispose();
  return { fine: fine!, coarse: coarse! };
}

/**
 * Quality, Utility and Q-U (Tan & Gong 2025) of `after` against `before` on a forgotten concept.
 * Ratios are capped at 1 so that Q-U stays in [0, 1]; the accuracies are returned uncapped.
 */
export async function qualityUtility(before: tf.LayersModel, after: tf.LayersModel, rows: ConceptRows): Promise<QualityUtility> {
  const classes = before.outputs[0]!.shape.at(-1) ?? 1;
  if (rows.coarseOf.length !== classes) throw new InrunError(`expected one coarse label per class (${classes}), got ${rows.coarseOf.length}`, { field: 'coarseOf' });
  const b = await accuracies(before, rows.concept, rows.coarseOf);
  const a = await accuracies(after, rows.concept, rows.coarseOf);
  const othersBefore = (await accuracies(before, rows.others, rows.coarseOf)).fine;
  const othersAfter = (await accuracies(after, rows.others, rows.coarseOf)).fine;
  const ratio = (x: number, y: number) => (y === 0 ? 1 : Math.min(1, x / y));
  const quality = b.fine === 0 ? 0 : Math.max(0, (b.fine - a.fine) / b.fine);
  const utility = (ratio(a.coarse, b.coarse) + ratio(othersAfter, othersBefore)) / 2;
  return {
    quality,
    utility,
    qu: quality + utility === 0 ? 0 : (2 * quality * utility) / (quality + utility),
    fineAccuracy: { before: b.fine, after: a.fine },
    coarseAccuracy: { before: b.coarse, after: a.coarse },
    othersAccuracy: { before: othersBefore, after: othersAfter },
  };
}
