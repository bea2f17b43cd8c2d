// trak(): TRAK (Park et al. 2023) from projected per-example gradients at saved checkpoints (or the run's stored sketches), ensembled over runs.
import { readCheckpointInfo } from '../run/checkpoint.js';
import { InrunError } from '../errors.js';
import { TopK, type Influence } from './top-k.js';
import { checkpointFolders, checkRows } from './tracin.js';
import { resolveTrakOptions, type TrakOptions } from './trak-options.js';
import { trakFeatures } from './trak-features.js';
import { addGram, addScores, defaultLambda, solveQueries } from './trak-kernel.js';
import type { ExampleId } from '../types.js';

export type { TrakOptions, ResolvedTrakOptions } from './trak-options.js';
export { resolveTrakOptions } from './trak-options.js';

/** One checkpoint of a run, as {@link trak} used it. */
export interface TrakCheckpoint {
  readonly path: string;
  readonly step: number;
  /** Projected width D. */
  readonly dim: number;
  readonly lambda: number;
  /** Where the training rows' gradients came from: the run's stored sketches, or the checkpoint. */
  readonly from: 'sketches' | 'checkpoint';
}

export interface TrakResult {
  /** Per run, its checkpoints in step order, with the projected width and the lambda used at each. */
  readonly runs: readonly (readonly TrakCheckpoint[])[];
  /** Per query, in query order: the training examples with the largest positive scores (proponents) and most negative (opponents). */
  readonly queries: readonly { readonly id: ExampleId; readonly proponents: readonly Influence[]; readonly opponents: readonly Influence[] }[];
  /** With `matrix: true`: every score, row-major (training row r, query j at `r * queries + j`), training order; else null. */
  readonly matrix: Float32Array | null;
}

/** The checkpoint folders of each run, a bad one named `runs[r]`. */
export function trakRuns(runs: readonly (string | readonly string[])[]): string[][] {
  return runs.map((spec, r) => {
    try {
      return checkpointFolders(spec);
    } catch (error) {
      if (error instanceof InrunError) throw new InrunError(`runs[${r}]: ${error.message}`, { field: `runs[${r}]`, code: error.code });
      throw error;
    }
  });
}

/**
 * TRAK from checkpoints: per checkpoint, Phi = the training rows' projected gradients of the model
 * output f (the margin log p_y - log(1 - p_y) for classification), phi_q the query's, and
 * score(z_i, q) = phi_q^T (Phi^T Phi + lambda I)^-1 phi_i Q_ii with Q = diag(1 - p_y) (TRAK's
 * one-minus-probability reweighting), averaged over each run's checkpoints, then over runs.
 * Sign: positive = including z_i raises the query's output, i.e. lowers its loss (a proponent), as
 * everywhere in inrun (docs/methods.md). For a cross-entropy loss grad f = -grad loss / (1 - p_y), so
 * Phi comes from the same per-example loss gradients (and projections) as the sketches, and a
 * checkpoint holding the run's stored sketches gives Phi from them (`sketches`, docs/methods.md).
 * Memory: per checkpoint, the n x D projected training gradients (Float64) and a D x D kernel, D the
 * projected width ({@link TrakResult.runs}); the kernel is solved by Cholesky in double precision.
 */
export async function trak(options: TrakOptions): Promise<TrakResult> {
  const o = resolveTrakOptions(options);
  const train = checkRows('train', options.train);
  const queries = checkRows('queries', options.queries);
  const runs = trakRuns(o.runs);
  const n = train.ids.length;
  const q = queries.ids.length;
  const total = new Float64Array(n * q);
  const info: TrakCheckpoint[][] = [];
  for (const [r, paths] of runs.entries()) {
    const run: TrakCheckpoint[] = [];
    for (const path of paths) {
      const step = readCheckpointInfo(path).step;
      const f = await trakFeatures(path, o, train, queries, r);
      const gram = addGram(f.phi, n, f.dim, new Float64Array(f.dim * f.dim));
      const lambda = o.lambda ?? defaultLambda(gram, f.dim);
      const x = solveQueries(gram, f.dim, lambda, f.queries, q, path);
      addScores(f.phi, f.weight, n, x, q, f.dim, 1 / paths.length / runs.length, total);
      run.push({ path, step, dim: f.dim, lambda, from: f.from });
    }
    info.push(run);
  }
  const top = new TopK(q, o.k);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < q; j++) top.add(j, train.ids[r]!, total[r * q + j]!);
  }
  return {
    runs: info,
    queries: queries.ids.map((id, j) => ({ id, proponents: top.best[j]!, opponents: top.worst[j]! })),
    matrix: o.matrix ? Float32Array.from(total) : null,
  };
}
