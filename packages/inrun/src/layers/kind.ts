// The LayerKind interface: what one layer kind plugs into inrun (one file per kind in this folder).
import type * as tf from '@tensorflow/tfjs';
import type { Recorder } from '../hooks/capture.js';
import type { Restore } from '../hooks/restore.js';

export type { Restore };

/**
 * A kind of tf.layers layer inrun attributes through. A kind only records: it installs hooks that
 * hand the active capture its inputs and output gradients, and its {@link Recorder} turns them into
 * ghost pieces (outer, table or flat, src/ghost/types.ts) and maps those onto its weights. All
 * products, gradients, sketches and optimizer-aware terms then come from the pieces' maths. Adding a
 * kind is one file here and one line in `registry.ts`.
 */
export interface LayerKind {
  /** Reported in `run.info.layers.covered[].kind`. */
  readonly name: string;
  /** tf.layers class names (`layer.getClassName()`) this kind instruments. */
  readonly classNames: readonly string[];
  /** Why this layer's configuration cannot be attributed (it is then skipped with that reason), or null. */
  unsupported?(layer: tf.layers.Layer): string | null;
  /** The layer's recorder: its weights, their layout and how its recorded calls become pieces. */
  recorder(layer: tf.layers.Layer): Recorder;
  /** Installs the hooks that record the layer's calls into the active capture under `key`. */
  instrument(layer: tf.layers.Layer, key: string, recorder: Recorder): Restore;
  /** Serves TracIn's last-layer fast path (`layers: 'last'`, Captum's TracInCPFast). */
  readonly lastLayer?: boolean;
  /** The layer's call in a fused target pass (docs/hooks.md); a kind without it keeps the separate pass. */
  readonly fuse?: LayerFuse;
}

/**
 * How a kind's layer takes the fused target pass: one call over the training rows followed by the
 * target rows, whose output is the plain call's for every row, whose input gradient covers every row,
 * and whose weight gradients come from the training rows only, with the ops and shapes of a plain
 * step's gradient (so the optimizer receives the plain step's gradients bit for bit).
 */
export interface LayerFuse {
  /** Why this layer's configuration cannot take the fused pass exactly (the model then runs the separate pass), or null. */
  unfusable(layer: tf.layers.Layer): string | null;
  /** The fused call on `x` (training rows, then target rows). */
  call(layer: tf.layers.Layer, x: tf.Tensor, rows: FusedRows): tf.Tensor;
}

/** What a fused call is told about its rows, and where it records them. */
export interface FusedRows {
  /** Training rows: the first `batch` of `x`; the rest are target rows. */
  readonly batch: number;
  /** Whether the input gradient is wanted (false for the model's first layer, whose input is data). */
  readonly inputGrad: boolean;
  /**
   * Records the call as the training rows' and the target rows' captures take it: per recorded tensor
   * (what the kind's probing hook records), its training-row part and its target-row part. The
   * capture keeps these tensors as they are (no copies): pass tensors made for the purpose.
   */
  record(inputs: readonly (readonly [tf.Tensor, tf.Tensor])[], grads: readonly (readonly [tf.Tensor, tf.Tensor])[]): void;
}
