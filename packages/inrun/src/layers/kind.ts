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
}
