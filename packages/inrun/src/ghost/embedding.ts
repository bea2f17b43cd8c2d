// Ghost maths of table pieces (embedding ids and output gradients): pairs, target and self products.
import * as tf from '@tensorflow/tfjs';
import type { EmbeddingRows, GhostPath, ReportedPath, TargetLayout } from './types.js';

/**
 * An embedding layer's per-example table gradients in compact form. Example i's gradient has one row
 * per distinct id w it looked up: the sum of b over its positions holding w. Pairs are numbered by
 * their first position (slot i T + first), so the shapes are static and nothing is read back: `sums`
 * has n T rows, those of non-first positions zero. A sort of each row finds the first positions on
 * cpu and wasm (O(n T log T)); O(n T^2) comparisons do on the GPU backends and where sort keys would
 * not be exact. `scatterND` sums b rows per pair: O(n T dim). Only integers below 2^24 are built on
 * the device: int32 is stored as float on webgl, where larger keys would collide (docs/layers.md,
 * "GPU backends").
 */
export interface EmbeddingPairs {
  /** `[U, dim]`: summed b per (example, id) pair; zero for slots that hold no pair. */
  readonly sums: tf.Tensor2D;
  /** `[U]` int32: the pair's id. */
  readonly words: tf.Tensor1D;
  /** `[U, 1]` int32: the pair's example. */
  readonly owner: tf.Tensor2D;
  /** `[n T, 1]` int32: each position's pair. */
  readonly position: tf.Tensor2D;
  /** U = n T, the number of slots. */
  readonly count: number;
}

/** Call inside `tf.tidy`. */
export function embeddingPairs(train: EmbeddingRows, vocab: number): EmbeddingPairs {
  const [n, t] = train.ids.shape;
  const dim = train.b.shape[2];
  const count = n * t;
  const position = tf.reshape(tf.add(firstPositions(train.ids, vocab), tf.reshape(tf.range(0, count, t, 'int32'), [n, 1])), [count, 1]) as tf.Tensor2D;
  return {
    sums: tf.scatterND(position, tf.reshape(train.b, [count, dim]), [count, dim]) as tf.Tensor2D,
    words: tf.reshape(train.ids, [count]) as tf.Tensor1D,
    // Row r's owner id broadcast against the ids (on the device), not tf.tile of a small range: webgpu tiles
    // small host-resident tensors on the CPU through a synchronous read.
    owner: tf.reshape(tf.add(tf.zerosLike(train.ids), tf.reshape(tf.range(0, n, 1, 'int32'), [n, 1])), [count, 1]) as tf.Tensor2D,
    position,
    count,
  };
}

/** Sort keys id T + (T - 1 - p) stay exact integers on every backend below this (float32's 2^24; webgl stores int32 as float). */
const EXACT_KEYS = 2 ** 24;

/** Backends whose memory is the host's, where `tf.topk` sorts in place without reading anything back. */
const SORTS = new Set(['cpu', 'wasm']);

/**
 * For each position p of each row of `ids [n, T]`, the first position of that row holding the same id.
 * `[n, T]` int32. Each row sorted by the key id T + (T - 1 - p) (`tf.topk`, descending) lists every id's
 * positions in ascending order, its first position first; a group number per run of equal ids carries
 * that first position to the others, and a scatter puts them back in position order. O(n T log T) and
 * about 20 small kernels, against the pairwise comparisons' n T^2 elements (wasm's broadcast
 * `notEqual` over [64, 128, 128] took 130 ms, the sort 2 ms; docs/benchmarks.md, "The fused target pass").
 */
function firstPositions(ids: tf.Tensor2D, vocab: number): tf.Tensor2D {
  const [n, t] = ids.shape;
  if (t === 1) return tf.zeros([n, 1], 'int32') as tf.Tensor2D;
  // The sort on cpu and wasm only: webgl's topk hands rows under 100,000 wide to the CPU through a
  // synchronous read, and webgpu's read 3 tensors back per step (test/backend-webgpu-node.test.ts, 'reads').
  if (vocab * t > EXACT_KEYS || n * t > EXACT_KEYS || !SORTS.has(tf.getBackend())) return firstPositionsPairwise(ids);
  const count = n * t;
  const positions = tf.range(0, t, 1, 'int32');
  const keys = tf.cast(tf.add(tf.mul(ids, t), tf.sub(t - 1, positions)), 'float32');
  // `indices [n, T]`: the row's positions in sorted order; rows offset to index the flattened ids.
  const { indices } = tf.topk(keys, t, true);
  const flat = tf.reshape(tf.add(indices, tf.reshape(tf.range(0, count, t, 'int32'), [n, 1])), [count]);
  const sortedIds = tf.reshape(tf.gather(tf.reshape(ids, [count]), flat), [n, t]);
  // A run of equal ids starts at each row's first slot and wherever the id changes.
  const changes = tf.cast(tf.notEqual(tf.slice(sortedIds, [0, 1], [n, t - 1]), tf.slice(sortedIds, [0, 0], [n, t - 1])), 'int32');
  const starts = tf.reshape(tf.concat([tf.ones([n, 1], 'int32'), changes], 1), [count]);
  // Runs numbered 0.. over the whole batch (a row's first slot always starts one, so runs never span rows).
  // (tf.cumsum returns float32 for int32 input; the counts stay below 2^24, so the cast is exact.)
  const run = tf.reshape(tf.cast(tf.sub(tf.cumsum(starts), 1), 'int32'), [count, 1]);
  const first = tf.scatterND(run, tf.mul(tf.reshape(indices, [count]), starts), [count]);
  return tf.reshape(tf.scatterND(tf.reshape(flat, [count, 1]), tf.gather(first, tf.reshape(run, [count])), [count]), [n, t]) as tf.Tensor2D;
}

/**
 * The same by comparisons: min over q of q + T [ids_q != ids_p], O(n T^2): for vocabularies whose sort
 * keys would pass 2^24, and on the GPU backends. Comparisons and a min reduction: kernels every backend
 * has (`tf.unique` has none on webgpu and reads synchronously on webgl).
 */
function firstPositionsPairwise(ids: tf.Tensor2D): tf.Tensor2D {
  const [n, t] = ids.shape;
  const differs = tf.cast(tf.notEqual(tf.reshape(ids, [n, t, 1]), tf.reshape(ids, [n, 1, t])), 'float32');
  const q = tf.reshape(tf.range(0, t, 1, 'float32'), [1, 1, t]);
  return tf.cast(tf.min(tf.add(q, tf.mul(differs, t)), 2), 'int32') as tf.Tensor2D;
}

/**
 * The target's distinct ids as slots in id order: `slot [K]` for each of the `ids [K]` target
 * positions, `lookup [vocab]` the slot of each id (or `absent` for ids the target lacks), and a static
 * bound `distinct` = min(vocab, K) on their number (slots past the true count stay empty). A presence
 * table and an exclusive cumulative sum: values below vocab only.
 */
function targetSlots(ids: tf.Tensor1D, vocab: number, absent: (distinct: number) => number): { slot: tf.Tensor1D; lookup: tf.Tensor1D; distinct: number } {
  const k = ids.shape[0];
  const distinct = Math.min(vocab, k);
  const present = tf.cast(tf.greater(tf.scatterND(tf.reshape(ids, [k, 1]), tf.ones([k]), [vocab]), 0), 'float32');
  const rank = tf.cumsum(present, 0, true);
  const lookup = tf.cast(tf.add(tf.mul(rank, present), tf.mul(tf.sub(1, present), absent(distinct))), 'int32') as tf.Tensor1D;
  return { slot: tf.cast(tf.gather(rank, ids), 'int32') as tf.Tensor1D, lookup, distinct };
}

/**
 * The compact path's cell of every training position: example * distinct + its id's slot among the
 * target's distinct ids, or the spare cell n * distinct for ids the target lacks (`lookup` holds the
 * spare for them; min() keeps them there after the offset). `[n T]` int32.
 */
function compactCells(ids: tf.Tensor2D, lookup: tf.Tensor1D, distinct: number): tf.Tensor1D {
  const [n, t] = ids.shape;
  const spare = n * distinct;
  const offsets = tf.reshape(tf.range(0, spare, distinct, 'int32'), [n, 1]);
  return tf.reshape(tf.minimum(tf.add(tf.reshape(tf.gather(lookup, tf.reshape(ids, [n * t])), [n, t]), offsets), tf.scalar(spare, 'int32')), [n * t]) as tf.Tensor1D;
}

/** `||G_i||^2`: the squared pair sums, added up per example. `[n]`. Call inside `tf.tidy`. */
export function embeddingSelfProducts(pairs: EmbeddingPairs, n: number): tf.Tensor1D {
  return tf.scatterND(pairs.owner, tf.sum(tf.square(pairs.sums), 1), [n]) as tf.Tensor1D;
}

/** `<G_i, G_T>` per example and target, and per-position terms whose sum per (example, id) is that word's share. */
export interface EmbeddingTargetProducts {
  /** The path that ran (`compact` is the materialised path over the target's distinct ids). */
  readonly path: ReportedPath;
  /** `[n, targets]`. */
  readonly perExample: tf.Tensor2D;
  /**
   * `[n, T, targets]`: TracIn-WE's per-token terms. Summed over the positions of one id they give the
   * word-level score s(w) = <sum_{p: x_p = w} b_p, sum_{q: x'_q = w} b'_q> (docs/methods.md, "TracIn-WE and per-token scores").
   */
  perPosition(): tf.Tensor3D;
}

/**
 * Target products for one embedding layer, by one of three paths (see {@link embeddingVariantCosts}):
 * - pairwise: every training position against every target position (tiny shapes only);
 * - gather: each target's b rows scattered into a `[vocab, dim]` table (scatterND adds duplicate
 *   ids), read at the training pairs' ids;
 * - compact: the same tables over the target's distinct ids only, and the training b rows scattered
 *   into an `[n, targetIds, dim]` table, then one matMul. No per-row gather (slow on tf.js' cpu and
 *   wasm kernels), but memory grows with n x targetIds x dim.
 * Call inside `tf.tidy`.
 */
export function embeddingTargetProducts(
  train: EmbeddingRows,
  pairs: () => EmbeddingPairs,
  target: EmbeddingRows,
  layout: TargetLayout,
  vocab: number,
  path: GhostPath,
): EmbeddingTargetProducts {
  const [n, t] = train.ids.shape;
  const dim = train.b.shape[2];
  const [k, tk] = target.ids.shape;
  const targets = layout.ranges.length;
  if (path === 'pairwise') {
    const same = tf.cast(tf.equal(tf.reshape(train.ids, [n * t, 1]), tf.reshape(target.ids, [1, k * tk])), 'float32');
    const gb = tf.matMul(tf.reshape(train.b, [n * t, dim]), tf.reshape(target.b, [k * tk, dim]), false, true);
    const perRow = tf.sum(tf.reshape(tf.mul(same, gb), [n * t, k, tk]), 2);
    const terms = tf.reshape(tf.matMul(perRow, layout.membership), [n, t, targets]) as tf.Tensor3D;
    return { path, perExample: tf.sum(terms, 1) as tf.Tensor2D, perPosition: () => terms };
  }
  // The target's distinct ids (a static bound on their number) and each target position's slot among them.
  const { slot: targetSlot, lookup, distinct } = targetSlots(tf.reshape(target.ids, [k * tk]) as tf.Tensor1D, vocab, (d) => n * d);
  if (chooseEmbeddingVariant(n, t, dim, distinct, targets, train.ids.size) === 'gather') {
    const p = pairs();
    const pairTerms = embeddingPairTerms(p, embeddingGradients(target, layout.ranges, vocab));
    return {
      path,
      perExample: tf.scatterND(p.owner, pairTerms, [n, targets]) as tf.Tensor2D,
      perPosition: () => {
        // Each pair's term split evenly over its positions: exact once positions are grouped by id.
        const positions = tf.maximum(tf.scatterND(p.position, tf.ones([n * t]), [p.count]), 1);
        const share = tf.div(pairTerms, tf.reshape(positions, [p.count, 1]));
        return tf.reshape(tf.gather(share, tf.reshape(p.position, [n * t])), [n, t, targets]) as tf.Tensor3D;
      },
    };
  }
  // Compact: the training b rows scattered into [n, distinct, dim] cells, with a spare for absent ids.
  const cell = compactCells(train.ids, lookup, distinct);
  const cells = tf.reshape(cell, [n * t, 1]);
  // One spare "example" of `distinct` rows past the end: absent positions land in its first row. Its
  // product row is dropped after the matMul (slicing the [n * distinct, dim] table itself is a copy
  // that costs more than the product on wasm).
  const withSpare = tf.scatterND(cells, tf.reshape(train.b, [n * t, dim]), [(n + 1) * distinct, dim]);
  // The targets' gradients over their distinct ids only: [distinct * dim, targets].
  const compact = embeddingGradients({ ids: tf.reshape(targetSlot, [k, tk]) as tf.Tensor2D, b: target.b }, layout.ranges, distinct);
  const tables = tf.transpose(tf.reshape(compact, [targets, distinct * dim]));
  return {
    path: 'compact',
    perExample: tf.slice(tf.matMul(tf.reshape(withSpare, [n + 1, distinct * dim]), tables), 0, n) as tf.Tensor2D,
    perPosition: () => {
      const perCell = tf.slice(withSpare, 0, n * distinct);
      // Per (example, target id) terms, split evenly over the positions holding that id.
      const perTarget = tf.reshape(tf.transpose(tf.reshape(tables, [distinct, dim, targets]), [0, 2, 1]), [1, distinct, targets, dim]);
      const byCell = tf.sum(tf.mul(tf.reshape(perCell, [n, distinct, 1, dim]), perTarget), 3); // [n, distinct, targets]
      const padded = tf.concat([tf.reshape(byCell, [n * distinct, targets]), tf.zeros([1, targets])], 0);
      const positions = tf.scatterND(cells, tf.ones([n * t]), [n * distinct + 1]);
      const share = tf.div(padded, tf.reshape(tf.maximum(positions, 1), [n * distinct + 1, 1]));
      return tf.reshape(tf.gather(share, cell), [n, t, targets]) as tf.Tensor3D;
    },
  };
}

/** The summed table gradient of each range of rows: each row's b scattered to its ids. `[sets, vocab, dim]`. Call inside `tf.tidy`. */
export function embeddingGradients(rows: EmbeddingRows, ranges: readonly { readonly start: number; readonly rows: number }[], vocab: number): tf.Tensor3D {
  const t = rows.ids.shape[1];
  const dim = rows.b.shape[2];
  return tf.stack(
    ranges.map(({ start, rows: count }) =>
      tf.scatterND(
        tf.reshape(tf.slice(rows.ids, [start, 0], [count, t]), [count * t, 1]),
        tf.reshape(tf.slice(rows.b, [start, 0, 0], [count, t, dim]), [count * t, dim]),
        [vocab, dim],
      ),
    ),
  ) as tf.Tensor3D;
}

/**
 * `<v_r, P_j[id_r]>` for rows `vectors [m, dim]` at `ids [m]` and every parameter set j (tables
 * `[sets, vocab, dim]`): `[m, sets]`, one gather for all sets. Call inside `tf.tidy`.
 */
export function tableTerms(tables: tf.Tensor3D, ids: tf.Tensor1D, vectors: tf.Tensor2D): tf.Tensor2D {
  const [sets, vocab, dim] = tables.shape;
  const m = ids.shape[0];
  const side = tf.reshape(tf.transpose(tables, [1, 0, 2]), [vocab, sets * dim]);
  const looked = tf.reshape(tf.gather(side, ids), [m, sets, dim]);
  return tf.sum(tf.mul(looked, tf.reshape(vectors, [m, 1, dim])), 2) as tf.Tensor2D;
}

/** `<G_i, P_j>` per (example, id) pair and parameter set j (tables `[sets, vocab, dim]`): `[U, sets]`. Call inside `tf.tidy`. */
export function embeddingPairTerms(pairs: EmbeddingPairs, tables: tf.Tensor3D): tf.Tensor2D {
  return tableTerms(tables, pairs.words, pairs.sums);
}

/** `<G_i, P_j>` for every example i and parameter set j of one embedding layer: `[n, sets]`. Call inside `tf.tidy`. */
export function embeddingParamProducts(pairs: EmbeddingPairs, tables: tf.Tensor3D, n: number): tf.Tensor2D {
  return tf.scatterND(pairs.owner, embeddingPairTerms(pairs, tables), [n, tables.shape[0]]) as tf.Tensor2D;
}

/**
 * Rough cost units of the two materialised variants on tf.js' cpu and wasm kernels, where gathering
 * one element costs about thirty times an element-wise operation (measured: 75 ns per element for
 * GatherV2 on wasm, about 2 ns for ScatterNd). `pairs` bounds the number of (example, id) pairs.
 */
export function embeddingVariantCosts(n: number, t: number, dim: number, distinct: number, targets: number, pairs: number) {
  return {
    gather: 31 * pairs * dim * targets,
    compact: n * t * (dim + 30) + n * distinct * dim * (1 + targets),
  };
}

function chooseEmbeddingVariant(n: number, t: number, dim: number, distinct: number, targets: number, pairs: number): 'gather' | 'compact' {
  const c = embeddingVariantCosts(n, t, dim, distinct, targets, pairs);
  // The compact table must also stay small: at most 2^24 floats (64 MB).
  return c.compact < c.gather && n * distinct * dim <= 1 << 24 ? 'compact' : 'gather';
}
