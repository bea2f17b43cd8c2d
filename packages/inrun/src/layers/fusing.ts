// Helpers of the kinds' fused calls (docs/hooks.md): one op over training and target rows whose weight gradients use the training rows only.
import * as tf from '@tensorflow/tfjs';
import type { FusedRows } from './kind.js';
import { FUSED, type Activation } from './seams.js';

/** Rows `[0, batch)` and `[batch, end)` of `t` (axis 0): a fused call's training rows and target rows. */
export function splitRows(t: tf.Tensor, batch: number): [tf.Tensor, tf.Tensor] {
  return [tf.slice(t, 0, batch), tf.slice(t, batch, t.shape[0]! - batch)];
}

/** What a fused op's backward returns: the input gradient (null when `rows.inputGrad` is false) and one gradient per weight. */
export interface FusedGrads {
  readonly dx: tf.Tensor | null;
  readonly dws: readonly tf.Tensor[];
}

/**
 * `forward(x, weights)` as one custom-gradient op over every row; `backward(dy, x, weights, y)`
 * returns the gradients. tf.js frees forward intermediates before the backward pass unless saved, and
 * each saved tensor costs a copy kernel, so only `x` (and `y` where `keepOutput`, for a fused
 * activation's derivative) is saved; the weights are variables, which outlive the step. The model's
 * first layer (`rows.inputGrad` false) takes `x` as data, not as an op input, so no input gradient is
 * computed for it, as in a plain step.
 */
export function fusedOp(
  x: tf.Tensor,
  weights: readonly tf.Tensor[],
  rows: FusedRows,
  keepOutput: boolean,
  forward: (x: tf.Tensor, weights: readonly tf.Tensor[]) => tf.Tensor,
  backward: (dy: tf.Tensor, x: tf.Tensor, weights: readonly tf.Tensor[], y: tf.Tensor | undefined) => FusedGrads,
): tf.Tensor {
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const a = rows.inputGrad ? (args[0] as tf.Tensor) : x;
    const y = forward(a, weights);
    save(keepOutput ? [a, y] : [a]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const { dx, dws } = backward(dy, saved[0]!, weights, saved[1]);
        return rows.inputGrad ? [dx!, ...dws] : [...dws];
      },
    };
  });
  return (op as (...t: tf.Tensor[]) => tf.Tensor)(...(rows.inputGrad ? [x, ...weights] : weights));
}

/**
 * The gradient tf.js registers for `kernel` (e.g. 'Conv2D', 'GatherV2') with respect to its input
 * named `input`, given the kernel's saved inputs: the plain step's own gradient code, on the rows given.
 */
export function kernelGradient(kernel: string, input: string, dy: tf.Tensor, saved: readonly tf.Tensor[], attrs: Record<string, unknown>): tf.Tensor {
  const config = tf.getGradient(kernel);
  if (config === undefined) throw new Error(`tf.js registers no gradient for ${kernel}`);
  const grads = config.gradFunc(dy, [...saved], attrs as tf.NamedAttrMap) as Record<string, () => tf.Tensor>;
  return grads[input]!();
}

/** What a kernel-and-bias layer (Dense, Conv) hands {@link fusedAffine}: its weights and its activation. */
export interface AffineParts {
  readonly kernel: { read(): tf.Tensor };
  readonly bias: { read(): tf.Tensor } | null;
  readonly activation: Activation;
  /** Whether tf.layers fuses this layer's activation into its op (then its derivative comes from the output). */
  readonly fusesActivation: boolean;
}

/** The training and target rows of a fused affine call's backward: its input and pre-activation gradient. */
export interface AffineRows {
  /** The pre-activation gradient of every row. */
  readonly dz: tf.Tensor;
  readonly a: tf.Tensor;
  readonly aTrain: tf.Tensor;
  readonly dzTrain: tf.Tensor;
}

/**
 * A Dense or Conv layer's fused call: `forward(a, kernel, bias, activation)` over every row (with the
 * activation tf.layers fuses into the op, else 'linear' and the activation applied after, as the layer
 * does), and in the backward the pre-activation gradient, the training and target slices of input and
 * gradient recorded, then `grads` for the input and weight gradients.
 */
export function fusedAffine(
  x: tf.Tensor,
  rows: FusedRows,
  parts: AffineParts,
  forward: (a: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined, activation: string) => tf.Tensor,
  grads: (r: AffineRows, kernel: tf.Tensor, bias: tf.Tensor | undefined) => FusedGrads,
): tf.Tensor {
  const { kernel, bias, activation } = parts;
  const name = activation.getClassName();
  const derive = parts.fusesActivation ? FUSED[name] : undefined;
  const weights = bias === null ? [kernel.read()] : [kernel.read(), bias.read()];
  const out = fusedOp(
    x,
    weights,
    rows,
    derive !== undefined,
    (a, [w, b]) => forward(a, w!, b, derive === undefined ? 'linear' : name),
    (dy, a, [w, b], y) => {
      const dz = derive === undefined ? dy : derive(dy, y!);
      const [aTrain, aTarget] = splitRows(a, rows.batch);
      const [dzTrain, dzTarget] = splitRows(dz, rows.batch);
      rows.record([[aTrain, aTarget]], [[dzTrain, dzTarget]]);
      return grads({ dz, a, aTrain, dzTrain }, w!, b);
    },
  );
  return derive === undefined && name !== 'linear' ? activation.apply(out) : out;
}
