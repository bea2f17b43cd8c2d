// Layer operations for hand-written models (no tf.layers) that record like the Dense and Embedding kinds.
import * as tf from '@tensorflow/tfjs';
import { activeCapture, probe } from '../hooks/capture.js';
import { tableGradient } from '../hooks/gather.js';
import { denseRecorder } from './dense.js';
import { embeddingRecorder } from './embedding.js';

/** Options of {@link ops}' layer functions. */
export interface OpOptions {
  /** Layer name in scores and run metadata. @defaultValue the kernel's (or table's) variable name */
  readonly name?: string;
}

/**
 * Dense projection `x W + b` over the last axis of `x` (rank 2 or more), returning the
 * pre-activation: apply the activation yourself. Records per-example quantities when inrun runs.
 */
function dense(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor | null, options: OpOptions = {}): tf.Tensor {
  const capture = activeCapture();
  const key = options.name ?? nameOf(kernel);
  const weights = [kernel, ...(bias != null ? [bias] : [])].filter((w): w is tf.Variable => w instanceof tf.Variable);
  const owned = weights.length === (bias != null ? 2 : 1) ? weights : [];
  const call = capture?.forward(key, denseRecorder(x.shape[x.rank - 1] ?? 0, kernel.shape[1] ?? 0, bias != null, owned), [x]);
  const z = tf.tidy(() => {
    const dIn = x.shape[x.rank - 1] ?? 0;
    const flat = tf.matMul(tf.reshape(x, [-1, dIn]), kernel);
    const out = bias != null ? tf.add(flat, bias) : flat;
    return tf.reshape(out, [...x.shape.slice(0, -1), kernel.shape[1] ?? 0]);
  });
  if (capture === null || call === undefined) return z;
  return probe(z, (dy) => capture.backward(key, call, dy));
}

/**
 * Embedding lookup `table[ids]` with output shape `[...ids.shape, dim]`. Its table gradient uses
 * `scatterND` (fast on every backend), so hand-written models need no global gradient override.
 */
function embedding(ids: tf.Tensor, table: tf.Tensor, options: OpOptions = {}): tf.Tensor {
  const capture = activeCapture();
  const key = options.name ?? nameOf(table);
  const intIds = ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32');
  const call = capture?.forward(key, embeddingRecorder(table.shape[0] ?? 0, table.shape[1] ?? 0, table instanceof tf.Variable ? [table] : []), [intIds]);
  const lookup = tf.customGrad((t, i, save) => {
    const tbl = t as tf.Tensor;
    const idx = i as tf.Tensor;
    // The ids reach the gradient through save(): tf.js frees forward intermediates before backward.
    (save as tf.GradSaveFunc)([idx]);
    const rows = tf.gather(tbl, tf.reshape(idx, [-1]));
    return {
      value: tf.reshape(rows, [...idx.shape, tbl.shape[1] ?? 0]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tableGradient(tbl.shape, saved[0]!, dy), tf.zerosLike(saved[0]!)],
    };
  });
  const y = lookup(table, intIds);
  if (capture === null || call === undefined) return y;
  return probe(y, (dy) => capture.backward(key, call, dy));
}

function nameOf(t: tf.Tensor): string {
  return (t as tf.Tensor & { name?: string }).name ?? `tensor${t.id}`;
}

/**
 * Layer operations for hand-written models (no tf.layers). They compute the same values as the
 * plain tf ops and, while inrun attributes a step, record what the ghost products need.
 */
export const ops = { dense, embedding } as const;
