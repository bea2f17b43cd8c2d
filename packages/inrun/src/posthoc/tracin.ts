// tracin(): TracIn from checkpoints (TracInCP), exact or from sketches, with top-k proponents and opponents.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkFiniteRows, checkInputShapes } from './finite-rows.js';
import { isCheckpointFolder, loadCheckpoint, readCheckpointInfo, resolveCheckpoint } from '../run/checkpoint.js';
import { InrunError, invalid, preview } from '../errors.js';
import { yieldTurn } from '../event-loop.js';
import { SourceSums, type SourceInfluence } from './source-sums.js';
import { TopK, type Influence } from './top-k.js';
import { stepProducts } from '../ghost/products.js';
import type { LayerRows, PieceShape } from '../ghost/rows.js';
import { disposeProjections, makeProjections, sketchRows, type Projection } from '../ghost/sketch.js';
import type { Capture } from '../hooks/capture.js';
import { checkIds } from '../hooks/ids.js';
import type { Restore } from '../hooks/restore.js';
import { lastLayer, planLayers } from '../layers/plan.js';
import { adaptModel, tensorList, type ModelAdapter } from '../attach/model.js';
import { disposePasses, perRowLayout, rowGroup, targetPass } from '../scoring/targets.js';
import type { ExampleId } from '../types.js';

/** Rows with labels: tensors (first axis = example) and optional ids (default: row indices). */
export interface LabelledRows {
  readonly xs: tf.Tensor | readonly tf.Tensor[];
  readonly ys: tf.Tensor | readonly tf.Tensor[];
  readonly ids?: readonly ExampleId[];
}

/** Options of {@link tracin}. */
export interface TracInOptions {
  /** Checkpoint folders (from `run.checkpoint` or `saveCheckpoint`), or one folder holding `step-*` checkpoints. */
  readonly checkpoints: string | readonly string[];
  /**
   * The training examples, streamed through each checkpoint's model in batches; or `'sketches'`: the
   * gradient sketches saved with each checkpoint by a run with the `sketch` option (no pass over the
   * training data; each example's gradient is the one from the step it was last seen before the checkpoint).
   */
  readonly train: LabelledRows | 'sketches';
  /** The examples to explain (test examples, known or not when training ran). */
  readonly queries: LabelledRows;
  /** Proponents and opponents kept per query. @defaultValue 10 */
  readonly k?: number;
  /** Also compute every training example's self-influence. @defaultValue true */
  readonly selfInfluence?: boolean;
  /**
   * Parameters the scores cover: every supported layer, a list of names, the embedding layers
   * (TracIn-WE), or `'last'`: the last Dense layer (Captum's TracInCPFast, (h.h' + 1)(e.e')).
   * @defaultValue 'all'
   */
  readonly layers?: 'all' | 'last' | 'embedding' | readonly string[];
  /** Training rows per pass. @defaultValue 256 */
  readonly batchSize?: number;
  /** Step size per checkpoint. @defaultValue each checkpoint's learning rate */
  readonly learningRates?: readonly number[];
  /**
   * Random-projection sketches instead of exact products (Captum's TracInCPFastRandProj): each
   * layer's inputs and output gradients projected to `size` dimensions. Unbiased, cheaper per pair.
   */
  readonly sketch?: { readonly size: number; readonly seed?: number };
  /** Ghost path of exact products. @defaultValue 'auto' */
  readonly ghostPath?: 'auto' | 'pairwise' | 'materialised';
  /**
   * The source (dataset, shard, vendor) of each training row, in training order, or by example id:
   * the result then also sums every query's scores over each source's rows ({@link TracInResult.sources}),
   * TracIn at the dataset level beside UnTrac (docs/methods.md). Not with `train: 'sketches'`.
   */
  readonly sources?: readonly string[] | ReadonlyMap<ExampleId, string>;
  /**
   * Also return every (training row, query) score ({@link TracInResult.matrix}): n x q numbers, so for
   * sets small enough to hold, or one shard at a time. Not with `train: 'sketches'`. @defaultValue false
   */
  readonly matrix?: boolean;
}

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

/** Sketches a run saved with a checkpoint. */
interface StoredSketches {
  readonly size: number;
  readonly seed: number;
  readonly dim: number;
  /** Covered layers in model order, each with its pieces' shapes. */
  readonly layers: readonly { readonly name: string; readonly pieces: readonly PieceShape[] }[];
  readonly ids: readonly ExampleId[];
  readonly rows: Float32Array;
}

function readSketches(path: string): StoredSketches {
  const file = join(path, 'sketches.json');
  if (!existsSync(file)) throw new InrunError(`no sketches in ${path}: train the run with the sketch option`, { field: 'train', code: 'bad_checkpoint' });
  const index = JSON.parse(readFileSync(file, 'utf8')) as Omit<StoredSketches, 'rows'>;
  const bytes = readFileSync(join(path, 'sketches.f32'));
  return { ...index, rows: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
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

/** Checkpoint folders: the list given, or the `step-*` folders of one folder, in step order. */
export function checkpointFolders(spec: string | readonly string[]): string[] {
  if (typeof spec !== 'string') return spec.map((p) => resolveCheckpoint(p));
  if (isCheckpointFolder(spec)) return [spec];
  const steps = existsSync(spec) ? readdirSync(spec).filter((f) => /^step-\d+$/.test(f)).sort() : [];
  if (steps.length === 0) throw new InrunError(`no checkpoints in ${spec} (expected step-* folders)`, { field: 'checkpoints', code: 'bad_checkpoint' });
  return steps.map((f) => join(spec, f));
}

/** Rows as `tracin()` and `trak()` take them: tensors checked, ids checked or numbered 0..n-1; errors name `field`. */
export function checkRows(field: string, rows: LabelledRows): { xs: tf.Tensor[]; ys: tf.Tensor[]; ids: ExampleId[] } {
  if (rows === null || typeof rows !== 'object') invalid(field, '{ xs, ys, ids? }', rows);
  const xs = tensorList(rows.xs);
  const ys = tensorList(rows.ys);
  if ([...xs, ...ys].some((t) => !(t instanceof tf.Tensor))) invalid(`${field}.xs`, 'tensors', rows.xs);
  const n = xs[0]!.shape[0]!;
  const ids = rows.ids === undefined ? Array.from({ length: n }, (_, i) => i) : checkIds(rows.ids, `${field}.ids`, n);
  return { xs, ys, ids };
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
  const k = options.k ?? 10;
  if (!Number.isInteger(k) || k < 1) invalid('k', 'a positive integer', k);
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) invalid('batchSize', 'a positive integer', batchSize);
  const fromSketches = options.train === 'sketches';
  if (fromSketches && (options.sketch !== undefined || options.layers !== undefined)) {
    throw new InrunError("train: 'sketches' uses the run's own projections and layers; leave out sketch and layers", { field: 'train' });
  }
  if (fromSketches && options.matrix === true) throw new InrunError("matrix needs the training rows: not with train: 'sketches'", { field: 'matrix', code: 'invalid_option' });
  if (fromSketches && options.sources !== undefined) throw new InrunError("sources need the training rows: not with train: 'sketches'", { field: 'sources', code: 'invalid_option' });
  const sketch = options.sketch;
  if (sketch !== undefined && !(Number.isInteger(sketch.size) && sketch.size >= 1)) invalid('sketch.size', 'a positive integer', sketch.size);
  const train = options.train === 'sketches' ? null : checkRows('train', options.train);
  const queries = checkRows('queries', options.queries);
  if (train !== null) await checkFiniteRows('train.xs', train.xs);
  await checkFiniteRows('queries.xs', queries.xs);
  if (train !== null) await checkFiniteRows('train.ys', train.ys);
  await checkFiniteRows('queries.ys', queries.ys);
  const paths = checkpointFolders(options.checkpoints);
  if (options.learningRates !== undefined && options.learningRates.length !== paths.length) {
    invalid('learningRates', `${paths.length} numbers, one per checkpoint`, options.learningRates);
  }
  const wantSelf = !fromSketches && (options.selfInfluence ?? true);
  const q = queries.ids.length;
  const grouping = train === null || options.sources === undefined ? null : sourceSlots(options.sources, train.ids, q);
  const checkpoints: Checkpoint[] = [];
  try {
    for (const [i, path] of paths.entries()) {
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
      } catch (error) {
        model.dispose();
        throw error;
      }
      const adapter = adaptModel(model, undefined);
      const layers = options.layers === 'last' ? [lastLayer(model)] : (options.layers ?? 'all');
      const plan = planLayers(model, layers);
      const restore = plan.instrument();
      const order = plan.covered.map((l) => l.name);
      const group = rowGroup(queries.xs, queries.ys, true);
      let capture: Capture | null = null;
      let querySketch: tf.Tensor2D | null = null;
      let projections: Projection[] = [];
      const stored = fromSketches ? readSketches(path) : null;
      try {
        const pass = targetPass(group, adapter);
        pass.losses.dispose();
        capture = pass.capture;
        if (sketch !== undefined || stored !== null) {
          const rows = ordered(capture.rows(q), order);
          const layouts = rows.flatMap((r) => r.layout.pieces);
          if (stored !== null && JSON.stringify(layouts) !== JSON.stringify(stored.layers.flatMap((l) => l.pieces))) {
            throw new InrunError(`the sketches in ${path} were taken over other layers than this checkpoint's model covers`, { field: 'train', code: 'bad_checkpoint' });
          }
          projections = makeProjections(layouts, stored?.size ?? sketch!.size, stored?.seed ?? sketch!.seed ?? 0);
          querySketch = tf.tidy(() => tf.keep(sketchRows(ordered(capture!.rows(q), order), projections)));
        }
      } finally {
        group.layout.membership.dispose();
      }
      checkpoints.push({ path, step: info.step, learningRate: options.learningRates?.[i] ?? info.learningRate, model, adapter, order, restore, queries: capture, querySketch, projections, stored });
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
    const matrix = options.matrix === true ? new Float32Array(train.ids.length * q) : null;
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
                sketch === undefined ? [{ rows: c.queries.rows(q), layout: queryLayout }] : [],
                { target: sketch === undefined, targetEmbedding: false, self: wantSelf, tokens: null },
                options.ghostPath ?? 'auto',
              );
              const pair = sketch === undefined ? products.target! : tf.matMul(sketchRows(ordered(rows, c.order), c.projections), c.querySketch!, false, true);
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

/** Each training row's slot in the per-source sums (first-seen order), from a per-row list or a map by id (every row must have one). */
function sourceSlots(sources: readonly string[] | ReadonlyMap<ExampleId, string>, ids: readonly ExampleId[], queries: number): { sums: SourceSums; of: Uint32Array } {
  const byRow = sources instanceof Map;
  if (!byRow && !Array.isArray(sources)) invalid('sources', 'one source name per training row, or a Map from example id to source', sources);
  if (!byRow && (sources as readonly string[]).length !== ids.length) invalid('sources', `${ids.length} names, one per training row`, `${(sources as readonly string[]).length} names`);
  const sums = new SourceSums(queries);
  const of = new Uint32Array(ids.length);
  ids.forEach((id, r) => {
    const name = byRow ? (sources as ReadonlyMap<ExampleId, string>).get(id) : (sources as readonly string[])[r];
    if (typeof name !== 'string') throw new InrunError(`training row ${r} (id ${preview(id)}) has no source`, { field: `sources[${r}]`, code: 'invalid_option' });
    of[r] = sums.slot(name);
  });
  return { sums, of };
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
