// Options of untrac(): the types, their defaults (applied once, here) and the checks that name the field at fault.
import * as tf from '@tensorflow/tfjs';
import { InrunError, invalid } from '../errors.js';
import type { SourceInfluenceRow } from '../types.js';
import type { LabelledRows } from './tracin.js';
import type { UnlearnRequest } from '../unlearn/options.js';

/**
 * Rows with labels for {@link untrac}: tensors, or a `tf.data.Dataset` whose elements are `{ xs, ys }`
 * batches (as `model.fitDataset` takes; checked when read, since tf.data types its elements loosely).
 */
export type UntracData = LabelledRows | tf.data.Dataset<tf.TensorContainer>;

/** One source/target pair of {@link untrac}'s result (stored as it is by `writeSourceInfluence`). */
export type UntracRow = SourceInfluenceRow;

/** What {@link UntracOptions.onProgress} receives after every ascent step. */
export interface UntracProgress {
  /** The data being unlearned: a source (UnTrac) or a target (UnTrac-Inv). */
  readonly unlearning: string;
  /** Ascents finished, and planned. */
  readonly done: number;
  readonly total: number;
  /** Steps of all ascents taken so far, and planned. */
  readonly steps: number;
  readonly totalSteps: number;
  readonly seconds: number;
  /** Seconds left at the pace so far. */
  readonly etaSeconds: number;
}

/** Options of {@link untrac}. */
export interface UntracOptions {
  /** The training datasets, by name (non-empty names; each with at least one row). */
  readonly sources: Readonly<Record<string, UntracData>>;
  /** The test sets whose loss the sources are judged by, by name; a removal request (`unlearn()`'s `{ forget, ... }`) stands for its `forget` rows. */
  readonly targets: Readonly<Record<string, UntracData | UnlearnRequest>>;
  /**
   * `'untrac'`: one ascent per source, each target's loss measured after it (cost grows with the
   * sources' total size). `'untrac-inv'`: one ascent per target, each source's loss measured after it
   * (cheap with many or large sources).
   * @defaultValue 'untrac'
   */
  readonly method?: 'untrac' | 'untrac-inv';
  /**
   * A factory called once per ascent for a fresh optimizer (never the model's own: its state stays
   * untouched). Adam as in the paper; an SGD ascent correlated negatively there (-0.15). The paper's
   * 5e-5 was for a 125M-parameter LM: scale it to your model (docs/methods.md).
   * @defaultValue () => tf.train.adam(5e-5)
   */
  readonly optimizer?: () => tf.Optimizer;
  /** Passes over the unlearned data per ascent. @defaultValue 1 for 'untrac', 5 for 'untrac-inv' */
  readonly epochs?: number;
  /**
   * Rows per ascent step. The paper's UnTrac uses 1; UnTrac-Inv the whole target in one batch.
   * @defaultValue 1 for 'untrac'; for 'untrac-inv' the target's rows, at most 256
   */
  readonly batchSize?: number;
  /** Cap on the steps of one ascent. @defaultValue no cap */
  readonly maxSteps?: number;
  /** UnTrac-Inv: rows of each source whose loss is measured (its first rows). @defaultValue 256 */
  readonly evalRows?: number;
  /** Rows per forward pass when measuring a mean loss. @defaultValue 256 */
  readonly evalBatchSize?: number;
  /**
   * Stop an ascent when the moving average of its batch losses exceeds this. Where every output's loss
   * is binary, categorical or sparse categorical cross-entropy (compiled by name), the default derives
   * from the output: tf.js clips probabilities, so such a loss never exceeds -ln(epsilon) (16.1 in
   * float32) and a fixed multiple of the start could lie above anything reachable (docs/methods.md).
   * @defaultValue for those losses, the unlearned data's mean loss before the ascent + 3 x the
   * uniform-prediction loss (ln(classes) per categorical output, ln 2 per binary one), at most
   * 0.75 x -ln(epsilon) per output; for any other loss, 10 x (1 + that mean loss)
   */
  readonly lossCeiling?: number;
  /**
   * Weights to ascend on (and restore). Required for a hand-written model.
   * @defaultValue the LayersModel's trainable weights
   */
  readonly variables?: readonly tf.Variable[];
  /** Seed of the ascent's row order (each epoch is a seeded shuffle). @defaultValue 1 */
  readonly seed?: number;
  /** Draw a progress bar on stderr. @defaultValue whether stderr is a terminal */
  readonly progress?: boolean;
  /** Called after every ascent step. */
  readonly onProgress?: (progress: UntracProgress) => void;
}

/** {@link UntracOptions} with every default applied. */
export interface ResolvedUntracOptions {
  readonly method: 'untrac' | 'untrac-inv';
  readonly optimizer: () => tf.Optimizer;
  readonly epochs: number;
  /** `null`: the target's rows, at most 256 (UnTrac-Inv). */
  readonly batchSize: number | null;
  readonly maxSteps: number;
  readonly evalRows: number;
  readonly evalBatchSize: number;
  readonly lossCeiling: number | null;
  readonly seed: number;
  readonly progress: boolean;
  readonly onProgress: ((progress: UntracProgress) => void) | null;
}

const positiveInteger = (field: string, value: unknown) => {
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= 1)) invalid(field, 'a positive integer', value);
};

/** Checks the scalar options and applies the defaults (data and names are checked against the model later). */
export function resolveUntracOptions(options: UntracOptions): ResolvedUntracOptions {
  if (options === null || typeof options !== 'object') invalid('options', '{ sources, targets, ... }', options);
  const method = options.method ?? 'untrac';
  if (method !== 'untrac' && method !== 'untrac-inv') invalid('method', "'untrac' or 'untrac-inv'", method);
  const optimizer = options.optimizer ?? (() => tf.train.adam(5e-5));
  if (typeof optimizer !== 'function' || optimizer instanceof tf.Optimizer) {
    throw new InrunError('expected a factory () => tf.Optimizer (a fresh optimizer per ascent, so that no state is shared), got an optimizer or other value', {
      field: 'optimizer',
    });
  }
  const inv = method === 'untrac-inv';
  const epochs = options.epochs ?? (inv ? 5 : 1);
  positiveInteger('epochs', epochs);
  if (options.batchSize !== undefined) positiveInteger('batchSize', options.batchSize);
  if (options.maxSteps !== undefined) positiveInteger('maxSteps', options.maxSteps);
  const evalRows = options.evalRows ?? 256;
  positiveInteger('evalRows', evalRows);
  const evalBatchSize = options.evalBatchSize ?? 256;
  positiveInteger('evalBatchSize', evalBatchSize);
  if (options.lossCeiling !== undefined && !(typeof options.lossCeiling === 'number' && options.lossCeiling > 0)) {
    invalid('lossCeiling', 'a positive number', options.lossCeiling);
  }
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed)) invalid('seed', 'an integer', seed);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') invalid('onProgress', 'a function', options.onProgress);
  return {
    method,
    optimizer,
    epochs,
    batchSize: options.batchSize ?? (inv ? null : 1),
    maxSteps: options.maxSteps ?? Number.POSITIVE_INFINITY,
    evalRows,
    evalBatchSize,
    lossCeiling: options.lossCeiling ?? null,
    seed,
    progress: options.progress ?? process.stderr.isTTY === true,
    onProgress: options.onProgress ?? null,
  };
}
