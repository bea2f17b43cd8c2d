// Plain record types of runs, scores and examples: what a run hands its sinks and what stores hold (tf-free).

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

/**
 * Methods computed after a run from its checkpoints, stored as columns of a run of their own (never
 * `attach()`'s): `trak`, TRAK toward a set of queries (the `inrun trak` job; docs/scale-out.md#trak).
 */
export type PosthocMethod = 'trak';


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
  readonly method: Method | PosthocMethod;
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
  readonly methods: readonly (Method | PosthocMethod)[];
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
  /**
   * The pass that took the target rows' gradients: 'fused' (in the training step's own pass) or
   * 'separate' (a pass of their own); null without targets. `targetPass: 'auto'` (the default)
   * resolves to 'separate' where the model or the options do not allow the fused pass (docs/hooks.md).
   */
  readonly targetPass: 'fused' | 'separate' | null;
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
  /** Every example the run trained on (`run.fit` registers its rows when it starts), in first-seen order; ids only described are not here. */
  readonly ids: readonly ExampleId[];
  /** One array per column, aligned with `ids`. Examples never seen in a step score 0. */
  readonly columns: Readonly<Record<string, Float32Array>>;
  /** How many optimizer steps each example took part in. */
  readonly steps: Int32Array;
  /** Per `tracin_we` column, each example's top tokens by |score| (empty when there is no token data). */
  readonly tokens: Readonly<Record<string, readonly (readonly TokenScore[])[]>>;
}


/** Dataset-level influence of one source on one target (a row of `untrac`'s result, and of the `source_influence` table). */
export interface SourceInfluenceRow {
  readonly target: string;
  readonly source: string;
  readonly method: 'untrac' | 'untrac-inv';
  /** Loss after unlearning minus loss before: positive = the source lowered the target's loss. */
  readonly influence: number;
  /** Mean loss before and after the ascent (UnTrac: the target's; UnTrac-Inv: the source's). */
  readonly lossBefore: number;
  readonly lossAfter: number;
  /** Ascent steps taken (fewer than planned when the guard stopped the ascent). */
  readonly steps: number;
  /** Wall time of the ascent that produced this row and its loss evaluations, split evenly over that ascent's rows. */
  readonly seconds: number;
  /**
   * Why the ascent stopped early, or `null`: `'non-finite'` (the ascent loss turned NaN or infinite) or
   * `'loss-ceiling'` (it exceeded `lossCeiling`). The influence is then measured at the last weights
   * whose ascent loss was finite and under the ceiling, so it stays a number.
   */
  readonly stopped: 'non-finite' | 'loss-ceiling' | null;
}
