// One checkpoint's TRAK features: projected output gradients of the training rows (from the run's stored sketches, or computed) and of the queries, with the Q weights.
import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint } from '../run/checkpoint.js';
import { InrunError } from '../errors.js';
import { yieldTurn } from '../event-loop.js';
import type { LayerRows, PieceShape } from '../ghost/types.js';
import { disposeProjections, makeProjections, sketchRows, type Projection } from '../ghost/sketch.js';
import { lastLayer, planLayers } from '../layers/plan.js';
import { adaptModel, type ModelAdapter } from '../model/adapter.js';
import { rowGroup, targetPass } from '../scoring/targets.js';
import type { ExampleId } from '../types.js';
import { checkFiniteRows, checkInputShapes } from './finite-rows.js';
import { checkBatchLabels } from '../scoring/labels.js';
import { hasSketches, readSketches, type StoredSketches } from './stored-sketches.js';
import type { ResolvedTrakOptions } from './trak-options.js';

/** Rows as trak() checks them (tensors split by input, ids). */
export interface TrakRows {
  readonly xs: readonly tf.Tensor[];
  readonly ys: readonly tf.Tensor[];
  readonly ids: readonly ExampleId[];
}

/** What a checkpoint gives the kernel: everything is row-major Float64. */
export interface TrakFeatures {
  /** Projected width D. */
  readonly dim: number;
  /** `'sketches'`: the training rows' gradients are the run's stored sketches; `'checkpoint'`: computed at the checkpoint's weights. */
  readonly from: 'sketches' | 'checkpoint';
  /** The queries' projected output gradients, q x D. */
  readonly queries: Float64Array;
  /** The training rows' projected output gradients Phi, n x D (a row the stored sketches lack is zero). */
  readonly phi: Float64Array;
  /** Q_ii per training row (1 - p_y for the margin, 1 for the loss). */
  readonly weight: Float64Array;
}

/**
 * Runs of an ensemble project with their own seeds, so that averaging over runs also averages out the
 * projection's noise (docs/methods.md, "TRAK from checkpoints"): run r's piece i draws from seeds
 * 2 (seed + RUN_SEEDS r) + 1 + 2i and the next; 1,000 seeds apart, runs share none below 1,000 pieces.
 */
export const RUN_SEEDS = 1000;

/**
 * The features of checkpoint `path` of ensemble member `run` (docs/methods.md, "TRAK from checkpoints").
 * With `sketches: 'stored'` and a `sketches.json` in the folder, Phi is built from the run's stored
 * sketches (their projection: size and seed as the run had them; `dim` and `seed` do not apply) and only
 * the queries' gradients are computed here; else every row is projected here with `dim` and the run's seed.
 */
export async function trakFeatures(path: string, o: ResolvedTrakOptions, train: TrakRows, queries: TrakRows, run: number): Promise<TrakFeatures> {
  // Refused as tracin() refuses them: a non-finite row would give NaN scores (or a misleading loss error), a row of the wrong shape a raw tf.js error.
  for (const [field, t] of [['train.xs', train.xs], ['queries.xs', queries.xs], ['train.ys', train.ys], ['queries.ys', queries.ys]] as const) await checkFiniteRows(field, t);
  const stored = o.sketches === 'stored' && hasSketches(path) ? readSketches(path) : null;
  const model = await loadCheckpoint(path);
  const adapter = adaptModel(model, undefined);
  let restore: (() => void) | null = null;
  let projections: Projection[] = [];
  try {
    checkInputShapes('train.xs', model, train.xs);
    checkInputShapes('queries.xs', model, queries.xs);
    await checkBatchLabels(model, [...train.ys], 'train.ys');
    await checkBatchLabels(model, [...queries.ys], 'queries.ys');
    // The margin needs each training row's p_y at this checkpoint: a forward pass (no backward) when the gradients are stored.
    const trainLosses = stored !== null && o.output === 'margin' ? await forwardLosses(adapter, train, o.batchSize) : null;
    const plan = planLayers(model, o.layers === 'last' ? [lastLayer(model)] : o.layers);
    restore = plan.instrument();
    const order = plan.covered.map((l) => l.name);
    const make = stored === null ? (pieces: PieceShape[]) => makeProjections(pieces, o.dim, 2 * (o.seed + RUN_SEEDS * run) + 1) : storedProjections(stored, path);
    const state = { get: () => projections, set: (p: Projection[]) => (projections = p), make };
    const first = await projectedOutputGradients(adapter, order, queries.xs, queries.ys, o.output, state);
    const d = first.dim;
    const n = train.ids.length;
    if (stored !== null) return { dim: d, from: 'sketches', queries: first.phi, ...fromStored(stored, path, train.ids, trainLosses, o.output) };
    const phi = new Float64Array(n * d);
    const weight = new Float64Array(n);
    for (let start = 0; start < n; start += o.batchSize) {
      const m = Math.min(o.batchSize, n - start);
      const xs = train.xs.map((x) => tf.slice(x, start, m));
      const ys = train.ys.map((y) => tf.slice(y, start, m));
      try {
        const block = await projectedOutputGradients(adapter, order, xs, ys, o.output, state);
        phi.set(block.phi, start * d);
        weight.set(block.q, start);
      } finally {
        tf.dispose([...xs, ...ys]);
      }
      // A queued shard's worker renews its job lock on a timer: give timers a turn every batch (docs/scale-out.md).
      await yieldTurn();
    }
    return { dim: d, from: 'checkpoint', queries: first.phi, phi, weight };
  } finally {
    restore?.();
    disposeProjections(projections);
    // As in tracin(): the optimizer loaded with the checkpoint is not the model's to dispose.
    model.optimizer?.dispose();
    model.dispose();
  }
}

/** The run's projections, rebuilt from its size and seed once the queries' pieces are known to be the run's. */
function storedProjections(stored: StoredSketches, path: string): (pieces: PieceShape[]) => Projection[] {
  return (pieces) => {
    if (JSON.stringify(pieces) !== JSON.stringify(stored.layers.flatMap((l) => l.pieces))) {
      throw new InrunError(`the sketches in ${path} were taken over other layers than trak() covers at this checkpoint: pass the run's layers, or sketches: 'recompute'`, { field: 'layers', code: 'bad_checkpoint' });
    }
    return makeProjections(pieces, stored.size, stored.seed);
  };
}

/**
 * Phi from stored loss-gradient sketches s_i: grad f = -s_i / (1 - p_i) for the margin (p_i from
 * this checkpoint's forward pass), -s_i for the loss. Rows the run had not seen by this checkpoint
 * are zero (no gradient stored: they add nothing, as in `tracin({ train: 'sketches' })`).
 */
function fromStored(stored: StoredSketches, path: string, ids: readonly ExampleId[], losses: Float32Array | null, output: 'margin' | 'loss'): { phi: Float64Array; weight: Float64Array } {
  const d = stored.dim;
  const at = new Map(stored.ids.map((id, r) => [id, r]));
  const phi = new Float64Array(ids.length * d);
  const weight = new Float64Array(ids.length).fill(1);
  let found = 0;
  ids.forEach((id, i) => {
    const r = at.get(id);
    if (losses !== null) weight[i] = oneMinusP(losses[i]!);
    if (r === undefined) return;
    found++;
    const scale = -1 / weight[i]!;
    for (let a = 0; a < d; a++) phi[i * d + a] = stored.rows[r * d + a]! * scale;
  });
  if (found === 0 && ids.length > 0) {
    throw new InrunError(`the sketches in ${path} hold none of the training rows' ids (they have ${stored.ids.length} other ids): pass the run's ids, or sketches: 'recompute'`, { field: 'train.ids', code: 'bad_checkpoint' });
  }
  if (output === 'loss') weight.fill(1);
  return { phi, weight };
}

/** 1 - p_y from the row's cross-entropy loss -log p_y; -expm1(-loss) keeps it accurate near p_y = 1. */
function oneMinusP(loss: number): number {
  if (!(loss >= 0)) {
    throw new InrunError(`output 'margin' needs a cross-entropy loss (loss = -log p_y >= 0), got a row loss of ${loss}: use output: 'loss'`, { field: 'output' });
  }
  return Math.max(-Math.expm1(-loss), 1e-12);
}

/** The model's loss on each row at the loaded weights, forward only, in batches. */
async function forwardLosses(adapter: ModelAdapter, rows: TrakRows, batchSize: number): Promise<Float32Array> {
  const n = rows.ids.length;
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const losses = tf.tidy(() => adapter.perExampleLoss(rows.ys.map((y) => tf.slice(y, start, m)), adapter.forward(rows.xs.map((x) => tf.slice(x, start, m)))));
    out.set(await losses.data(), start);
    losses.dispose();
    await yieldTurn();
  }
  return out;
}

interface ProjectionState {
  get(): Projection[];
  set(p: Projection[]): void;
  make(pieces: PieceShape[]): Projection[];
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
  output: 'margin' | 'loss',
  state: ProjectionState,
): Promise<{ phi: Float64Array; q: Float64Array; dim: number }> {
  const rows = xs[0]!.shape[0]!;
  const group = rowGroup(xs, ys, true);
  const pass = targetPass(group, adapter);
  try {
    // The capture's rows may be new tensors (reshapes): read them inside the tidy; the projections made on the first call are kept.
    const sketch = tf.tidy(() => {
      const layers = ordered(pass.capture.rows(rows), order);
      if (state.get().length === 0) {
        const made = state.make(layers.flatMap((l) => l.layout.pieces));
        for (const p of made) {
          tf.keep(p.pa);
          tf.keep(p.pb);
        }
        state.set(made);
      }
      return sketchRows(layers, state.get());
    });
    const [values, losses] = await Promise.all([sketch.data(), pass.losses.data()]);
    const dim = sketch.shape[1];
    sketch.dispose();
    const phi = new Float64Array(rows * dim);
    const q = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      // grad f = -grad loss / (1 - p_y) with p_y = exp(-loss).
      q[r] = output === 'margin' ? oneMinusP(losses[r]!) : 1;
      const scale = -1 / q[r]!;
      for (let a = 0; a < dim; a++) phi[r * dim + a] = values[r * dim + a]! * scale;
    }
    return { phi, q, dim };
  } finally {
    pass.capture.dispose();
    pass.losses.dispose();
    group.layout.membership.dispose();
  }
}

function ordered(rows: ReadonlyMap<string, LayerRows>, order: readonly string[]): LayerRows[] {
  return order.flatMap((name) => {
    const r = rows.get(name);
    return r === undefined ? [] : [r];
  });
}
