// Helpers every layer kind uses: overriding a layer's call, probing activations, reading weights, pieces from calls.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { RecordedCall, Recorder } from '../hooks/capture.js';
import { activeCapture, probe } from '../hooks/capture.js';
import type { Piece, WeightLayout } from '../ghost/types.js';
import type { Restore } from './kind.js';

type Kwargs = Record<string, unknown>;
export type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];

/** The activation object of a tf.layers layer (private in tf.js' typings). */
export interface Activation {
  getClassName(): string;
  apply(x: tf.Tensor, axis?: number): tf.Tensor;
}

/**
 * Activations tf.layers may fuse into one op with the layer's matMul or conv (tf.js'
 * `mapActivationToFusedKernel`). Their pre-activation gradient is derived from the layer output with
 * the same formula tf.js' own gradient uses, so the layer's computation stays untouched.
 */
export const FUSED: Readonly<Record<string, (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor>> = {
  linear: (dy) => dy,
  relu: (dy, y) => tf.mul(dy, tf.step(y)),
  elu: (dy, y) => tf.engine().runKernel('EluGrad', { dy, y }) as tf.Tensor,
};

/** The single tensor of a layer's inputs or outputs. */
export function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1 || inputs[0] === undefined) {
      throw new InrunError(`an instrumented layer expects exactly one input, got ${inputs.length}`, { code: 'unsupported_layer' });
    }
    return inputs[0];
  }
  return inputs;
}

/** Replaces `layer.call` by an instance property (tf.js' `apply` calls `this.call`). */
export function overrideCall(layer: object, wrap: (original: CallFn) => CallFn): Restore {
  const target = layer as { call: CallFn };
  const hadOwn = Object.prototype.hasOwnProperty.call(target, 'call');
  const previous = target.call;
  target.call = wrap(previous.bind(layer));
  return () => {
    if (hadOwn) target.call = previous;
    else delete (target as { call?: CallFn }).call;
  };
}

/** A layer's trainable weights as tf.Variables, in the layer's order. */
export function variablesOf(layer: tf.layers.Layer): tf.Variable[] {
  return layer.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** Parameter count of a layer's trainable weights. */
export function paramCount(layer: tf.layers.Layer): number {
  return layer.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/**
 * Runs `body` with `holder[field]` (an activation) replaced by one whose `apply` sends its input
 * through `wrap` first: how a probe sits on a pre-activation without changing the computation.
 * `seen` receives each activation output (a gate value a layer needs to record, e.g. GRU's reset
 * gate); it lives in the layer's `tidy`, so keep a clone of it.
 */
export function withActivation<T>(
  holder: object,
  field: string,
  wrap: (z: tf.Tensor) => tf.Tensor,
  body: () => T,
  seen?: (y: tf.Tensor) => void,
): T {
  const h = holder as Record<string, Activation>;
  const activation = h[field]!;
  const probing = Object.create(activation) as Activation;
  probing.apply = (z, axis) => {
    const y = activation.apply(wrap(z), axis);
    seen?.(y);
    return y;
  };
  h[field] = probing;
  try {
    return body();
  } finally {
    h[field] = activation;
  }
}

/**
 * Calls `original` and probes the pre-activation output gradient of a layer computing
 * `activation(linear(x))` (Dense, Conv): fused activations are differentiated from the output, others
 * are probed at their input. `onGradient` receives the pre-activation gradient.
 */
function callProbingPreActivation(
  layer: object,
  original: () => tf.Tensor | tf.Tensor[],
  onGradient: (dz: tf.Tensor) => void,
): tf.Tensor {
  const activation = (layer as { activation: Activation }).activation;
  const fused = FUSED[activation.getClassName()];
  if (fused !== undefined) return probe(one(original()), (dy, y) => onGradient(fused(dy, y!)), true);
  return withActivation(layer, 'activation', (z) => probe(z, onGradient), () => one(original()));
}

/** `[n, T, d]` rows of a recorded tensor with `n` examples (all middle axes become positions). */
export function positions(t: tf.Tensor, n: number): tf.Tensor3D {
  return tf.reshape(t, [n, -1, t.shape[t.rank - 1] ?? 1]) as tf.Tensor3D;
}

/** Concatenates per-call `[n, T_c, d]` tensors along positions. */
export function alongPositions(parts: readonly tf.Tensor3D[]): tf.Tensor3D {
  return (parts.length === 1 ? parts[0]! : tf.concat([...parts], 1)) as tf.Tensor3D;
}

/** An outer piece from every call's input `a` and gradient `b` (positions of all calls concatenated). */
export function outerPiece(
  calls: readonly RecordedCall[],
  n: number,
  hasBias: boolean,
  a: (call: RecordedCall) => tf.Tensor = (c) => c.inputs[0]!,
  b: (call: RecordedCall) => tf.Tensor = (c) => c.grads[0]!,
): Piece {
  return { form: 'outer', hasBias, a: alongPositions(calls.map((c) => positions(a(c), n))), b: alongPositions(calls.map((c) => positions(b(c), n))) };
}

/**
 * The layout of one flat piece spanning whole weights of these shapes, in this order: a `[P]` row is
 * the weights flattened and concatenated (for kinds whose per-example gradients are cheap to
 * materialise, such as LayerNormalization's gamma and beta).
 */
export function flatLayout(shapes: readonly (readonly number[])[]): WeightLayout {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const params = sizes.reduce((a, b) => a + b, 0);
  return {
    params,
    pieces: [{ form: 'flat', rows: params, cols: 1 }],
    toWeights: ([piece]) => tf.split(piece![0]!, sizes).map((t, i) => tf.reshape(t, [...shapes[i]!])),
    fromWeights: (weights) => [[tf.concat(weights.map((w) => tf.reshape(w, [-1])))]],
  };
}

/**
 * The hooks of a layer computing `activation(linear(x))` (Dense, Conv): each call records its input
 * and the pre-activation output gradient (slot 0) into the active capture under `key`.
 */
export function recordInputProbePreActivation(layer: tf.layers.Layer, key: string, recorder: Recorder): Restore {
  return overrideCall(layer, (original) => (inputs, kwargs) => {
    const capture = activeCapture();
    if (capture === null) return original(inputs, kwargs);
    const call = capture.forward(key, recorder, [one(inputs)]);
    return callProbingPreActivation(layer, () => original(inputs, kwargs), (dz) => capture.backward(key, call, dz));
  });
}
