// tracin(): TracIn from checkpoints (TracInCP), exact or from sketches, with top-k proponents and opponents.
import * as tf from '@tensorflow/tfjs';
import { checkFiniteRows, checkInputShapes } from './finite-rows.js';
import { checkBatchLabels } from '../scoring/labels.js';
import { loadCheckpoint, readCheckpointInfo } from '../run/checkpoint.js';
import { InrunError } from '../errors.js';
import { yieldTurn } from '../event-loop.js';
import { SourceSums, type SourceInfluence } from './source-sums.js';
import { TopK, type Influence } from './top-k.js';
import { stepProducts } from '../ghost/products.js';
import type { LayerRows } from '../ghost/types.js';
import { readSketches, type StoredSketches } from './stored-sketches.js';
import { disposeProjections, makeProjections, sketchRows, type Projection } from '../ghost/sketch.js';
import type { Capture } from '../hooks/capture.js';
import type { Restore } from '../hooks/restore.js';
import { lastLayer, planLayers } from '../layers/plan.js';
import { adaptModel, type ModelAdapter } from '../model/adapter.js';
import { disposePasses, perRowLayout, rowGroup, targetPass } from '../scoring/targets.js';
import type { ExampleId } from '../types.js';
import { resolveTracinOptions, type TracInOptions } from './tracin-options.js';

export type { LabelledRows, TracInOptions } from './tracin-options.js';
export { checkpointFolders, checkRows } from './tracin-options.js';
export type { Influence } from './top-k.js';
export type { SourceInfluence } from './source-sums.js';

export interface TracInResult {
  readonly checkpoints: readonly { readonly path: string; readonly step: number; readonly learningRate: number }[];
  /** Per query, in query order: the training examples with the largest positive scores (proponents) and most negative (opponents). */
  readonly queries: readonly { readonly id: ExampleId; readonly proponents: readonly Influence[]; readonly opponents: readonly Influence[] }[];
  /** sum_c eta_c ||g_z(w_c)||^2 for every training example, in training order; null when not asked. */
  readonly selfInfluence: { readonly ids: readonly ExampleId[]; readonly values: Float64Array } | null;
  /** Per source (first-seen order) when `sources` was given, else null. */
  readonly sources: readonly SourceInfluence[] | null;
  /** With `matrix: true`: every score, row-major (training row r, query j at `r * queries + j`), training order; else null. */
  readonly matrix: Float32Array | null;
}

interface Checkpoint {
  readonly path: string;
  readonly step: number;
  readonly learningRate: number;
  readonly model: tf.LayersModel;
  readonly adapter: ModelAdapter;
  readonly order: readonly string[];
  readonly restore: Restore;
  readonly queries: Capture;
  readonly querySketch: tf.Tensor2D | null;
  readonly projections: Projection[];
  readonly stored: StoredSketches | null;
}

/**
 * TracIn from checkpoints (TracInCP, Pruthi et al. 2020): score(z, z') = sum_c eta_c <g_z(w_c), g_z'(w_c)>
 * over the saved checkpoints, for queries that need not have been known during training. Positive =
 * proponent (training on z lowered the loss on z'). The training set streams through every checkpoint's
 * model in batches with the same ghost kernel as in-run attribution; per-checkpoint products are summed
 * before ranking, so all checkpoints are loaded at once. Memory: the models, the queries' layer rows,
 * one batch, and top-k lists.
 */
export async function tracin(options: TracInOptions): Promise<TracInResult> {
  const o = resolveTracinOptions(options);
  const { train, queries, k, batchSize, sketch } = o;
  const wantSelf = o.selfInfluence;
  // Non-finite rows are refused as attach and untrac refuse them (one asynchronous read each).
  if (train !== null) await checkFiniteRows('train.xs', train.xs);
  await checkFiniteRows('queries.xs', queries.xs);
  if (train !== null) await checkFiniteRows('train.ys', train.ys);
  await checkFiniteRows('queries.ys', queries.ys);
  const q = queries.ids.length;
  const grouping = o.sources === null ? null : sourceSlots(o.sources, q);
  const checkpoints: Checkpoint[] = [];
  try {
    for (const [i, path] of o.paths.entries()) {
      const info = readCheckpointInfo(path);
      let model: tf.LayersModel;
      try {
        model = await loadCheckpoint(path);
      } catch (error) {
        // A cut-short weights file fails inside tf.js: it is a damaged checkpoint, named.
        if (error instanceof InrunError) throw error;
        throw new InrunError(`cannot load the checkpoint ${path} (${error instanceof Error ? error.message : String(error)}): it is damaged or incomplete`, { field: 'checkpoints', code: 'bad_checkpoint', cause: error });
      }
      try {
        if (train !== null) checkInputShapes('train.xs', model, train.xs);
        checkInputShapes('queries.xs', model, queries.xs);
        // Labels of the wrong width would broadcast against the output into wrong scores, without an error.
        if (train !== null) await checkBatchLabels(model, [...train.ys], 'train.ys');
        await checkBatchLabels(model, [...queries.ys], 'queries.ys');
      } catch (error) {
        model.dispose();
        throw error;
      }
      const adapter = adaptModel(model, undefined);
      const layers = o.layers === 'last' ? [lastLayer(model)] : o.layers;
      const plan = planLayers(model, layers);
      const restore = plan.instrument();
      const order = plan.covered.map((l) => l.name);
      const group = rowGroup(queries.xs, queries.ys, true);
      let capture: Capture | null = null;
      let querySketch: tf.Tensor2D | null = null;
      let projections: Projection[] = [];
      const stored = train === null ? readSketches(path) : null;
      try {
        const pass = targetPass(group, adapter);
        pass.losses.dispose();
        capture = pass.capture;
        if (sketch !== null || stored !== null) {
          const rows = ordered(capture.rows(q), order);
          const layouts = rows.flatMap((r) => r.layout.pieces);
          if (stored !== null && JSON.stringify(layouts) !== JSON.stringify(stored.layers.flatMap((l) => l.pieces))) {
            throw new InrunError(`the sketches in ${path} were taken over other layers than this checkpoint's model covers`, { field: 'train', code: 'bad_checkpoint' });
          }
          projections = makeProjections(layouts, stored?.size ?? sketch!.size, stored?.seed ?? sketch!.seed);
          querySketch = tf.tidy(() => tf.keep(sketchRows(ordered(capture!.rows(q), order), projections)));
        }
      } finally {
        group.layout.membership.dispose();
      }
      checkpoints.push({ path, step: info.step, learningRate: o.learningRates === null ? info.learningRate : o.learningRates[i]!, model, adapter, order, restore, queries: capture, querySketch, projections, stored });
    }

    const top = new TopK(q, k);
    if (train === null) {
      return {
        checkpoints: checkpoints.map((c) => ({ path: c.path, step: c.step, learningRate: c.learningRate })),
        queries: await scoreStoredSketches(checkpoints, top, q, batchSize, queries.ids),
        selfInfluence: null,
        sources: null,
        matrix: null,
      };
    }
    const self = wantSelf ? new Float64Array(train.ids.length) : null;
    const matrix = o.matrix ? new Float32Array(train.ids.length * q) : null;
    const queryLayout = perRowLayout(q);
    try {
      for (let start = 0; start < train.ids.length; start += batchSize) {
        const n = Math.min(batchSize, train.ids.length - start);
        const [block, selfBlock] = tf.tidy(() => {
          const xs = train.xs.map((x) => tf.slice(x, start, n));
          const ys = train.ys.map((y) => tf.slice(y, start, n));
          let scores: tf.Tensor2D | null = null;
          let selfSum: tf.Tensor1D | null = null;
          for (const c of checkpoints) {
            const group = rowGroup(xs, ys, false);
            const pass = targetPass(group, c.adapter);
            try {
              const rows = pass.capture.rows(n);
              const products = stepProducts(
                n,
                rows,
                sketch === null ? [{ rows: c.queries.rows(q), layout: queryLayout }] : [],
                { target: sketch === null, targetEmbedding: false, self: wantSelf, tokens: null },
                o.ghostPath,
              );
              const pair = sketch === null ? products.target! : tf.matMul(sketchRows(ordered(rows, c.order), c.projections), c.querySketch!, false, true);
              scores = add(scores, tf.mul(pair, c.learningRate));
              if (products.self !== null) selfSum = add(selfSum, tf.mul(products.self, c.learningRate));
            } finally {
              disposePasses([{ group, pass }]);
              group.layout.membership.dispose();
            }
          }
          return [scores ?? tf.zeros([n, q]), selfSum ?? tf.zeros([n])];
        });
        const [values, selfValues] = await Promise.all([block.data(), selfBlock.data()]);
        tf.dispose([block, selfBlock]);
        matrix?.set(values as Float32Array, start * q);
        // A queued shard's worker renews its job lock on a timer: give timers a turn every batch (docs/scale-out.md).
        await yieldTurn();
        for (let r = 0; r < n; r++) {
          const id = train.ids[start + r]!;
          for (let j = 0; j < q; j++) top.add(j, id, values[r * q + j]!);
          if (self !== null) self[start + r] = selfValues[r]!;
          grouping?.sums.addRow(grouping.of[start + r]!, values, r * q);
        }
      }
    } finally {
      queryLayout.membership.dispose();
    }
    return {
      checkpoints: checkpoints.map((c) => ({ path: c.path, step: c.step, learningRate: c.learningRate })),
      queries: queries.ids.map((id, j) => ({ id, proponents: top.best[j]!, opponents: top.worst[j]! })),
      selfInfluence: self === null ? null : { ids: train.ids, values: self },
      sources: grouping?.sums.list() ?? null,
      matrix,
    };
  } finally {
    for (const c of checkpoints) {
      c.restore();
      c.queries.dispose();
      c.querySketch?.dispose();
      disposeProjections(c.projections);
      // The optimizer loaded with the checkpoint is not the model's to dispose (tf.js keeps its variables): a long-lived worker would leak them per job.
      c.model.optimizer?.dispose();
      c.model.dispose();
    }
  }
}

/**
 * Scores from sketches saved during the run: per checkpoint, the stored rows times the queries'
 * sketches (same projections), summed over checkpoints by example id (an example not yet seen at a
 * checkpoint contributes nothing there), block by block into the top-k lists.
 */
async function scoreStoredSketches(checkpoints: readonly Checkpoint[], top: TopK, q: number, batchSize: number, queryIds: readonly ExampleId[]) {
  const rowOf = checkpoints.map((c) => new Map(c.stored!.ids.map((id, r) => [id, r])));
  const ids: ExampleId[] = [];
  const known = new Set<ExampleId>();
  for (const c of [...checkpoints].reverse()) {
    for (const id of c.stored!.ids) {
      if (known.has(id)) continue;
      known.add(id);
      ids.push(id);
    }
  }
  for (let start = 0; start < ids.length; start += batchSize) {
    const block = ids.slice(start, start + batchSize);
    const scores = tf.tidy(() =>
      checkpoints
        .map((c, i) => {
          const { dim, rows } = c.stored!;
          const gathered = new Float32Array(block.length * dim);
          block.forEach((id, r) => {
            const at = rowOf[i]!.get(id);
            if (at !== undefined) gathered.set(rows.subarray(at * dim, (at + 1) * dim), r * dim);
          });
          return tf.mul(tf.matMul(tf.tensor2d(gathered, [block.length, dim]), c.querySketch!, false, true), c.learningRate);
        })
        .reduce((a, b) => tf.add(a, b)),
    );
    const values = await scores.data();
    scores.dispose();
    await yieldTurn();
    block.forEach((id, r) => {
      for (let j = 0; j < q; j++) top.add(j, id, values[r * q + j]!);
    });
  }
  return queryIds.map((id, j) => ({ id, proponents: top.best[j]!, opponents: top.worst[j]! }));
}

/** Each training row's slot in the per-source sums (first-seen order), from its source name. */
function sourceSlots(sources: readonly string[], queries: number): { sums: SourceSums; of: Uint32Array } {
  const sums = new SourceSums(queries);
  return { sums, of: Uint32Array.from(sources, (name) => sums.slot(name)) };
}

function ordered(rows: ReadonlyMap<string, LayerRows>, order: readonly string[]): LayerRows[] {
  return order.flatMap((name) => {
    const r = rows.get(name);
    return r === undefined ? [] : [r];
  });
}

function add<T extends tf.Tensor>(sum: T | null, term: tf.Tensor): T {
  return (sum === null ? term : tf.add(sum, term)) as T;
}
