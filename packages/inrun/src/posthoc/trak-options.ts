// Options of trak(): the type, its defaults (applied once, here) and the checks that name the field at fault.
import { InrunError, invalid } from '../errors.js';
import type { LabelledRows } from './tracin.js';

/** trak()'s default lambda as a multiple of the mean diagonal of Phi^T Phi (chosen on held-out LDS subsets: docs/evaluation.md). */
export const TRAK_LAMBDA_SCALE = 1;

/** Options of {@link trak}. */
export interface TrakOptions {
  /**
   * One training run's checkpoint folders, or one folder holding `step-*` checkpoints (as
   * `tracin()` takes them). Give this or {@link TrakOptions.runs}, not both.
   */
  readonly checkpoints?: string | readonly string[];
  /**
   * Several independently trained runs (TRAK's ensemble, TRAK-k for k runs), each given as
   * {@link TrakOptions.checkpoints} is. Scores are averaged over runs, and within a run over its checkpoints.
   */
  readonly runs?: readonly (string | readonly string[])[];
  /** The training examples (the rows the kernel is built from), in training order. */
  readonly train: LabelledRows;
  /** The examples to explain. */
  readonly queries: LabelledRows;
  /**
   * The model output whose change is attributed. `'margin'` (classification with a cross-entropy loss,
   * per-example loss = -log p_y): f = log p_y - log(1 - p_y), as TRAK, with Q = diag(1 - p_y).
   * `'loss'`: f = -loss (any loss), Q = I.
   * @defaultValue 'margin'
   */
  readonly output?: 'margin' | 'loss';
  /**
   * Projection width per side: each covered layer's inputs and output gradients are projected to this
   * many numbers (Gaussian, the project's sketches; a side no wider is kept whole), so a Dense layer's
   * projected gradient has min(inputs + 1, dim) x min(units, dim) numbers.
   * @defaultValue 32
   */
  readonly dim?: number;
  /**
   * Seed of the projections: one projection for every checkpoint of a run, and each run of `runs` its
   * own (run r's piece i draws from seeds 2 (seed + 1000 r) + 1 + 2i and the next, none of them tf.js's
   * unseeded 0), so the ensemble also averages out the projection's noise (docs/evaluation.md: TRAK-10
   * on logistic regression 0.407 with one projection, 0.483 with one per run). An integer >= 0. @defaultValue 0
   */
  readonly seed?: number;
  /**
   * Ridge term of the kernel (Phi^T Phi + lambda I)^-1. The default was chosen by LDS on held-out
   * subsets (docs/evaluation.md): 1e-3 x the mean diagonal nearly inverts Phi^T Phi and ranked below GradDot.
   * @defaultValue the mean diagonal of Phi^T Phi ({@link TRAK_LAMBDA_SCALE} x it), per checkpoint (scale-free)
   */
  readonly lambda?: number;
  /**
   * `'stored'`: at a checkpoint whose folder holds the run's in-run gradient sketches (`attach({ sketch })`),
   * Phi is built from them (with the run's projection: `dim` and `seed` do not apply there) and only the
   * queries' gradients are computed (plus, for the margin, a forward pass of the training rows for their
   * p_y); elsewhere Phi is computed from the checkpoint. `'recompute'`: always from the checkpoint.
   * @defaultValue 'stored'
   */
  readonly sketches?: 'stored' | 'recompute';
  /** Parameters covered, as in `tracin()`. @defaultValue 'all' */
  readonly layers?: 'all' | 'last' | 'embedding' | readonly string[];
  /** Proponents and opponents kept per query. @defaultValue 10 */
  readonly k?: number;
  /** Training rows per pass. @defaultValue 256 */
  readonly batchSize?: number;
  /** Also return every (training row, query) score, row-major. @defaultValue false */
  readonly matrix?: boolean;
}

/** {@link TrakOptions} with every default applied. */
export interface ResolvedTrakOptions {
  readonly runs: readonly (string | readonly string[])[];
  readonly output: 'margin' | 'loss';
  readonly dim: number;
  readonly seed: number;
  /** `null`: {@link TRAK_LAMBDA_SCALE} x the mean diagonal of Phi^T Phi. */
  readonly lambda: number | null;
  readonly sketches: 'stored' | 'recompute';
  readonly layers: 'all' | 'last' | 'embedding' | readonly string[];
  readonly k: number;
  readonly batchSize: number;
  readonly matrix: boolean;
}

const positiveInteger = (field: string, value: unknown) => {
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= 1)) invalid(field, 'a positive integer', value);
};

/** Checks the scalar options and applies the defaults (rows are checked where they are read; shards read theirs from files). */
export function resolveTrakOptions(options: Omit<TrakOptions, 'train' | 'queries'>): ResolvedTrakOptions {
  if (options === null || typeof options !== 'object') invalid('options', '{ checkpoints | runs, train, queries, ... }', options);
  if ((options.checkpoints === undefined) === (options.runs === undefined)) {
    throw new InrunError('give checkpoints (one run) or runs (several), exactly one of them', { field: 'runs', code: 'invalid_option' });
  }
  if (options.runs !== undefined && !(Array.isArray(options.runs) && options.runs.length > 0)) invalid('runs', 'a non-empty list of runs', options.runs);
  const runs = options.runs ?? [options.checkpoints!];
  const output = options.output ?? 'margin';
  if (output !== 'margin' && output !== 'loss') invalid('output', "'margin' or 'loss'", output);
  const dim = options.dim ?? 32;
  positiveInteger('dim', dim);
  const seed = options.seed ?? 0;
  if (!(Number.isInteger(seed) && seed >= 0)) invalid('seed', 'an integer >= 0', seed);
  if (options.lambda !== undefined && !(typeof options.lambda === 'number' && Number.isFinite(options.lambda) && options.lambda >= 0)) {
    invalid('lambda', 'a finite number >= 0', options.lambda);
  }
  const sketches = options.sketches ?? 'stored';
  if (sketches !== 'stored' && sketches !== 'recompute') invalid('sketches', "'stored' or 'recompute'", sketches);
  const k = options.k ?? 10;
  positiveInteger('k', k);
  const batchSize = options.batchSize ?? 256;
  positiveInteger('batchSize', batchSize);
  return { runs, output, dim, seed, lambda: options.lambda ?? null, sketches, layers: options.layers ?? 'all', k, batchSize, matrix: options.matrix ?? false };
}
