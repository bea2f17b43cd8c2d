// The shapes ghost maths work on: pieces of per-example gradients, their parameter sets and target layouts.
import type * as tf from '@tensorflow/tfjs';

/**
 * Inputs and output gradients of a linear map, axis 0 = example, axis 1 = position (T = 1 for rank-2
 * inputs; several calls of one layer, a convolution's output positions or a recurrent layer's time
 * steps are concatenated along T, which is exact: an example's gradient is the sum over positions).
 */
export interface DenseRows {
  /** Inputs `[n, T, dIn]`. */
  readonly a: tf.Tensor3D;
  /** Pre-activation output gradients `[n, T, dOut]`. */
  readonly b: tf.Tensor3D;
}

export interface EmbeddingRows {
  /** Looked-up ids `[n, T]`, int32. */
  readonly ids: tf.Tensor2D;
  /** Output gradients `[n, T, dim]`. */
  readonly b: tf.Tensor3D;
}

/**
 * One block of a layer's per-example gradients, in one of the three forms the ghost maths know
 * (docs/methods.md, "Ghost products"). A layer's blocks cover disjoint parameters, so every product
 * is the sum of its blocks' products.
 * - `outer`: G_i = sum_t a_it (outer) b_it, plus the bias gradient sum_t b_it (Dense, Conv, recurrent gates).
 * - `table`: G_i[id] = sum of b_it over the positions holding id (Embedding).
 * - `flat`: G_i materialised as a row `g [n, P]` (small parameter sets such as LayerNorm's).
 */
export type Piece =
  | ({ readonly form: 'outer'; readonly hasBias: boolean } & DenseRows)
  | ({ readonly form: 'table'; readonly vocab: number } & EmbeddingRows)
  | { readonly form: 'flat'; readonly g: tf.Tensor2D };

/** A piece's size for sketches: the `rows x cols` matrix its gradient is (flat pieces: `P x 1`). */
export interface PieceShape {
  readonly form: Piece['form'];
  /** outer: input width (+1 for the bias); table: vocabulary size; flat: parameter count. */
  readonly rows: number;
  /** outer: output width; table: dimension; flat: 1. */
  readonly cols: number;
}

/**
 * Parameter-shaped tensors of a layer's pieces, each with a leading "set" axis (one set per target,
 * or a single set): gradients, update directions, Hessian-vector products. Per piece: outer
 * `[kernels [S, dIn, dOut], biases? [S, dOut]]`, table `[tables [S, vocab, dim]]`, flat `[values [S, P]]`.
 */
export type PieceParams = readonly tf.Tensor[];

/**
 * How a layer's pieces map onto its weights (a layer kind's static layout): linear rearrangements
 * (reshape, slice, concat) both ways, without the set axis.
 */
export interface WeightLayout {
  /** Parameters the pieces span. */
  readonly params: number;
  readonly pieces: readonly PieceShape[];
  /** One set of piece params -> tensors shaped like the layer's weights, in the layer's weight order. */
  toWeights(pieces: readonly PieceParams[]): tf.Tensor[];
  /** Tensors shaped like the weights -> one set of piece params (no set axis). */
  fromWeights(weights: readonly tf.Tensor[]): tf.Tensor[][];
}

/** One covered layer's rows for one pass. */
export interface LayerRows {
  /** The layer kind's name (`covered[].kind`). */
  readonly kind: string;
  /** Whether the layer is a word embedding (TracIn-WE, `layers: 'embedding'`). */
  readonly embedding: boolean;
  readonly pieces: readonly Piece[];
  readonly layout: WeightLayout;
}

/**
 * Which target each target row belongs to: a one-hot `[K, nTargets]` matrix. Summing a `[n, K]`
 * product over a target's rows is then one matMul (never `unsortedSegmentSum`, which is slow or
 * missing on the cpu and wasm backends).
 */
export interface TargetLayout {
  readonly membership: tf.Tensor2D;
  /** Row ranges per target, in target order: rows `[start, start + rows)`. */
  readonly ranges: readonly { readonly start: number; readonly rows: number }[];
}

export type GhostPath = 'pairwise' | 'materialised';

/** What ran: a {@link GhostPath}, or `compact`, the materialised path over the target's distinct ids. */
export type ReportedPath = GhostPath | 'compact';
