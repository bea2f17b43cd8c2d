// Random-projection sketches of per-example gradients, piece by piece.
import * as tf from '@tensorflow/tfjs';
import type { LayerRows, Piece, PieceShape } from './types.js';

/** Gaussian projections of one piece: `pa [rows, k]` for inputs (or ids, or a flat gradient), `pb [cols, k]` for output gradients. */
export interface Projection {
  readonly pa: tf.Tensor2D;
  readonly pb: tf.Tensor2D;
}

/**
 * Projections for the covered layers' pieces, in model order: piece i draws from seeds `seed + 2i` and
 * `seed + 2i + 1`, entries N(0, 1/k). E[P P^T] = I, so sketch dot products estimate gradient dot
 * products without bias (docs/methods.md, "Sketches"). A side no wider than k is kept whole (an identity,
 * exact): projecting 2 outputs to 16 numbers would add noise and bytes. Create them outside
 * `tf.tidy` (or keep them); free them with {@link disposeProjections}.
 */
export function makeProjections(layers: readonly PieceShape[], k: number, seed: number): Projection[] {
  const side = (d: number, s: number) => (d <= k ? tf.eye(d) : tf.randomNormal([d, k], 0, 1 / Math.sqrt(k), 'float32', seeded(s))) as tf.Tensor2D;
  return layers.map((layer, i) => ({ pa: side(layer.rows, seed + 2 * i), pb: side(layer.cols, seed + 2 * i + 1) }));
}

/**
 * tf.js takes a seed of 0 for "no seed" (`seed ? seed : Math.random()` in its random helpers), so the
 * first piece of seed 0, the default, drew a fresh projection on every call: the sketches a run stored and
 * the projection `tracin()` rebuilt for its queries did not match. 0 becomes 0.5, a value no integer seed
 * reaches; every other seed draws what it always drew.
 */
function seeded(s: number): number {
  return s === 0 ? 0.5 : s;
}

/** Numbers in one example's sketch of a piece: min(rows, k) x min(cols, k). */
export function sketchWidth(piece: PieceShape, k: number): number {
  return Math.min(piece.rows, k) * Math.min(piece.cols, k);
}

export function disposeProjections(projections: readonly Projection[]): void {
  for (const p of projections) tf.dispose([p.pa, p.pb]);
}

/**
 * Each example's gradient sketch, `[n, sum over pieces of ka kb]` (ka, kb: the projections' widths): per
 * piece sum_t (a_it P_a) (outer) (b_it P_b), with a = [input, 1] for an outer piece with bias,
 * a = one-hot(id) for a table piece (so a P_a is a row of P_a), and for a flat piece g P_a (b = 1).
 * Pieces in model order. Call inside `tf.tidy`.
 */
export function sketchRows(layers: readonly LayerRows[], projections: readonly Projection[]): tf.Tensor2D {
  const pieces = layers.flatMap((rows) => rows.pieces);
  const parts = pieces.map((piece, i) => sketchPiece(piece, projections[i]!));
  return (parts.length === 1 ? parts[0]! : tf.concat(parts, 1)) as tf.Tensor2D;
}

function sketchPiece(piece: Piece, { pa, pb }: Projection): tf.Tensor2D {
  if (piece.form === 'flat') return tf.matMul(piece.g, pa);
  const [ka, kb] = [pa.shape[1], pb.shape[1]];
  let ap: tf.Tensor3D;
  if (piece.form === 'outer') {
    const [n, t, dIn] = piece.a.shape;
    const a = piece.hasBias ? tf.concat([piece.a, tf.ones([n, t, 1])], 2) : piece.a;
    ap = tf.reshape(tf.matMul(tf.reshape(a, [n * t, dIn + (piece.hasBias ? 1 : 0)]), pa), [n, t, ka]);
  } else {
    const [n, t] = piece.ids.shape;
    ap = tf.reshape(tf.gather(pa, tf.reshape(piece.ids, [n * t])), [n, t, ka]);
  }
  const [n, t, dOut] = piece.b.shape;
  const bp = tf.reshape(tf.matMul(tf.reshape(piece.b, [n * t, dOut]), pb), [n, t, kb]);
  return tf.reshape(tf.matMul(ap, bp, true, false), [n, ka * kb]);
}
