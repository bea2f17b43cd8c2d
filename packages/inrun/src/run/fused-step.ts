// fusedStep: one pass over a step's training and target rows; the update gets the plain step's gradients.
import * as tf from '@tensorflow/tfjs';
import type { Capture } from '../hooks/capture.js';
import { withCapture } from '../hooks/capture.js';
import { fusedLoss, type FusedPlan, type FusedTaken } from '../hooks/fused.js';
import type { Gradients, RunCompute } from '../hooks/optimizer.js';
import type { GroupPass } from '../scoring/targets.js';

/**
 * Runs the step with the target rows appended to the batch (docs/hooks.md): returns the training rows'
 * loss and gradients for the update, and the target rows' capture and per-target losses as the target
 * pass. `capture` records the training rows; the caller disposes it and the passes.
 */
export function fusedStep(fused: FusedPlan, compute: RunCompute, capture: Capture, n: number): { result: Gradients; passes: GroupPass[] } {
  let taken: (() => FusedTaken) | null = null;
  const both = withCapture(capture, () =>
    compute((f) => {
      const w = fusedLoss(fused, n, capture, f);
      taken = w.taken;
      return w.f;
    }),
  );
  const { loss, perRow, target } = taken!();
  both.value.dispose();
  const result: Gradients = { value: loss, grads: both.grads };
  try {
    const { group } = fused;
    const losses = tf.tidy(() => tf.reshape(tf.matMul(tf.reshape(perRow, [1, group.rows]), group.layout.membership), [-1]) as tf.Tensor1D);
    perRow.dispose();
    return { result, passes: [{ group, pass: { capture: target, losses } }] };
  } catch (error) {
    target.dispose();
    tf.dispose([result.value, ...Object.values(result.grads)]);
    throw error;
  }
}
