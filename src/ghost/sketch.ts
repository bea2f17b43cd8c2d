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
 * products without bias (method notes, section 4). Create them outside `tf.tidy` (or keep them);
 * free them with {@link disposeProjections}.
 */
export function makeProjections(layers: readonly SketchLayer[], k: number, seed: number): Projection[] {
  return layers.map((layer, i) => ({
    pa: tf.randomNormal<tf.Rank.R2>([layer.rows, k], 0, 1 / Math.sqrt(k), 'float32', seed + 2 * i),
    pb: tf.randomNormal<tf.Rank.R2>([layer.cols, k], 0, 1 / Math.sqrt(k), 'float32', seed + 2 * i + 1),
  }));
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
 * Each example's gradient sketch, `[n, sum over layers of k^2]`: per layer
 * sum_t (a_it P_a) (outer) (b_it P_b), with a = [input, 1] for a dense layer with bias and
 * a = one-hot(id) for an embedding (so a P_a is a row of P_a). Layers in model order. Call inside `tf.tidy`.
 */
export function sketchRows(layers: readonly LayerRows[], projections: readonly Projection[]): tf.Tensor2D {
  const parts = layers.map((rows, i) => {
    const { pa, pb } = projections[i]!;
    const k = pa.shape[1];
    let ap: tf.Tensor3D;
    if (rows.kind === 'dense') {
      const [n, t, dIn] = rows.rows.a.shape;
      const a = rows.hasBias ? tf.concat([rows.rows.a, tf.ones([n, t, 1])], 2) : rows.rows.a;
      ap = tf.reshape(tf.matMul(tf.reshape(a, [n * t, dIn + (rows.hasBias ? 1 : 0)]), pa), [n, t, k]);
    } else {
      const [n, t] = rows.rows.ids.shape;
      ap = tf.reshape(tf.gather(pa, tf.reshape(rows.rows.ids, [n * t])), [n, t, k]);
    }
    const [n, t, dOut] = rows.rows.b.shape;
    const bp = tf.reshape(tf.matMul(tf.reshape(rows.rows.b, [n * t, dOut]), pb), [n, t, k]);
    return tf.reshape(tf.matMul(ap, bp, true, false), [n, k * k]);
  });
  return (parts.length === 1 ? parts[0]! : tf.concat(parts, 1)) as tf.Tensor2D;
}
