// LayerNormalization layers: recorded inputs and output gradients become materialised gamma/beta gradients, one flat piece.
import * as tf from '@tensorflow/tfjs';
import type { RecordedCall, Recorder } from '../hooks/capture.js';
import { activeCapture, probe } from '../hooks/capture.js';
import type { WeightLayout } from '../ghost/types.js';
import type { LayerKind } from './kind.js';
import { flatLayout, one, overrideCall, variablesOf } from './seams.js';

/** What tf.js' LayerNormalization keeps (private in its typings). After `build`, `axis` is a list of non-negative axes. */
interface LayerNormInternals {
  axis: number | number[];
  epsilon: number;
  gamma: tf.layers.Layer['trainableWeights'][number] | null;
  beta: tf.layers.Layer['trainableWeights'][number] | null;
}

/** Which of the layer's parameters a trainable weight is. */
type Part = 'gamma' | 'beta';

/** The layer's normalised axes as tf.js keeps them: non-negative once built (only built layers have weights to cover). */
function axesOf(layer: tf.layers.Layer): number[] {
  const { axis } = layer as unknown as LayerNormInternals;
  return typeof axis === 'number' ? [axis] : [...axis];
}

/** The layer's trainable weights as gamma/beta, in the layer's weight order (gamma first as tf.js adds it, but read, not assumed). */
function partsOf(layer: tf.layers.Layer): Part[] | null {
  const { gamma, beta } = layer as unknown as LayerNormInternals;
  const parts = layer.trainableWeights.map((w) => (w === gamma ? 'gamma' : w === beta ? 'beta' : null));
  return parts.every((p): p is Part => p !== null) ? parts : null;
}

/**
 * Example rows of one call's gradients, `[n, P]`: per weight in `parts` order, gamma's `sum dy * xhat`
 * and beta's `sum dy` over the axes that are neither the batch axis nor normalised. The remaining
 * normalised axes stay in increasing order, which is the order of gamma's own elements: tf.js
 * reshapes (never transposes) gamma onto them, so a flattened row is laid out as the weight is.
 */
function callRows(call: RecordedCall, n: number, normalised: readonly number[], epsilon: number, parts: readonly Part[]): tf.Tensor2D {
  const x = call.inputs[0]!;
  const dy = call.grads[0]!;
  const axes = normalised.map((a) => (a < 0 ? a + x.rank : a));
  const others = Array.from({ length: x.rank - 1 }, (_, i) => i + 1).filter((a) => !axes.includes(a));
  const perExample = (t: tf.Tensor) => tf.reshape(others.length > 0 ? tf.sum(t, others) : t, [n, -1]);
  // Recomputed as tf.js' call computes it: moments over the normalised axes of each example's own row.
  const { mean, variance } = tf.moments(x, axes, true);
  const xhat = parts.includes('gamma') ? tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))) : null;
  return tf.concat(parts.map((p) => perExample(p === 'gamma' ? tf.mul(dy, xhat!) : dy)), 1) as tf.Tensor2D;
}

/** The recorder of a LayerNormalization layer whose weights are `parts` (checked by {@link layerNorm}'s `unsupported`). */
function layerNormRecorder(layer: tf.layers.Layer, parts: readonly Part[]): Recorder {
  const weights = variablesOf(layer);
  const { epsilon } = layer as unknown as LayerNormInternals;
  const axes = axesOf(layer);
  const layout: WeightLayout = flatLayout(weights.map((w) => w.shape));
  return {
    kind: layerNorm.name,
    embedding: false,
    weights,
    layout,
    pieces: (calls, n) => {
      // Several calls of the layer in one pass: an example's gradient is the sum of its calls' gradients.
      const rows = calls.map((c) => callRows(c, n, axes, epsilon, parts));
      return [{ form: 'flat', g: rows.length === 1 ? rows[0]! : (tf.addN(rows) as tf.Tensor2D) }];
    },
  };
}

/**
 * tf.layers LayerNormalization (any axes but the batch axis; gamma, beta or both). Records the layer's
 * input and probes its output gradient; its per-example gradients are small, so they are materialised
 * as one flat piece (docs/layers.md).
 */
export const layerNorm: LayerKind = {
  name: 'layer-norm',
  classNames: ['LayerNormalization'],
  unsupported(layer) {
    if (partsOf(layer) === null) return 'its trainable weights are not its gamma and beta';
    if (axesOf(layer).includes(0)) {
      return 'it normalises over the batch axis, so the statistics couple the examples of a batch';
    }
    return null;
  },
  recorder(layer) {
    return layerNormRecorder(layer, partsOf(layer)!);
  },
  instrument(layer, key, recorder) {
    return overrideCall(layer, (original) => (inputs, kwargs) => {
      const capture = activeCapture();
      if (capture === null) return original(inputs, kwargs);
      const call = capture.forward(key, recorder, [one(inputs)]);
      return probe(one(original(inputs, kwargs)), (dy) => capture.backward(key, call, dy));
    });
  },
};
