import type * as tf from '@tensorflow/tfjs';
import type { Sink } from './store/sink.js';
import type { MetricsOptions } from './telemetry/metrics.js';

/** A training example's stable identity. Numbers and strings are distinct ids (`1` is not `'1'`). */
export type ExampleId = number | string;

/**
 * Attribution methods (see docs/methods.md for the maths and units).
 * - `shapley1`: first-order In-Run Data Shapley toward each target (= TracIn-Ideal).
 * - `shapley2`: second-order In-Run Data Shapley toward each target.
 * - `tracin_self`: TracIn self-influence, target-free.
 * - `tracin_we`: TracIn-WE, the first-order value restricted to embedding layers, with per-token scores.
 */
export type Method = 'shapley1' | 'shapley2' | 'tracin_self' | 'tracin_we';

/** Tensors of one target: inputs as the model takes them and labels as its loss takes them. */
export interface TargetData {
  readonly xs: tf.Tensor | readonly tf.Tensor[];
  readonly ys: tf.Tensor | readonly tf.Tensor[];
}

/** What a user may say about an example; written to sinks, shown in reports. */
export interface ExampleInfo {
  readonly id: ExampleId;
  /** Where the example came from (a dataset, a crawl, a vendor). Reports group by it. */
  readonly source?: string;
  readonly label?: string | number;
  readonly text?: string;
}

/** One attribution column, e.g. `shapley1:val` (method and target) or `tracin_self`. */
export interface ColumnInfo {
  readonly name: string;
  readonly method: Method;
  readonly target: string | null;
}

/** A layer whose parameters the scores cover. */
export interface CoveredLayer {
  readonly name: string;
  /** The layer kind that records it: `dense`, `embedding`, `conv`, `layer-norm`, `recurrent` (docs/layers.md). */
  readonly kind: string;
  /** Number of parameters the layer's per-example gradients span (all of the layer's trainable weights). */
  readonly params: number;
  /**
   * Ghost path of target products at the first step (`null` until then): `pairwise`, `materialised`,
   * or `compact` (embedding layers: materialised over the target's distinct ids). docs/methods.md.
   */
  path: 'pairwise' | 'materialised' | 'compact' | null;
}

/** A layer with trainable weights that inrun does not attribute through. */
export interface SkippedLayer {
  readonly name: string;
  readonly className: string;
  readonly reason: string;
}

/** Run metadata: stored by sinks, shown in reports. */
export interface RunInfo {
  readonly runId: string;
  readonly startedAt: string;
  readonly inrunVersion: string;
  readonly tfjsVersion: string;
  readonly backend: string;
  readonly model: { readonly name: string; readonly className: string; readonly params: number };
  readonly optimizer: {
    readonly className: string;
    /**
     * `exact` for plain SGD; otherwise `sgd-proxy` (the paper's choice, docs/methods.md) or,
     * with `update: 'optimizer'`, `optimizer-aware` (the optimizer's own per-parameter update).
     */
    readonly attribution: 'exact' | 'sgd-proxy' | 'optimizer-aware';
  };
  readonly lossReduction: 'mean' | 'sum';
  readonly methods: readonly Method[];
  readonly columns: readonly ColumnInfo[];
  readonly targets: readonly { readonly name: string; readonly rows: number }[];
  readonly layers: {
    readonly covered: readonly CoveredLayer[];
    readonly skipped: readonly SkippedLayer[];
    /** Parameters the scores cover (sum of `covered[].params`). */
    readonly coveredParams: number;
    /**
     * Trainable parameters of the model; `coveredParams / trainableParams` is the share the scores
     * cover. Hand-written models: the parameters of the ops inrun saw (their other weights are unknown).
     */
    readonly trainableParams: number;
  };
  /** Steps between two target passes (`targetEvery`). */
  readonly targetEvery: number;
  /** How second-order values compute H_T u, or null without `shapley2`. */
  readonly hvp: 'double-backward' | 'finite-difference' | null;
  /** Seeds used by `run.fit` shuffling, in call order. */
  readonly seeds: number[];
  readonly meta: Readonly<Record<string, unknown>>;
}

/** Per-step detail: one record per optimizer step, columns aligned with `ids`. */
export interface StepRecord {
  readonly runId: string;
  /** Attributed steps of this run, from 0. */
  readonly step: number;
  /** Epoch of `run.fit` / `run.fitDataset`, or `null` in custom loops. */
  readonly epoch: number | null;
  readonly learningRate: number;
  readonly batchSize: number;
  /** Training loss the optimizer minimised at this step (including regularisers). */
  readonly loss: number;
  /** Summed target loss per target at the step's weights, before the update. */
  readonly targetLosses: Readonly<Record<string, number>>;
  readonly ids: readonly ExampleId[];
  /** Per-example values of this step, one array per column (`shapley1:val`, `tracin_self`, ...). */
  readonly columns: Readonly<Record<string, Float32Array>>;
  /** Wall time inrun added to the step (target passes, products, accumulation), in ms. */
  readonly attributionMs: number;
  /** Wall time from this step's start to the next step's (or to the flush that read it), in ms. */
  readonly stepMs: number;
}

/** A token's share of an example's TracIn-WE score. */
export interface TokenScore {
  readonly token: number;
  /** The vocabulary entry, when a vocabulary was given. */
  readonly word?: string;
  readonly score: number;
}

/** Run totals: one value per example and column. */
export interface Scores {
  /** Every example seen (or described) by the run, in first-seen order. */
  readonly ids: readonly ExampleId[];
  /** One array per column, aligned with `ids`. Examples never seen in a step score 0. */
  readonly columns: Readonly<Record<string, Float32Array>>;
  /** How many optimizer steps each example took part in. */
  readonly steps: Int32Array;
  /** Per `tracin_we` column, each example's top tokens by |score| (empty when there is no token data). */
  readonly tokens: Readonly<Record<string, readonly (readonly TokenScore[])[]>>;
}

/** A model trained by hand-written code: the pieces inrun needs for the targets' gradients. */
export interface FunctionalModel {
  /** Forward pass for target inputs; training code keeps its own forward. */
  readonly predict: (xs: tf.Tensor | tf.Tensor[]) => tf.Tensor | tf.Tensor[];
  /** Per-example loss: a tensor whose first axis is the example (other axes are averaged). */
  readonly loss: (ys: tf.Tensor | tf.Tensor[], predictions: tf.Tensor | tf.Tensor[]) => tf.Tensor;
  /** The optimizer whose `minimize` steps the loop. */
  readonly optimizer: tf.Optimizer;
  /**
   * How the training loss reduces per-example losses. Only self-influence depends on it.
   * @defaultValue 'mean'
   */
  readonly lossReduction?: 'mean' | 'sum';
  /** A name for reports. @defaultValue 'model' */
  readonly name?: string;
}

/** Options of {@link attach}. */
export interface AttachOptions {
  /**
   * Named targets whose loss the scores explain, e.g. `{ val: { xs, ys } }`. Names may not contain ':'.
   * @defaultValue none (only target-free methods can run)
   */
  readonly targets?: Readonly<Record<string, TargetData>>;
  /**
   * Methods to compute.
   * @defaultValue `['shapley1', 'tracin_self']` with targets, `['tracin_self']` without
   */
  readonly methods?: readonly Method[];
  /**
   * Layers to attribute through: all supported ones, a list of layer names, or only embedding layers.
   * @defaultValue 'all'
   */
  readonly layers?: 'all' | 'embedding' | readonly string[];
  /** Where records and totals go. @defaultValue none */
  readonly sinks?: readonly Sink[];
  /** Metadata of examples (source, label, text); they count as seen-or-not members of the run. */
  readonly examples?: Iterable<ExampleInfo>;
  /** Seed of `run.fit`'s shuffling. @defaultValue a random seed, recorded in `run.info.seeds` */
  readonly seed?: number;
  /** Optimizer of a custom loop on a LayersModel. @defaultValue `model.optimizer` */
  readonly optimizer?: tf.Optimizer;
  /**
   * Ghost product path for target products: chosen per layer by cost, or forced.
   * @defaultValue 'auto'
   */
  readonly ghostPath?: 'auto' | 'pairwise' | 'materialised';
  /** Steps buffered between two asynchronous reads of per-step records. @defaultValue 32 */
  readonly flushEvery?: number;
  /**
   * Keep per-step records for `records$` and sinks. Off: only device totals, nothing read per step.
   * @defaultValue true
   */
  readonly stepRecords?: boolean;
  /** Per-token scores of `tracin_we`. */
  readonly tokens?: TokenOptions;
  /**
   * How `shapley2` computes the Hessian-vector product of the target loss: exact double backward
   * (tf.js nested gradients), the finite difference of target gradients along the step (the secant
   * `grad L_T(w) - grad L_T(w - u)`, stable across ReLU kinks; docs/methods.md), or the first of the
   * two that works for this model (tried at attach). The choice is in `run.info.hvp`.
   * @defaultValue 'auto'
   */
  readonly hvp?: 'auto' | 'double-backward' | 'finite-difference';
  /**
   * Which update the target-directed values (`shapley1`, `shapley2`, `tracin_we` and its token
   * scores) measure. `'sgd'`: the SGD step `lr * g` whatever the optimizer (the paper's proxy; exact
   * for plain SGD). `'optimizer'`: the optimizer's own step for each example, `lr * Q * g` with its
   * per-parameter factors Q frozen at the step (Adam, RMSProp, Adagrad; Momentum and SGD give the
   * same values as `'sgd'`). It materialises each target's gradient once per step (one
   * parameter-sized tensor per target), so it costs more than the ghost kernel. `tracin_self`
   * stays the TracIn definition. The choice is in `run.info.optimizer.attribution`.
   * @defaultValue 'sgd'
   */
  readonly update?: 'sgd' | 'optimizer';
  /**
   * Steps between two target passes. 1: every step's values use the target's gradient at that step's
   * weights (exact). n > 1: the target pass runs every n steps and the steps between reuse its rows,
   * recorded at weights up to n - 1 steps old: an approximation (measured in docs/evaluation.md) that
   * takes most of the cost away on small models, where the target pass is most of it. Target losses
   * appear in the step records of refresh steps only. Not with `shapley2`, whose Hessian-vector
   * product needs the current weights.
   * @defaultValue 1
   */
  readonly targetEvery?: number;
  /**
   * Checkpoints taken during training (`run.checkpoint(dir)`): every `everySteps` steps and/or after
   * every `everyEpochs` epochs of `run.fit`/`fitDataset`. They serve `tracin()` (TracIn from
   * checkpoints) and resuming a crashed run.
   * @defaultValue none
   */
  readonly checkpoints?: { readonly dir: string; readonly everySteps?: number; readonly everyEpochs?: number };
  /**
   * Random-projection sketches of every example's gradient (`size` x `size` numbers per layer),
   * taken when the example is seen and saved with each checkpoint, so that `tracin({ train: 'sketches' })`
   * scores new queries without a pass over the training data. LayersModel runs only.
   * @defaultValue none
   */
  readonly sketch?: { readonly size: number; readonly seed?: number };
  /** Run id used by sinks. @defaultValue `run-<time>-<random>` */
  readonly runId?: string;
  /** Free-form metadata stored with the run. */
  readonly meta?: Readonly<Record<string, unknown>>;
  /**
   * The bounded queue between training and sinks. `policy: 'block'` makes a step wait while
   * `capacity` step records are still waiting for the sinks; `'drop'` discards and counts them.
   * @defaultValue `{ policy: 'block', capacity: 256 }`
   */
  readonly delivery?: { readonly policy?: 'block' | 'drop'; readonly capacity?: number };
  /**
   * A sink that throws: `'stop'` fails the next training step with an InrunError (other sinks keep
   * what they wrote); `'continue'` trains on without that sink (see `run.stats().delivery.failures`).
   * @defaultValue 'stop'
   */
  readonly sinkErrors?: 'stop' | 'continue';
  /**
   * Steps between totals snapshots sent to sinks (one asynchronous read of the device totals each);
   * 0 sends them only at `run.checkpoint()` and `close()`.
   * @defaultValue 1000
   */
  readonly totalsEvery?: number;
  /**
   * OpenTelemetry metrics of the run (docs/telemetry.md): `true` for the defaults, or options. Uses
   * the app's MeterProvider (the global one unless given), asked for when training starts.
   * @defaultValue false
   */
  readonly metrics?: boolean | MetricsOptions;
}

/** Options of per-token `tracin_we` scores. */
export interface TokenOptions {
  /** Embedding layer whose positions are scored. @defaultValue the first covered embedding layer */
  readonly layer?: string;
  /** Words by token id, to report words instead of ids. */
  readonly vocabulary?: readonly string[];
  /** Tokens kept per example in `scores().tokens`. @defaultValue 5 */
  readonly topK?: number;
  /** Token ids never reported (padding, out-of-vocabulary). @defaultValue [] */
  readonly ignore?: readonly number[];
}
