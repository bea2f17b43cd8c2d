// Options of tracin(): the types, their defaults (applied once, here) and the checks that name the field at fault.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tensorList } from '../model/tensor-list.js';
import { InrunError, invalid, preview } from '../errors.js';
import { checkIds } from '../hooks/ids.js';
import { isCheckpointFolder, resolveCheckpoint } from '../run/checkpoint.js';
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
  /** Also compute every training example's self-influence. @defaultValue true (false with `train: 'sketches'`) */
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
   * layer's inputs and output gradients projected to `size` dimensions (`seed` @defaultValue 0).
   * Unbiased, cheaper per pair.
   * @defaultValue none (exact products)
   */
  readonly sketch?: { readonly size: number; readonly seed?: number };
  /** Ghost path of exact products. @defaultValue 'auto' */
  readonly ghostPath?: 'auto' | 'pairwise' | 'materialised';
  /**
   * The source (dataset, shard, vendor) of each training row, in training order, or by example id:
   * the result then also sums every query's scores over each source's rows ({@link TracInResult.sources}),
   * TracIn at the dataset level beside UnTrac (docs/methods.md). Not with `train: 'sketches'`.
   * @defaultValue none
   */
  readonly sources?: readonly string[] | ReadonlyMap<ExampleId, string>;
  /**
   * Also return every (training row, query) score ({@link TracInResult.matrix}): n x q numbers, so for
   * sets small enough to hold, or one shard at a time. Not with `train: 'sketches'`. @defaultValue false
   */
  readonly matrix?: boolean;
}

/** Rows after {@link checkRows}: tensor lists and one id per row. */
export interface CheckedRows {
  readonly xs: tf.Tensor[];
  readonly ys: tf.Tensor[];
  readonly ids: ExampleId[];
}

/** {@link TracInOptions} with every default applied and every input checked ({@link resolveTracinOptions}). */
export interface ResolvedTracinOptions {
  /** Checkpoint folders, in step order. */
  readonly paths: readonly string[];
  /** The training rows; null with `train: 'sketches'`. */
  readonly train: CheckedRows | null;
  readonly queries: CheckedRows;
  readonly k: number;
  readonly batchSize: number;
  /** Always false with `train: 'sketches'`. */
  readonly selfInfluence: boolean;
  readonly layers: 'all' | 'last' | 'embedding' | readonly string[];
  /** One step size per checkpoint; null: each checkpoint's own learning rate. */
  readonly learningRates: readonly number[] | null;
  readonly sketch: { readonly size: number; readonly seed: number } | null;
  readonly ghostPath: 'auto' | 'pairwise' | 'materialised';
  /** Each training row's source, in training order; null when `sources` was not given. */
  readonly sources: readonly string[] | null;
  readonly matrix: boolean;
}

/** Checkpoint folders: the list given, or the `step-*` folders of one folder, in step order. */
export function checkpointFolders(spec: string | readonly string[]): string[] {
  if (typeof spec !== 'string') return spec.map((p) => resolveCheckpoint(p));
  if (isCheckpointFolder(spec)) return [spec];
  // A file (a row file given as --checkpoints, say) holds no checkpoints either.
  const steps = existsSync(spec) && statSync(spec).isDirectory() ? readdirSync(spec).filter((f) => /^step-\d+$/.test(f)).sort() : [];
  if (steps.length === 0) throw new InrunError(`no checkpoints in ${spec} (expected step-* folders)`, { field: 'checkpoints', code: 'bad_checkpoint' });
  return steps.map((f) => join(spec, f));
}

/** Rows as `tracin()` and `trak()` take them: tensors checked, ids checked or numbered 0..n-1; errors name `field`. */
export function checkRows(field: string, rows: LabelledRows): CheckedRows {
  if (rows === null || typeof rows !== 'object') invalid(field, '{ xs, ys, ids? }', rows);
  const xs = tensorList(rows.xs);
  const ys = tensorList(rows.ys);
  if ([...xs, ...ys].some((t) => !(t instanceof tf.Tensor))) invalid(`${field}.xs`, 'tensors', rows.xs);
  const n = xs[0]!.shape[0]!;
  const ids = rows.ids === undefined ? Array.from({ length: n }, (_, i) => i) : checkIds(rows.ids, `${field}.ids`, n);
  return { xs, ys, ids };
}

/** Each training row's source name, from a per-row list or a map by id (every row must have one). */
function rowSources(sources: readonly string[] | ReadonlyMap<ExampleId, string>, ids: readonly ExampleId[]): string[] {
  const byId = sources instanceof Map;
  if (!byId && !Array.isArray(sources)) invalid('sources', 'one source name per training row, or a Map from example id to source', sources);
  if (!byId && (sources as readonly string[]).length !== ids.length) invalid('sources', `${ids.length} names, one per training row`, `${(sources as readonly string[]).length} names`);
  return ids.map((id, r) => {
    const name = byId ? (sources as ReadonlyMap<ExampleId, string>).get(id) : (sources as readonly string[])[r];
    if (typeof name !== 'string') throw new InrunError(`training row ${r} (id ${preview(id)}) has no source`, { field: `sources[${r}]`, code: 'invalid_option' });
    return name;
  });
}

/**
 * Checks every option of {@link tracin} (an {@link InrunError} naming the field) and applies every
 * default, once: the `@defaultValue`s of {@link TracInOptions}. The checkpoint folders are listed (not
 * loaded) and the rows' tensors and ids checked here, so bad input fails before any model is loaded.
 */
export function resolveTracinOptions(options: TracInOptions): ResolvedTracinOptions {
  if (options === null || typeof options !== 'object') invalid('options', '{ checkpoints, train, queries, ... }', options);
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
  const paths = checkpointFolders(options.checkpoints);
  if (options.learningRates !== undefined && options.learningRates.length !== paths.length) {
    invalid('learningRates', `${paths.length} numbers, one per checkpoint`, options.learningRates);
  }
  return {
    paths,
    train,
    queries,
    k,
    batchSize,
    selfInfluence: !fromSketches && (options.selfInfluence ?? true),
    layers: options.layers ?? 'all',
    learningRates: options.learningRates ?? null,
    sketch: sketch === undefined ? null : { size: sketch.size, seed: sketch.seed ?? 0 },
    ghostPath: options.ghostPath ?? 'auto',
    sources: train === null || options.sources === undefined ? null : rowSources(options.sources, train.ids),
    matrix: options.matrix === true,
  };
}
