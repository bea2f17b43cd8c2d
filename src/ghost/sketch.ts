import * as tf from '@tensorflow/tfjs';
import type { LayerRows } from './rows.js';

/** What a layer's sketch needs to know about it (the same in a run and in a model loaded from a checkpoint). */
export interface SketchLayer {
  readonly kind: 'dense' | 'embedding';
  /** Dense: input width (+1 for the bias); embedding: vocabulary size. */
  readonly rows: number;
  /** Dense: output width; embedding: dimension. */
  readonly cols: number;
}

/** Gaussian projections of one layer: `pa [rows, k]` for inputs (or ids), `pb [cols, k]` for output gradients. */
export interface Projection {
  readonly pa: tf.Tensor2D;
  readonly pb: tf.Tensor2D;
}

/**
 * Projections for the covered layers, in model order: layer i draws from seeds `seed + 2i` and
 * `seed + 2i + 1`, entries N(0, 1/k). E[P P^T] = I, so sketch dot products estimate gradient dot
 * products without bias (method notes, section 4). A side no wider than k is kept whole (an identity,
 * exact): projecting 2 outputs to 16 numbers would add noise and bytes. Create them outside
 * `tf.tidy` (or keep them); free them with {@link disposeProjections}.
 */
export function makeProjections(layers: readonly SketchLayer[], k: number, seed: number): Projection[] {
  const side = (d: number, s: number) => (d <= k ? tf.eye(d) : tf.randomNormal([d, k], 0, 1 / Math.sqrt(k), 'float32', s)) as tf.Tensor2D;
  return layers.map((layer, i) => ({ pa: side(layer.rows, seed + 2 * i), pb: side(layer.cols, seed + 2 * i + 1) }));
}

/** Numbers in one example's sketch of a layer: min(rows, k) x min(cols, k). */
export function sketchWidth(layer: SketchLayer, k: number): number {
  return Math.min(layer.rows, k) * Math.min(layer.cols, k);
}

export function disposeProjections(projections: readonly Projection[]): void {
  for (const p of projections) tf.dispose([p.pa, p.pb]);
}

/** The sketch layout of a covered layer's rows. */
export function sketchLayer(rows: LayerRows): SketchLayer {
  return rows.kind === 'dense'
    ? { kind: 'dense', rows: rows.rows.a.shape[2] + (rows.hasBias ? 1 : 0), cols: rows.rows.b.shape[2] }
    : { kind: 'embedding', rows: rows.vocab, cols: rows.rows.b.shape[2] };
}

/**
 * Each example's gradient sketch, `[n, sum over layers of ka kb]` (ka, kb: the projections' widths): per layer
 * sum_t (a_it P_a) (outer) (b_it P_b), with a = [input, 1] for a dense layer with bias and
 * a = one-hot(id) for an embedding (so a P_a is a row of P_a). Layers in model order. Call inside `tf.tidy`.
 */
export function sketchRows(layers: readonly LayerRows[], projections: readonly Projection[]): tf.Tensor2D {
  const parts = layers.map((rows, i) => {
    const { pa, pb } = projections[i]!;
    const [ka, kb] = [pa.shape[1], pb.shape[1]];
    let ap: tf.Tensor3D;
    if (rows.kind === 'dense') {
      const [n, t, dIn] = rows.rows.a.shape;
      const a = rows.hasBias ? tf.concat([rows.rows.a, tf.ones([n, t, 1])], 2) : rows.rows.a;
      ap = tf.reshape(tf.matMul(tf.reshape(a, [n * t, dIn + (rows.hasBias ? 1 : 0)]), pa), [n, t, ka]);
    } else {
      const [n, t] = rows.rows.ids.shape;
      ap = tf.reshape(tf.gather(pa, tf.reshape(rows.rows.ids, [n * t])), [n, t, ka]);
    }
    const [n, t, dOut] = rows.rows.b.shape;
    const bp = tf.reshape(tf.matMul(tf.reshape(rows.rows.b, [n * t, dOut]), pb), [n, t, kb]);
    return tf.reshape(tf.matMul(ap, bp, true, false), [n, ka * kb]);
  });
  return (parts.length === 1 ? parts[0]! : tf.concat(parts, 1)) as tf.Tensor2D;
}
