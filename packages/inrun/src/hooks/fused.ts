// The fused target pass: target rows ride in the training step's own forward and backward, through layer kinds that can take them.
import * as tf from '@tensorflow/tfjs';
import type { ModelAdapter } from '../model/adapter.js';
import type { TargetGroup } from '../scoring/targets.js';
import { InrunError } from '../errors.js';
import { Capture, type Recorder } from './capture.js';
import type { Restore } from './restore.js';
import type { FusedRows, LayerFuse } from '../layers/kind.js';
import { kindOf } from '../layers/registry.js';
import { one, overrideCall, type CallFn } from '../layers/seams.js';

/**
 * Weight-free layers that compute each row from that row alone, and compute it the same way in
 * training as in inference, so they pass the concatenated rows through unchanged (docs/hooks.md).
 * Dropout and the noise layers draw their masks over all B + K rows, which changes the training
 * rows' draws against a plain step: they force the separate pass (unless their rate is 0).
 */
const PER_EXAMPLE = new Set([
  'Flatten',
  'Reshape',
  'Permute',
  'RepeatVector',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'ThresholdedReLU',
  'Softmax',
  'MaxPooling1D',
  'MaxPooling2D',
  'AveragePooling1D',
  'AveragePooling2D',
  'GlobalAveragePooling1D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling1D',
  'GlobalMaxPooling2D',
  'ZeroPadding2D',
  'Cropping2D',
  'UpSampling2D',
]);

/** Layers that are weight-free but random in training: per-example only when they draw nothing. */
const RANDOM_IN_TRAINING = new Set(['Dropout', 'SpatialDropout1D', 'AlphaDropout', 'GaussianDropout', 'GaussianNoise']);

/** One layer of the fused chain: the kind's fused call for layers with weights, null for weight-free ones. */
interface ChainLayer {
  readonly layer: tf.layers.Layer;
  readonly fuse: LayerFuse | null;
  readonly recorder: Recorder | null;
}

/** Which layers open and close the fused pass: the target rows are appended at the first layer's input and cut off the last one's output. */
export interface FusedPlan {
  readonly group: TargetGroup;
  readonly model: ModelAdapter;
  /** Installs the fused calls on the chain's layers (over the kinds' probing hooks); returns their removal. */
  instrument(): Restore;
}

/** One step's fused pass in progress: the batch's row count, the target rows' capture and model output. */
interface FusedStep {
  readonly group: TargetGroup;
  readonly batch: number;
  readonly train: Capture;
  readonly target: Capture;
  /** Whether the chain's first layer has run in this step (a second run would append the target rows twice). */
  started: boolean;
  outputs: tf.Tensor | null;
}

let active: FusedStep | null = null;

/** What a fused step leaves: the training loss, the per-row target losses (both kept) and the target rows' capture. */
export interface FusedTaken {
  readonly loss: tf.Scalar;
  readonly perRow: tf.Tensor1D;
  readonly target: Capture;
}

/**
 * Wraps the step's loss function: the target rows' summed loss joins the training loss only in the
 * backward (the gradient of a sum passes 1 to each term, so the training rows' gradients are the
 * plain step's), and the returned value stays the training loss. `train` receives the training rows'
 * records; the target rows' go to a capture of their own, returned by `taken` with the losses.
 */
export function fusedLoss(plan: FusedPlan, batch: number, train: Capture, f: () => tf.Scalar): { f: () => tf.Scalar; taken: () => FusedTaken } {
  let loss: tf.Scalar | null = null;
  let perRow: tf.Tensor1D | null = null;
  const target = new Capture();
  const wrapped = (): tf.Scalar => {
    const step: FusedStep = { group: plan.group, batch, train, target, started: false, outputs: null };
    active = step;
    try {
      const value = f();
      loss = tf.keep(value);
      if (step.outputs === null) {
        throw new InrunError("the step's loss did not run the attached model through to its output, so the fused pass has no target rows; use targetPass: 'separate'", { field: 'targetPass', code: 'unsupported_model' });
      }
      const rows = plan.model.perExampleLoss(plan.group.ys, [step.outputs]);
      perRow = tf.keep(rows as tf.Tensor1D);
      return tf.add(value, tf.sum(rows));
    } finally {
      active = null;
      step.outputs?.dispose();
    }
  };
  return { f: wrapped, taken: () => ({ loss: loss!, perRow: perRow!, target }) };
}

/** A chain layer's call in a fused step: the first appends the target rows, the last cuts them off into the step. */
function chainCall(link: ChainLayer, first: boolean, last: boolean, step: FusedStep, original: CallFn, x0: tf.Tensor, kwargs: Record<string, unknown>): tf.Tensor {
  const { layer, fuse, recorder } = link;
  let x = x0;
  if (first) {
    if (step.started) {
      throw new InrunError("the model ran twice in one step's loss: the fused pass appends the target rows once per step; use targetPass: 'separate'", { field: 'targetPass', code: 'unsupported_model' });
    }
    step.started = true;
    const t = step.group.xs[0]!;
    x = tf.concat([x, t.dtype === x.dtype ? t : tf.cast(t, x.dtype)], 0);
  }
  const rows: FusedRows = {
    batch: step.batch,
    inputGrad: !first,
    record: (inputs, grads) => {
      step.train.record(layer.name, recorder!, inputs.map((p) => p[0]), grads.map((p) => p[0]));
      step.target.record(layer.name, recorder!, inputs.map((p) => p[1]), grads.map((p) => p[1]));
    },
  };
  const out = fuse === null ? one(original(x, kwargs)) : fuse.call(layer, x, rows);
  if (!last) return out;
  // Kept: a model called eagerly (model.apply in a custom loop) runs its layers inside a tidy of its own.
  step.outputs = tf.keep(tf.slice(out, step.batch, out.shape[0]! - step.batch));
  return tf.slice(out, 0, step.batch);
}

/** Installs the fused calls on a chain of layers; outside a fused step every call goes to the layer's own (probing) call. */
function instrumentChain(chain: readonly ChainLayer[]): Restore {
  const restores = chain.map((link, i) =>
    overrideCall(link.layer, (original) => (inputs, kwargs) => {
      const step = active;
      if (step === null) return original(inputs, kwargs);
      return chainCall(link, i === 0, i === chain.length - 1, step, original, one(inputs), kwargs);
    }),
  );
  return () => {
    for (const restore of restores.reverse()) restore();
  };
}

/** Why one layer keeps the model on the separate pass, or null when it can ride in the fused one. */
function unfusable(layer: tf.layers.Layer, recorders: ReadonlyMap<string, Recorder>): string | null {
  const className = layer.getClassName();
  if (layer.inboundNodes.length !== 1) return `${layer.name} is called more than once`;
  if (layer.weights.length === 0) {
    if (PER_EXAMPLE.has(className)) return null;
    const rate = (layer as unknown as { rate?: number }).rate;
    if (RANDOM_IN_TRAINING.has(className) && rate === 0) return null;
    return RANDOM_IN_TRAINING.has(className) ? `${className} draws its noise over training and target rows together` : `${className} is not known to be per-example`;
  }
  const fuse = kindOf(layer)?.fuse;
  if (fuse === undefined) return `${className} has no fused call`;
  if (!recorders.has(layer.name)) return `${layer.name} has weights but is not covered`;
  return fuse.unfusable(layer);
}

/** What decides the pass: the resolved `targetPass` and the run settings the fused pass must agree with. */
export interface FusedSettings {
  readonly targetPass: 'auto' | 'fused' | 'separate';
  readonly targetEvery: number;
  readonly methods: readonly string[];
  readonly update: string;
}

/**
 * Why this run cannot take the fused pass exactly, or null when it can: the model must be a
 * tf.LayersModel of one input and one output whose layers form one chain, each either a covered layer
 * whose kind has a fused call that accepts it or a weight-free per-example layer (no Dropout,
 * BatchNormalization or other layers that treat training rows differently or couple them), with one
 * group of targets, a target pass every step, and first-order, target-free or TracIn-self methods only.
 */
function whyNotFused(model: ModelAdapter, group: TargetGroup | null, groups: number, recorders: ReadonlyMap<string, Recorder>, options: FusedSettings): string | null {
  const lm = model.layersModel;
  if (group === null) return `${groups} target groups (targets of different shapes): the fused pass appends one`;
  if (group.xs.length !== 1) return 'targets with several inputs';
  if (options.targetEvery !== 1) return `targetEvery ${options.targetEvery}: the fused pass runs the targets every step`;
  if (options.update !== 'sgd') return `update '${options.update}'`;
  const other = options.methods.find((m) => m !== 'shapley1' && m !== 'tracin_self');
  if (other !== undefined) return `method ${other}: first order (shapley1, tracin_self) only`;
  if (lm === null) return 'a hand-written model: its layers are not known before it runs';
  if (lm.inputs.length !== 1 || lm.outputs.length !== 1) return 'a model of several inputs or outputs';
  const layers = lm.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const last = layers[layers.length - 1];
  if (last === undefined) return 'a model without layers';
  for (const layer of layers) {
    const why = unfusable(layer, recorders);
    if (why !== null) return why;
  }
  // A chain: each layer reads the one before it, the first reads the model input, the last gives its output.
  const chained = layers.every((l, i) => (l.input as tf.SymbolicTensor) === (i === 0 ? lm.inputs[0] : layers[i - 1]!.output));
  if (!chained && lm.getClassName() !== 'Sequential') return 'the layers do not form one chain';
  if (lm.getClassName() !== 'Sequential' && (last.output as tf.SymbolicTensor) !== lm.outputs[0]) return 'the last layer does not give the model output';
  return null;
}

/**
 * The fused pass's plan, or null for the separate pass. `targetPass: 'auto'` (the default) fuses
 * where it is exact ({@link whyNotFused}) and runs the separate pass elsewhere; 'separate' never fuses;
 * 'fused' where it cannot be exact is refused (an InrunError naming `targetPass` and the reason).
 */
export function planFused(
  model: ModelAdapter,
  targets: { readonly groups: readonly TargetGroup[] } | null,
  recorders: ReadonlyMap<string, Recorder>,
  options: FusedSettings,
): FusedPlan | null {
  if (options.targetPass === 'separate' || targets === null) return null;
  const group = targets.groups.length === 1 ? targets.groups[0]! : null;
  const why = whyNotFused(model, group, targets.groups.length, recorders, options);
  if (why !== null) {
    if (options.targetPass === 'auto') return null;
    throw new InrunError(`'fused' would not be exact for this run (${why}); use 'auto' or 'separate' (docs/hooks.md)`, { field: 'targetPass', code: 'unsupported_model' });
  }
  const lm = model.layersModel!;
  const layers = lm.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const chain = layers.map((layer) => ({ layer, fuse: layer.weights.length === 0 ? null : (kindOf(layer)?.fuse ?? null), recorder: recorders.get(layer.name) ?? null }));
  return { group: group!, model, instrument: () => instrumentChain(chain) };
}
