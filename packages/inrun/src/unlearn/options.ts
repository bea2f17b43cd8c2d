// UnlearnOptions (the request and how to carry it out) and resolveUnlearnOptions, which checks them and applies every default once.
import type * as tf from '@tensorflow/tfjs';
import { InrunError, invalid } from '../errors.js';
import { lossFunctionOf } from './outputs.js';

/** Rows with labels, one tensor each (first axis = row); `ys` as the model's loss takes them. */
export interface UnlearnRows {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
}

/**
 * A removal request: what to forget and what to keep. The same object is also an attribution
 * target (`attach(model, { targets: { forget: request.forget } })`), so a user can first trace
 * which training data taught it, then remove it.
 */
export interface UnlearnRequest {
  /** The rows to forget (data-level), or a few exemplars standing for a concept (knowledge-level). */
  readonly forget: UnlearnRows;
  /** Rows to keep. Needed by `rfa-lora` and `fine-tune`; optional for `hinge-kl` and `gradient-ascent`. */
  readonly retain?: UnlearnRows;
  /** The fine label (concept) to forget: needed by `hinge-kl`. */
  readonly forgetLabel?: number;
  /** Fine label -> coarse label (the parent concept `hinge-kl` keeps); one entry per output class. */
  readonly coarseOf?: readonly number[];
}

/** How to unlearn; see docs/unlearning.md for each method's loss. */
export type UnlearnMethod = 'rfa-lora' | 'hinge-kl' | 'gradient-ascent' | 'fine-tune';

/** Options of {@link unlearn}: the request, the method and its settings. */
export interface UnlearnOptions extends UnlearnRequest {
  /** @defaultValue 'rfa-lora' */
  readonly method?: UnlearnMethod;
  /**
   * LoRA rank (rfa-lora, or hinge-kl with `adapters`). With `layers: 'all'`, a layer narrower than
   * this gets an adapter of its own width; a layer named in `layers` must be at least this wide.
   * @defaultValue 8
   */
  readonly rank?: number;
  /** LoRA scale numerator: the residual is `(alpha / rank) x A B`. @defaultValue 16 */
  readonly alpha?: number;
  /** Which layers get adapters: every top-level Dense, Conv2D and Embedding layer, or these names. @defaultValue 'all' */
  readonly layers?: 'all' | readonly string[];
  /**
   * Passes over the forget rows (0: only wrap the model in adapters, or copy it); with `calibrate`,
   * the most passes (training stops earlier once calibrated); likewise for hinge-kl with `stopWhenForgotten`.
   * @defaultValue 10 with `calibrate`, 30 for hinge-kl with `stopWhenForgotten`, else 5
   */
  readonly epochs?: number;
  /**
   * Adam's learning rate.
   * @defaultValue 1e-2 for calibrated rfa-lora (the checks stop it), 3e-3 for hinge-kl with `stopWhenForgotten`, else 1e-3
   */
  readonly learningRate?: number;
  /** Forget rows per step (each step also takes as many retain rows). @defaultValue 16 for hinge-kl (a few exemplars: more steps per epoch), else 32 */
  readonly batchSize?: number;
  /** Fold the adapters into the weights (false: keep LoRA layers, which save and load with `model.save`). @defaultValue true */
  readonly merge?: boolean;
  /** Seed of the adapters' initialisation and the batch order. @defaultValue 1 */
  readonly seed?: number;
  /**
   * rfa-lora's forget term. `'bounded'`: raise each forget row's loss up to `forgetLoss` and no
   * further (lands near retraining). `'wrong-label'`: cross-entropy toward the current best wrong
   * label (forgets harder: forget accuracy near 0, below what retraining gives).
   * @defaultValue 'bounded'
   */
  readonly forgetTerm?: 'bounded' | 'wrong-label';
  /**
   * The loss each forget row is raised to by the bounded term: the loss a model that never saw the
   * rows would have on them. Without it: with `heldOut` rows, each forget row gets the held-out loss
   * of the same rank (by the original model's loss), so that the forget losses end up distributed
   * like unseen rows' (right for a random slice); without them, the loss of a uniform guess,
   * `ln(classes)` (`ln 2` for one sigmoid output). For a whole class, a small probability such as
   * `Math.log(100)` matches a model retrained without it. See docs/unlearning.md.
   * @defaultValue per-row held-out losses with `heldOut`, else `ln(classes)`
   */
  readonly forgetLoss?: number;
  /**
   * Rows the model never trained on, like the forget rows (a validation split): the calibration's
   * target (their loss is how the model treats unseen rows) and its stop test. Without them the
   * calibration uses every 5th retain row (at most 512), which the model trained on: enough for a
   * whole class, too weak for a random slice (docs/unlearning.md#calibration).
   */
  readonly heldOut?: UnlearnRows;
  /**
   * Calibrated forget strength (rfa-lora, gradient-ascent, fine-tune): targets from the held-out
   * rows' losses, a check after every epoch (membership AUC of forget vs held-out validation rows,
   * retain and held-out accuracy), a stop once the AUC is within `membershipTolerance` of 0.5, the
   * weights of the best check kept, and (rfa-lora) the retain term's weight cut tenfold after an
   * epoch that barely moved the test. false: run all `epochs` at the fixed settings.
   * @defaultValue true for rfa-lora, gradient-ascent and fine-tune; hinge-kl has its own stop (`stopWhenForgotten`)
   */
  readonly calibrate?: boolean;
  /**
   * Calibration: the band's half-width for the membership AUC: calibrated once it is within this of 0.5
   * (and forget accuracy within `forgetAccuracyTolerance` of the unseen rows'); below 0.5 - this is an overshoot.
   * @defaultValue 0.05
   */
  readonly membershipTolerance?: number;
  /**
   * Calibration: the band's half-width for forget accuracy against the held-out rows' (for a whole
   * class: against how often held-out rows of other classes are given the class).
   * @defaultValue 0.02
   */
  readonly forgetAccuracyTolerance?: number;
  /** Calibration: the guard: retain and held-out accuracy may fall at most this below the input model's. @defaultValue 0.02 */
  readonly accuracyTolerance?: number;
  /** Weight of the forget term (rfa-lora). @defaultValue 1 */
  readonly forgetWeight?: number;
  /** Weight of the retained rows' residual term, mean squared residual per row (rfa-lora). @defaultValue 1 */
  readonly retainWeight?: number;
  /** hinge-kl: how far the forgotten label's logit must fall below the best other label's. @defaultValue 2 */
  readonly margin?: number;
  /** hinge-kl: weight of the KL term keeping the coarse (parent concept) distribution. @defaultValue 20 */
  readonly coarseWeight?: number;
  /** hinge-kl: weight of the KL term keeping the other fine labels' distribution. @defaultValue 20 */
  readonly fineWeight?: number;
  /** hinge-kl: train LoRA adapters (`rank`, `alpha`, `layers`) instead of every parameter. @defaultValue false */
  readonly adapters?: boolean;
  /**
   * hinge-kl: stop after the first epoch at whose end `forgetLabel` is the top-1 prediction on at
   * most 10% of the concept's held-out exemplars (`heldOut` rows; the `forget` exemplars without them),
   * instead of always running `epochs` (then the most epochs). @defaultValue true
   */
  readonly stopWhenForgotten?: boolean;
}

/** Every option with its default applied; produced once by {@link resolveUnlearnOptions}. */
export interface ResolvedUnlearnOptions {
  readonly forget: UnlearnRows;
  readonly retain: UnlearnRows | null;
  readonly forgetLabel: number | null;
  readonly coarseOf: readonly number[] | null;
  readonly method: UnlearnMethod;
  readonly rank: number;
  readonly alpha: number;
  readonly layers: 'all' | readonly string[];
  readonly epochs: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly merge: boolean;
  readonly seed: number;
  readonly forgetTerm: 'bounded' | 'wrong-label';
  /** null: derive it from `heldOut` or the class count. */
  readonly forgetLoss: number | null;
  readonly heldOut: UnlearnRows | null;
  readonly forgetWeight: number;
  readonly retainWeight: number;
  readonly margin: number;
  readonly coarseWeight: number;
  readonly fineWeight: number;
  /** Whether LoRA adapters train (rfa-lora always; hinge-kl with `adapters`). */
  readonly adapters: boolean;
  readonly stopWhenForgotten: boolean;
  readonly calibrate: boolean;
  readonly membershipTolerance: number;
  readonly forgetAccuracyTolerance: number;
  readonly accuracyTolerance: number;
  /** The model's output width (1 for a single sigmoid unit). */
  readonly classes: number;
}

/** hinge-kl's most epochs while `stopWhenForgotten` ends it (4 epochs on SpamAssassin's spam-2, 64 exemplars). */
const HINGE_KL_EPOCHS = 30;

const METHODS: readonly UnlearnMethod[] = ['rfa-lora', 'hinge-kl', 'gradient-ascent', 'fine-tune'];

/** Every key of UnlearnOptions, tied to the type so that a new option cannot be forgotten here. */
const KEYS = {
  forget: true,
  retain: true,
  forgetLabel: true,
  coarseOf: true,
  method: true,
  rank: true,
  alpha: true,
  layers: true,
  epochs: true,
  learningRate: true,
  batchSize: true,
  merge: true,
  seed: true,
  forgetTerm: true,
  forgetLoss: true,
  heldOut: true,
  forgetWeight: true,
  retainWeight: true,
  margin: true,
  coarseWeight: true,
  fineWeight: true,
  adapters: true,
  stopWhenForgotten: true,
  calibrate: true,
  membershipTolerance: true,
  forgetAccuracyTolerance: true,
  accuracyTolerance: true,
} satisfies Record<keyof UnlearnOptions, true>;

function isTensor(v: unknown): v is tf.Tensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as { shape?: unknown }).shape) && typeof (v as { dataId?: unknown }).dataId === 'object';
}

/** Checks rows against the model's input and output shapes. */
function checkRows(rows: unknown, field: string, input: readonly (number | null)[], classes: number, lossName: string | undefined): UnlearnRows {
  if (typeof rows !== 'object' || rows === null) invalid(field, '{ xs, ys } tensors', rows, 'invalid_input');
  const { xs, ys } = rows as Partial<UnlearnRows>;
  if (!isTensor(xs)) invalid(`${field}.xs`, 'a tensor', xs, 'invalid_input');
  if (!isTensor(ys)) invalid(`${field}.ys`, 'a tensor', ys, 'invalid_input');
  const fits = xs.rank === input.length && input.every((d, i) => i === 0 || d === null || d === xs.shape[i]);
  if (!fits) {
    throw new InrunError(`shape [${xs.shape.join(', ')}] does not fit the model's input [${input.map((d) => d ?? 'n').join(', ')}]`, { field: `${field}.xs`, code: 'shape_mismatch' });
  }
  if (xs.shape[0] === 0) throw new InrunError('no rows', { field: `${field}.xs`, code: 'invalid_input' });
  const last = ys.shape[ys.rank - 1];
  // One-hot/probability rows [n, classes], or class ids [n] / [n, 1].
  const ysFits = ys.shape[0] === xs.shape[0] && ys.rank <= 2 && (ys.rank === 1 || last === classes || last === 1);
  if (!ysFits) {
    throw new InrunError(`shape [${ys.shape.join(', ')}] does not fit ${xs.shape[0]} rows and ${classes} outputs`, { field: `${field}.ys`, code: 'shape_mismatch' });
  }
  // Labels in the form the compiled loss takes: class ids would broadcast against a categorical loss's [n, classes].
  const oneHot = ys.rank === 2 && last === classes;
  if (classes > 1 && CATEGORICAL.has(lossName ?? '') && !oneHot) {
    throw new InrunError(`the model's loss (${lossName}) takes one-hot labels [${xs.shape[0]}, ${classes}], got shape [${ys.shape.join(', ')}] (class ids? tf.oneHot them, or compile with sparseCategoricalCrossentropy)`, { field: `${field}.ys`, code: 'shape_mismatch' });
  }
  if (classes > 1 && SPARSE.has(lossName ?? '') && oneHot) {
    throw new InrunError(`the model's loss (${lossName}) takes class ids [${xs.shape[0]}], got one-hot shape [${ys.shape.join(', ')}] (tf.argMax them, or compile with categoricalCrossentropy)`, { field: `${field}.ys`, code: 'shape_mismatch' });
  }
  return { xs, ys };
}

/** Losses (as compiled by name) that take one-hot or probability rows, and those that take class ids. */
const CATEGORICAL = new Set(['categoricalCrossentropy', 'categorical_crossentropy', 'kullbackLeiblerDivergence', 'kld', 'KLD']);
const SPARSE = new Set(['sparseCategoricalCrossentropy', 'sparse_categorical_crossentropy']);

function positive(value: unknown, field: string, integer: boolean, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  const ok = typeof value === 'number' && Number.isFinite(value) && (allowZero ? value >= 0 : value > 0) && (!integer || Number.isInteger(value));
  if (!ok) invalid(field, `a ${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}`, value);
  return value as number;
}

/**
 * Checks `options` against `model` (one input, one output, compiled) and applies every default.
 * Errors name the field at fault (`forget.xs`, `forgetLabel`, `coarseOf`, ...).
 */
export function resolveUnlearnOptions(model: tf.LayersModel, options: UnlearnOptions): ResolvedUnlearnOptions {
  if (typeof options !== 'object' || options === null) invalid('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!(key in KEYS)) throw new InrunError(`unknown option (known: ${Object.keys(KEYS).join(', ')})`, { field: key });
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new InrunError('unlearn supports models with one input and one output', { field: 'model', code: 'unsupported_model' });
  }
  if (lossFunctionOf(model) === undefined) {
    throw new InrunError('compile the model first: unlearn trains with its loss', { field: 'model', code: 'unsupported_model' });
  }
  const method = options.method ?? 'rfa-lora';
  if (!METHODS.includes(method)) invalid('method', `one of ${METHODS.join(', ')}`, method);
  const outShape = model.outputs[0]!.shape;
  const classes = outShape[outShape.length - 1] ?? 1;
  const input = model.inputs[0]!.shape;
  // The loss by name when compiled with one (a function or a list: nothing to check by name).
  const compiled = (model as unknown as { loss?: unknown }).loss;
  const lossName = typeof compiled === 'string' ? compiled : undefined;
  const forget = checkRows(options.forget, 'forget', input, classes, lossName);
  const retain = options.retain === undefined ? null : checkRows(options.retain, 'retain', input, classes, lossName);
  const heldOut = options.heldOut === undefined ? null : checkRows(options.heldOut, 'heldOut', input, classes, lossName);
  if (retain === null && (method === 'rfa-lora' || method === 'fine-tune')) {
    throw new InrunError(`${method} needs retained rows: give retain: { xs, ys }`, { field: 'retain' });
  }

  const forgetLabel = options.forgetLabel ?? null;
  if (forgetLabel !== null && !(Number.isInteger(forgetLabel) && forgetLabel >= 0 && forgetLabel < classes)) {
    invalid('forgetLabel', `a class index in [0, ${classes - 1}]`, forgetLabel);
  }
  if (method === 'hinge-kl' && forgetLabel === null) throw new InrunError('hinge-kl needs the fine label to forget', { field: 'forgetLabel' });
  if (method === 'hinge-kl' && classes < 2) throw new InrunError('hinge-kl needs a model with one output per class', { field: 'model', code: 'unsupported_model' });
  const coarseOf = options.coarseOf ?? null;
  if (coarseOf !== null) {
    if (!Array.isArray(coarseOf) || coarseOf.length !== classes) invalid('coarseOf', `an array with one coarse label per class (${classes})`, coarseOf);
    coarseOf.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0) invalid(`coarseOf[${i}]`, 'a non-negative integer', c);
    });
  }
  const layers = options.layers ?? 'all';
  if (layers !== 'all' && !(Array.isArray(layers) && layers.every((l) => typeof l === 'string'))) invalid('layers', "'all' or an array of layer names", layers);
  const forgetTerm = options.forgetTerm ?? 'bounded';
  if (forgetTerm !== 'bounded' && forgetTerm !== 'wrong-label') invalid('forgetTerm', "'bounded' or 'wrong-label'", forgetTerm);
  if (options.merge !== undefined && typeof options.merge !== 'boolean') invalid('merge', 'a boolean', options.merge);
  if (options.adapters !== undefined && typeof options.adapters !== 'boolean') invalid('adapters', 'a boolean', options.adapters);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) invalid('seed', 'an integer', options.seed);
  for (const key of ['calibrate', 'stopWhenForgotten'] as const) if (options[key] !== undefined && typeof options[key] !== 'boolean') invalid(key, 'a boolean', options[key]);
  const calibrate = method !== 'hinge-kl' && options.calibrate !== false;
  // hinge-kl with its stop: the epochs are only a ceiling (docs/unlearning.md, measured over 3 seeds).
  const stops = method === 'hinge-kl' && options.stopWhenForgotten !== false;

  return {
    forget,
    retain,
    forgetLabel,
    coarseOf,
    method,
    rank: positive(options.rank, 'rank', true, 8),
    alpha: positive(options.alpha, 'alpha', false, 16),
    layers,
    epochs: positive(options.epochs, 'epochs', true, stops ? HINGE_KL_EPOCHS : calibrate ? 10 : 5, true),
    learningRate: positive(options.learningRate, 'learningRate', false, calibrate && method === 'rfa-lora' ? 1e-2 : stops ? 3e-3 : 1e-3),
    batchSize: positive(options.batchSize, 'batchSize', true, method === 'hinge-kl' ? 16 : 32),
    merge: options.merge ?? true,
    seed: options.seed ?? 1,
    forgetTerm,
    forgetLoss: options.forgetLoss === undefined ? null : positive(options.forgetLoss, 'forgetLoss', false, 0),
    heldOut,
    forgetWeight: positive(options.forgetWeight, 'forgetWeight', false, 1, true),
    retainWeight: positive(options.retainWeight, 'retainWeight', false, 1, true),
    margin: positive(options.margin, 'margin', false, 2, true),
    coarseWeight: positive(options.coarseWeight, 'coarseWeight', false, 20, true),
    fineWeight: positive(options.fineWeight, 'fineWeight', false, 20, true),
    adapters: method === 'rfa-lora' || (method === 'hinge-kl' && options.adapters === true),
    stopWhenForgotten: stops,
    calibrate,
    membershipTolerance: positive(options.membershipTolerance, 'membershipTolerance', false, 0.05),
    forgetAccuracyTolerance: positive(options.forgetAccuracyTolerance, 'forgetAccuracyTolerance', false, 0.02),
    accuracyTolerance: positive(options.accuracyTolerance, 'accuracyTolerance', false, 0.02, true),
    classes,
  };
}
