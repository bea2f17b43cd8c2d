// fusedStep: one pass over a step's training and target rows; the update gets the plain step's gradients.
import * as tf from '@tensorflow/tfjs';
import type { Capture } from '../hooks/capture.js';
import { withCapture } from '../hooks/capture.js';
import { fusedLoss, type FusedPlan } from '../hooks/fused.js';
import type { Gradients, RunCompute } from '../hooks/optimizer.js';
import type { GroupPass } from '../scoring/targets.js';

/**
 * Runs the step with the target rows appended to the batch (docs/hooks.md): returns the training rows'
 * loss and gradients for the update, and the target rows' capture and per-target losses as the target
 * pass. `capture` records both; the caller disposes it and the passes.
 */
export function fusedStep(fused: FusedPlan, compute: RunCompute, capture: Capture, n: number): { result: Gradients; passes: GroupPass[] } {
  let taken: (() => { loss: tf.Scalar; perRow: tf.Tensor1D }) | null = null;
  const both = withCapture(capture, () =>
    compute((f) => {
      const w = fusedLoss(fused, n, f);
      taken = w.taken;
      return w.f;
    }),
  );
  const { loss, perRow } = taken!();
  both.value.dispose();
  const result: Gradients = { value: loss, grads: both.grads };
  try {
    const targetCapture = capture.split(n);
    const { group } = fused;
    const losses = tf.tidy(() => tf.reshape(tf.matMul(tf.reshape(perRow, [1, group.rows]), group.layout.membership), [-1]) as tf.Tensor1D);
    perRow.dispose();
    return { result, passes: [{ group, pass: { capture: targetCapture, losses } }] };
  } catch (error) {
    tf.dispose([result.value, ...Object.values(result.grads)]);
    throw error;
  }
}
