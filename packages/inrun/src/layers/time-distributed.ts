// TimeDistributed layers over a kind inrun covers: the wrapped layer's kind records every time step as one call.
import type * as tf from '@tensorflow/tfjs';
import { conv } from './conv.js';
import { dense } from './dense.js';
import type { LayerKind } from './kind.js';
import { layerNorm } from './layer-norm.js';

/**
 * The kinds a TimeDistributed layer may wrap. Listed here rather than looked up in the registry, which
 * imports this file: those kinds' pieces already concatenate the positions of several calls of one
 * pass (a layer shared between branches), and a time step is one more such call.
 */
const WRAPPABLE: readonly LayerKind[] = [dense, conv, layerNorm];

/** The layer a TimeDistributed wraps (private in tf.js' typings). */
function wrapped(layer: tf.layers.Layer): tf.layers.Layer {
  return (layer as unknown as { layer: tf.layers.Layer }).layer;
}

function kindOfWrapped(layer: tf.layers.Layer): LayerKind | null {
  const className = wrapped(layer).getClassName();
  return WRAPPABLE.find((k) => k.classNames.includes(className)) ?? null;
}

/**
 * TimeDistributed(layer) (tfjs-examples' date-conversion-attention output head, TimeDistributed(Dense)).
 * tf.js runs the wrapped layer's `call` once per time step on `[n, ...]` slices (its `rnn` loop), and
 * the weights are shared over time, so an example's gradient sums over time steps: the wrapped kind's
 * hooks record each step as one call, and its pieces take the steps as positions. The wrapper reports
 * the wrapped layer's weights as its own, so the layout, the checkpoints and the optimizer see the
 * same variables.
 */
export const timeDistributed: LayerKind = {
  name: 'time-distributed',
  classNames: ['TimeDistributed'],
  unsupported(layer) {
    const inner = wrapped(layer);
    const kind = kindOfWrapped(layer);
    if (kind === null) {
      const names = WRAPPABLE.flatMap((k) => k.classNames).join(', ');
      return `it wraps a ${inner.getClassName()}; TimeDistributed is covered over ${names}`;
    }
    const why = kind.unsupported?.(inner) ?? null;
    return why === null ? null : `its ${inner.getClassName()}: ${why}`;
  },
  recorder(layer) {
    const inner = wrapped(layer);
    return { ...kindOfWrapped(layer)!.recorder(inner), kind: timeDistributed.name };
  },
  instrument(layer, key, recorder) {
    return kindOfWrapped(layer)!.instrument(wrapped(layer), key, recorder);
  },
};
