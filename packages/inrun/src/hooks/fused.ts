// The fused target pass: target rows ride in the training step's own forward and backward (Dense-only models).
import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter } from '../model/adapter.js';
import type { TargetGroup } from '../scoring/targets.js';
import { activeCapture, type Recorder } from './capture.js';
import { one, overrideCall, type Activation } from '../layers/seams.js';
import type { Restore } from '../layers/kind.js';

/** Which layers open and close the fused pass: the target rows are appended at `first`'s input and cut off `last`'s output. */
export interface FusedPlan {
  readonly first: string;
  readonly last: string;
  readonly group: TargetGroup;
  readonly model: ModelAdapter;
}

/** One step's fused pass in progress: the batch's row count and the target rows' model output. */
interface FusedStep {
  readonly plan: FusedPlan;
  readonly batch: number;
  outputs: tf.Tensor | null;
}

let active: FusedStep | null = null;

/**
 * Wraps the step's loss function: the target rows' summed loss joins the training loss only in the
 * backward (the gradient of a sum passes 1 to each term, so the training rows' gradients are the
 * plain step's), and the returned value stays the training loss. Returns the wrapped function and a
 * reader of what the pass left: the training loss and the per-row target losses (both kept).
 */
export function fusedLoss(plan: FusedPlan, batch: number, f: () => tf.Scalar): { f: () => tf.Scalar; taken: () => { loss: tf.Scalar; perRow: tf.Tensor1D } } {
  let loss: tf.Scalar | null = null;
  let perRow: tf.Tensor1D | null = null;
  const wrapped = (): tf.Scalar => {
    const step: FusedStep = { plan, batch, outputs: null };
    active = step;
    try {
      const value = f();
      loss = tf.keep(value);
      if (step.outputs === null) throw new Error('the fused pass did not reach the model output');
      const rows = plan.model.perExampleLoss(plan.group.ys, [step.outputs]);
      perRow = tf.keep(rows as tf.Tensor1D);
      return tf.add(value, tf.sum(rows));
    } finally {
      active = null;
    }
  };
  return { f: wrapped, taken: () => ({ loss: loss!, perRow: perRow! }) };
}

interface DenseInternals {
  kernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null;
  activation: Activation;
}

/**
 * The Dense call of a fused step: one fused matMul over training and target rows (the op and
 * activation tf.layers Dense uses), whose gradient gives the input gradient for all rows and the
 * weight gradients from the training rows only, with the ops and shapes of the plain step's gradient.
 * It records the input and the pre-activation gradient of all rows; the capture splits them later.
 */
function fusedDenseCall(layer: tf.layers.Layer, key: string, recorder: Recorder, step: FusedStep, inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  const capture = activeCapture()!;
  const { kernel, bias, activation } = layer as unknown as DenseInternals;
  let x = one(inputs);
  if (layer.name === step.plan.first) x = tf.concat([x, step.plan.group.xs[0]!], 0);
  const name = activation.getClassName();
  const fusedAct = name === 'relu' ? 'relu' : 'linear';
  const call = capture.forward(key, recorder, [x]);
  const b = step.batch;
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [a, w, bb] = args.slice(0, -1) as tf.Tensor[];
    const y = tf.fused.matMul({ a: a as tf.Tensor2D, b: w as tf.Tensor2D, ...(bb === undefined ? {} : { bias: bb }), activation: fusedAct });
    save([a!, w!, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sw, sy] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const dz = (fusedAct === 'relu' ? tf.mul(dy, tf.step(sy)) : dy) as tf.Tensor2D;
        capture.backward(key, call, dz);
        const dzTrain = tf.slice(dz, 0, b);
        const grads = [tf.matMul(dz, sw, false, true), tf.matMul(tf.slice(sa, 0, b), dzTrain, true, false)];
        return bb === undefined ? grads : [...grads, tf.sum(dzTrain, 0)];
      },
    };
  });
  const weights = bias === null ? [x, kernel.read()] : [x, kernel.read(), bias.read()];
  let out = (op as (...t: tf.Tensor[]) => tf.Tensor)(...weights);
  if (fusedAct === 'linear' && name !== 'linear') out = activation.apply(out);
  if (layer.name !== step.plan.last) return out;
  step.outputs = tf.slice(out, b, out.shape[0]! - b);
  return tf.slice(out, 0, b);
}

/** Dense's hook for fused steps, over its probing hook (which serves every other pass). */
export function fusedDenseHook(layer: tf.layers.Layer, key: string, recorder: Recorder): Restore {
  return overrideCall(layer, (inner) => (inputs, kwargs) => {
    const step = active;
    if (step === null || activeCapture() === null) return inner(inputs, kwargs);
    return fusedDenseCall(layer, key, recorder, step, inputs);
  });
}

/** Activations whose Dense forward the fused call reproduces op for op (tf.layers fuses relu and linear; elu is left to the separate pass). */
export function fusableActivation(layer: tf.layers.Layer): boolean {
  const name = (layer as unknown as DenseInternals).activation.getClassName();
  return name !== 'elu';
}

/**
 * The fused pass's plan, or null where it would not be exact or is not built: the model must be a
 * tf.LayersModel of one input and one output whose layers are all covered Dense layers on rank-2
 * rows (no Dropout, BatchNormalization or other kinds, which treat training rows differently or couple
 * them), with one group of targets, a target pass every step, and first-order, target-free or
 * TracIn-self methods only.
 */
export function planFused(
  model: ModelAdapter,
  targets: { readonly groups: readonly TargetGroup[] } | null,
  covered: readonly { readonly name: string; readonly kind: string }[],
  options: { readonly targetPass: 'fused' | 'separate'; readonly targetEvery: number; readonly methods: readonly string[]; readonly update: string },
): FusedPlan | null {
  const lm = model.layersModel;
  const group = targets?.groups.length === 1 ? targets.groups[0]! : null;
  if (options.targetPass !== 'fused' || lm === null || group === null || group.xs.length !== 1) return null;
  if (options.targetEvery !== 1 || options.update !== 'sgd' || !options.methods.every((m) => m === 'shapley1' || m === 'tracin_self')) return null;
  if (lm.inputs.length !== 1 || lm.outputs.length !== 1) return null;
  const layers = lm.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const ok = layers.every(
    (l) =>
      l.getClassName() === 'Dense' &&
      covered.some((c) => c.name === l.name && c.kind === 'dense') &&
      fusableActivation(l) &&
      (l.input as tf.SymbolicTensor).shape.length === 2 &&
      l.inboundNodes.length === 1,
  );
  const first = layers[0];
  const last = layers[layers.length - 1];
  if (!ok || first === undefined || last === undefined) return null;
  // A chain: the first layer reads the model input and the last one gives its output.
  if ((first.input as tf.SymbolicTensor) !== lm.inputs[0] && lm.getClassName() !== 'Sequential') return null;
  if (lm.getClassName() !== 'Sequential' && (last.output as tf.SymbolicTensor) !== lm.outputs[0]) return null;
  return { first: first.name, last: last.name, group, model };
}
