// untrac()'s default loss ceiling: from the model's output (a multiple of the uniform-prediction loss) where its loss is a known classification loss.
import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter } from '../model/adapter.js';
import { classificationLabels, lossNames } from '../model/loss-kinds.js';

/** How many uniform-prediction losses above the rows' starting loss the default ceiling lies. */
export const UNIFORM_LOSSES_ABOVE_START = 3;

/** The share of the largest loss tf.js can produce that the default ceiling never exceeds. */
export const LARGEST_LOSS_SHARE = 0.75;

/**
 * The loss ceiling of an ascent whose rows start at `startLoss`, when none is given.
 *
 * For a LayersModel whose every output is compiled with binary, categorical or sparse categorical
 * cross-entropy by name: `startLoss + 3 x U`, at most `0.75 x L`, where U is the loss of a uniform
 * prediction (ln(classes) per categorical output, ln 2 per binary one, summed over outputs, as the
 * per-example loss is) and L the largest loss tf.js can produce (-ln(epsilon) per output: 16.1 with
 * float32, 9.2 with 16-bit webgl). tf.js clips probabilities to [epsilon, 1 - epsilon], so such a loss
 * never exceeds L; a ceiling above it (the old `10 x (1 + startLoss)` once startLoss passed 0.6) could
 * never fire. Three uniform losses above the start, the unlearned rows are predicted far worse than by
 * knowing nothing, and near L the clip zeroes the gradient: the ascent has diverged.
 *
 * Any other loss (regression, a custom function, a hand-written model): `10 x (1 + startLoss)`.
 */
export function defaultLossCeiling(model: ModelAdapter, startLoss: number): number {
  const bounded = classificationBounds(model);
  if (bounded === null) return 10 * (1 + startLoss);
  return Math.min(startLoss + UNIFORM_LOSSES_ABOVE_START * bounded.uniform, LARGEST_LOSS_SHARE * bounded.largest);
}

/** The uniform-prediction and the largest per-example loss of a model with classification losses only, or null. */
function classificationBounds(model: ModelAdapter): { uniform: number; largest: number } | null {
  const lm = model.layersModel;
  if (lm === null) return null;
  // Classification losses only: their per-row value is bounded by the probabilities' clip.
  const names = lossNames(lm);
  if (names.length !== lm.outputs.length) return null;
  const largestPerOutput = -Math.log(tf.backend().epsilon());
  let uniform = 0;
  for (const [i, name] of names.entries()) {
    const kind = classificationLabels(name);
    const classes = lm.outputs[i]!.shape.at(-1);
    if (kind === null) return null;
    if (kind === 'binary') uniform += Math.log(2);
    else if (typeof classes === 'number' && classes >= 2) uniform += Math.log(classes);
    else return null;
  }
  return { uniform, largest: names.length * largestPerOutput };
}
