// trak(): TRAK (Park et al. 2023) from projected per-example gradients at saved checkpoints, ensembled over runs.
import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, readCheckpointInfo } from '../run/checkpoint.js';
import { InrunError } from '../errors.js';
import { yieldTurn } from '../event-loop.js';
import { TopK, type Influence } from './top-k.js';
import { checkpointFolders, checkRows } from './tracin.js';
import { resolveTrakOptions, TRAK_LAMBDA_SCALE, type ResolvedTrakOptions, type TrakOptions } from './trak-options.js';
import type { LayerRows } from '../ghost/types.js';
import { disposeProjections, makeProjections, sketchRows, type Projection } from '../ghost/sketch.js';
import { lastLayer, planLayers } from '../layers/plan.js';
import { adaptModel, type ModelAdapter } from '../model/adapter.js';
import { rowGroup, targetPass } from '../scoring/targets.js';
import type { ExampleId } from '../types.js';

export type { TrakOptions, ResolvedTrakOptions } from './trak-options.js';
export { resolveTrakOptions } from './trak-options.js';

export interface TrakResult {
  /** Per run, its checkpoints in step order, with the projected width and the lambda used at each. */
  readonly runs: readonly (readonly { readonly path: string; readonly step: number; readonly dim: number; readonly lambda: number }[])[];
  /** Per query, in query order: the training examples with the largest positive scores (proponents) and most negative (opponents). */
  readonly queries: readonly { readonly id: ExampleId; readonly proponents: readonly Influence[]; readonly opponents: readonly Influence[] }[];
  /** With `matrix: true`: every score, row-major (training row r, query j at `r * queries + j`), training order; else null. */
  readonly matrix: Float32Array | null;
}

interface Rows {
  readonly xs: tf.Tensor[];
  readonly ys: tf.Tensor[];
  readonly ids: ExampleId[];
}

/**
 * TRAK from checkpoints: per checkpoint, Phi = the training rows' projected gradients of the model
 * output f (the margin log p_y - log(1 - p_y) for classification), phi_q the query's, and
 * score(z_i, q) = phi_q^T (Phi^T Phi + lambda I)^-1 phi_i Q_ii with Q = diag(1 - p_y) (TRAK's
 * one-minus-probability reweighting), averaged over each run's checkpoints, then over runs.
 * Sign: positive = including z_i raises the query's output, i.e. lowers its loss (a proponent), as
 * everywhere in inrun (docs/methods.md). For a cross-entropy loss grad f = -grad loss / (1 - p_y), so
 * Phi comes from the same per-example loss gradients (and projections) as `tracin()`'s sketches.
 * Memory: per checkpoint, the n x D projected training gradients (Float64) and a D x D kernel, D the
 * projected width ({@link TrakResult.runs}); the kernel is solved by Cholesky in double precision.
 */
export async function trak(options: TrakOptions): Promise<TrakResult> {
  const o = resolveTrakOptions(options);
  const train = checkRows('train', options.train);
  const queries = checkRows('queries', options.queries);
  const runs = o.runs.map((spec, r) => {
    try {
      return checkpointFolders(spec);
    } catch (error) {
      if (error instanceof InrunError) throw new InrunError(`runs[${r}]: ${error.message}`, { field: `runs[${r}]`, code: error.code });
      throw error;
    }
  });
  const n = train.ids.length;
  const q = queries.ids.length;
  const total = new Float64Array(n * q);
  const info: { path: string; step: number; dim: number; lambda: number }[][] = [];
  for (const paths of runs) {
    const run: { path: string; step: number; dim: number; lambda: number }[] = [];
    const runScores = new Float64Array(n * q);
    for (const path of paths) {
      const step = readCheckpointInfo(path).step;
      const { dim, lambda } = await checkpointScores(path, o, train, queries, runScores);
      run.push({ path, step, dim, lambda });
    }
    for (let i = 0; i < total.length; i++) total[i]! += runScores[i]! / paths.length / runs.length;
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

/** One checkpoint's n x q TRAK scores, added into `into`. */
async function checkpointScores(path: string, o: ResolvedTrakOptions, train: Rows, queries: Rows, into: Float64Array): Promise<{ dim: number; lambda: number }> {
  const model = await loadCheckpoint(path);
  const adapter = adaptModel(model, undefined);
  const plan = planLayers(model, o.layers === 'last' ? [lastLayer(model)] : o.layers);
  const restore = plan.instrument();
  const order = plan.covered.map((l) => l.name);
  let projections: Projection[] = [];
  try {
    const q = queries.ids.length;
    const first = await projectedOutputGradients(adapter, order, queries.xs, queries.ys, o, () => projections, (p) => (projections = p));
    const d = first.dim;
    const phiQ = first.phi;
    const n = train.ids.length;
    const phi = new Float64Array(n * d);
    const weight = new Float64Array(n);
    for (let start = 0; start < n; start += o.batchSize) {
      const m = Math.min(o.batchSize, n - start);
      const xs = train.xs.map((x) => tf.slice(x, start, m));
      const ys = train.ys.map((y) => tf.slice(y, start, m));
      try {
        const block = await projectedOutputGradients(adapter, order, xs, ys, o, () => projections, (p) => (projections = p));
        phi.set(block.phi, start * d);
        weight.set(block.q, start);
      } finally {
        tf.dispose([...xs, ...ys]);
      }
      await yieldTurn();
    }
    // Kernel Phi^T Phi + lambda I, in double precision.
    const kernel = new Float64Array(d * d);
    for (let r = 0; r < n; r++) {
      const row = r * d;
      for (let a = 0; a < d; a++) {
        const va = phi[row + a]!;
        if (va === 0) continue;
        const ka = a * d;
        for (let b = a; b < d; b++) kernel[ka + b]! += va * phi[row + b]!;
      }
    }
    let trace = 0;
    for (let a = 0; a < d; a++) {
      trace += kernel[a * d + a]!;
      for (let b = 0; b < a; b++) kernel[a * d + b] = kernel[b * d + a]!;
    }
    const lambda = o.lambda ?? (TRAK_LAMBDA_SCALE * trace) / d;
    for (let a = 0; a < d; a++) kernel[a * d + a]! += lambda;
    const chol = cholesky(kernel, d, path);
    // x_j = K^-1 phi_q_j, then score(i, j) = phi_i . x_j * Q_ii.
    const x = new Float64Array(q * d);
    for (let j = 0; j < q; j++) x.set(choleskySolve(chol, d, phiQ.subarray(j * d, (j + 1) * d)), j * d);
    for (let r = 0; r < n; r++) {
      const row = r * d;
      for (let j = 0; j < q; j++) {
        let s = 0;
        const xj = j * d;
        for (let a = 0; a < d; a++) s += phi[row + a]! * x[xj + a]!;
        into[r * q + j]! += s * weight[r]!;
      }
    }
    return { dim: d, lambda };
  } finally {
    restore();
    disposeProjections(projections);
    // As in tracin(): the optimizer loaded with the checkpoint is not the model's to dispose.
    model.optimizer?.dispose();
    model.dispose();
  }
}

/**
 * Rows' projected gradients of the output f, `[rows, D]` (Float64), and their Q weights. The
 * projections are made on the first call (from the layers' piece shapes) and reused after.
 */
async function projectedOutputGradients(
  adapter: ModelAdapter,
  order: readonly string[],
  xs: readonly tf.Tensor[],
  ys: readonly tf.Tensor[],
  o: ResolvedTrakOptions,
  get: () => Projection[],
  set: (p: Projection[]) => void,
): Promise<{ phi: Float64Array; q: Float64Array; dim: number }> {
  const rows = xs[0]!.shape[0]!;
  const group = rowGroup(xs, ys, true);
  const pass = targetPass(group, adapter);
  try {
    // The capture's rows may be new tensors (reshapes): read them inside the tidy; the projections made on the first call are kept.
    const sketch = tf.tidy(() => {
      const layers = ordered(pass.capture.rows(rows), order);
      if (get().length === 0) {
        // tf.js treats a seed of 0 as no seed (Math.random): seeds from 2 seed + 1 (seed >= 0) are never 0.
        const made = makeProjections(layers.flatMap((l) => l.layout.pieces), o.dim, 2 * o.seed + 1);
        for (const p of made) {
          tf.keep(p.pa);
          tf.keep(p.pb);
        }
        set(made);
      }
      return sketchRows(layers, get());
    });
    const [values, losses] = await Promise.all([sketch.data(), pass.losses.data()]);
    const dim = sketch.shape[1];
    sketch.dispose();
    const phi = new Float64Array(rows * dim);
    const q = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      const loss = losses[r]!;
      // grad f = -grad loss / (1 - p_y) with p_y = exp(-loss); -expm1(-loss) keeps 1 - p_y accurate near p_y = 1.
      const oneMinusP = o.output === 'margin' ? Math.max(-Math.expm1(-loss), 1e-12) : 1;
      if (o.output === 'margin' && !(loss >= 0)) {
        throw new InrunError(`output 'margin' needs a cross-entropy loss (loss = -log p_y >= 0), got a row loss of ${loss}: use output: 'loss'`, { field: 'output' });
      }
      q[r] = oneMinusP;
      const scale = -1 / oneMinusP;
      for (let a = 0; a < dim; a++) phi[r * dim + a] = values[r * dim + a]! * scale;
    }
    return { phi, q, dim };
  } finally {
    pass.capture.dispose();
    pass.losses.dispose();
    group.layout.membership.dispose();
  }
}

/** Lower Cholesky factor of a symmetric positive definite d x d matrix (row-major). */
function cholesky(a: Float64Array, d: number, path: string): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j]!;
      for (let t = 0; t < j; t++) s -= l[i * d + t]! * l[j * d + t]!;
      if (i === j) {
        if (!(s > 0)) throw new InrunError(`the TRAK kernel at ${path} is singular: give a positive lambda (or fewer projected dimensions than training rows)`, { field: 'lambda' });
        l[i * d + i] = Math.sqrt(s);
      } else {
        l[i * d + j] = s / l[j * d + j]!;
      }
    }
  }
  return l;
}

function choleskySolve(l: Float64Array, d: number, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = b[i]!;
    for (let t = 0; t < i; t++) s -= l[i * d + t]! * y[t]!;
    y[i] = s / l[i * d + i]!;
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let t = i + 1; t < d; t++) s -= l[t * d + i]! * x[t]!;
    x[i] = s / l[i * d + i]!;
  }
  return x;
}

function ordered(rows: ReadonlyMap<string, LayerRows>, order: readonly string[]): LayerRows[] {
  return order.flatMap((name) => {
    const r = rows.get(name);
    return r === undefined ? [] : [r];
  });
}
