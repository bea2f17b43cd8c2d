// Per-form ghost maths: self, target and parameter products and gradients of one piece (outer, table, flat).
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import { cheaper, denseCosts, embeddingCosts } from './cost.js';
import { denseGradients, denseParamProducts, denseSelfProducts, denseTargetProducts } from './dense.js';
import { embeddingGradients, embeddingPairs, embeddingParamProducts, embeddingSelfProducts, embeddingTargetProducts, type EmbeddingPairs } from './embedding.js';
import type { GhostPath, Piece, PieceParams, ReportedPath, TargetLayout } from './types.js';

type Ranges = readonly { readonly start: number; readonly rows: number }[];
type TablePiece = Extract<Piece, { form: 'table' }>;

/**
 * A table piece's (example, id) pairs serve its self products, its materialised target products and its
 * parameter products; built once per piece. Pieces live inside one `tf.tidy`, so the cache never holds
 * a tensor past its scope's end longer than the piece itself.
 */
const pairsCache = new WeakMap<TablePiece, EmbeddingPairs>();

function pairsOf(piece: TablePiece): EmbeddingPairs {
  let pairs = pairsCache.get(piece);
  if (pairs === undefined || pairs.sums.isDisposed) {
    pairs = embeddingPairs(piece, piece.vocab);
    pairsCache.set(piece, pairs);
  }
  return pairs;
}

function mismatch(train: Piece, target: Piece): never {
  throw new InrunError(`a piece recorded as ${train.form} in training and ${target.form} in the target pass`, { code: 'internal' });
}

/** `||G_i||^2` of one piece for every example: `[n]`. Call inside `tf.tidy`. */
export function pieceSelfProducts(piece: Piece, n: number): tf.Tensor1D {
  switch (piece.form) {
    case 'outer':
      return denseSelfProducts(piece, piece.hasBias);
    case 'table':
      return embeddingSelfProducts(pairsOf(piece), n);
    case 'flat':
      return tf.sum(tf.square(piece.g), 1);
  }
}

/** The cheaper ghost path for target products of this piece (flat pieces are materialised already). */
export function choosePath(train: Piece, target: Piece, targets: number): GhostPath {
  if (train.form === 'outer' && target.form === 'outer') {
    const [n, t, dIn] = train.a.shape;
    const [k, tk] = target.a.shape;
    return cheaper(denseCosts(n, t, k, tk, dIn, train.b.shape[2], targets));
  }
  if (train.form === 'table' && target.form === 'table') {
    const [n, t] = train.ids.shape;
    const [k, tk] = target.ids.shape;
    return cheaper(embeddingCosts(n, t, k, tk, train.b.shape[2], train.vocab, targets));
  }
  if (train.form === 'flat' && target.form === 'flat') return 'materialised';
  return mismatch(train, target);
}

/** `<G_i, G_T>` of one piece per example and target, the path that ran, and (table pieces) per-position terms. */
export interface PieceTargetProducts {
  readonly path: ReportedPath;
  /** `[n, targets]`. */
  readonly perExample: tf.Tensor2D;
  /** `[n, T, targets]` TracIn-WE terms of a table piece (docs/methods.md, "TracIn-WE"). */
  readonly perPosition?: () => tf.Tensor3D;
}

/** Target products of one piece by `path`. Call inside `tf.tidy`. */
export function pieceTargetProducts(train: Piece, target: Piece, layout: TargetLayout, path: GhostPath): PieceTargetProducts {
  if (train.form === 'outer' && target.form === 'outer') {
    return { path, perExample: denseTargetProducts(train, target, layout, train.hasBias, path) };
  }
  if (train.form === 'table' && target.form === 'table') {
    return embeddingTargetProducts(train, () => pairsOf(train), target, layout, train.vocab, path);
  }
  if (train.form === 'flat' && target.form === 'flat') {
    return { path: 'materialised', perExample: pieceParamProducts(train, pieceGradients(target, layout.ranges), 0) };
  }
  return mismatch(train, target);
}

/** The summed gradient of each range of rows, as piece params with one set per range. Call inside `tf.tidy`. */
export function pieceGradients(piece: Piece, ranges: Ranges): PieceParams {
  switch (piece.form) {
    case 'outer': {
      const { kernels, biases } = denseGradients(piece, ranges, piece.hasBias);
      return biases === null ? [kernels] : [kernels, biases];
    }
    case 'table':
      return [embeddingGradients(piece, ranges, piece.vocab)];
    case 'flat': {
      const p = piece.g.shape[1];
      return [tf.stack(ranges.map(({ start, rows }) => tf.sum(tf.slice(piece.g, [start, 0], [rows, p]), 0)))];
    }
  }
}

/** `<G_i, P_s>` of one piece for every example i and parameter set s: `[n, sets]`. Call inside `tf.tidy`. */
export function pieceParamProducts(piece: Piece, params: PieceParams, n: number): tf.Tensor2D {
  switch (piece.form) {
    case 'outer':
      return denseParamProducts(piece, { kernels: params[0] as tf.Tensor3D, biases: (params[1] as tf.Tensor2D | undefined) ?? null });
    case 'table':
      return embeddingParamProducts(pairsOf(piece), params[0] as tf.Tensor3D, n);
    case 'flat':
      return tf.matMul(piece.g, params[0] as tf.Tensor2D, false, true);
  }
}
