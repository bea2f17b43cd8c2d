import type * as tf from '@tensorflow/tfjs';

/**
 * A layer's recorded quantities for one pass, reshaped so that axis 0 is the example and axis 1
 * the position (T = 1 for rank-2 inputs; several calls of one layer are concatenated along T,
 * which is exact: an example's gradient is the sum over calls and positions).
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

/** One covered layer's rows for one pass. */
export type LayerRows =
  | { readonly kind: 'dense'; readonly hasBias: boolean; readonly rows: DenseRows }
  | { readonly kind: 'embedding'; readonly vocab: number; readonly rows: EmbeddingRows };
