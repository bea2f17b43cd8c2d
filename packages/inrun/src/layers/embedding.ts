// Embedding layers: looked-up ids and output gradients, one table piece.
import * as tf from '@tensorflow/tfjs';
import type { Recorder } from '../hooks/capture.js';
import { activeCapture, probe } from '../hooks/capture.js';
import type { LayerKind } from './kind.js';
import { one, overrideCall, positions, alongPositions, variablesOf } from './seams.js';

/** The recorder of a lookup table `[vocab, dim]` (tf.layers Embedding or `ops.embedding`). */
export function embeddingRecorder(vocab: number, dim: number, weights: readonly tf.Variable[]): Recorder {
  return {
    kind: embedding.name,
    embedding: true,
    weights,
    layout: {
      params: vocab * dim,
      pieces: [{ form: 'table', rows: vocab, cols: dim }],
      toWeights: ([piece]) => [...piece!],
      fromWeights: (ws) => [[...ws]],
    },
    pieces: (calls, n) => [
      {
        form: 'table',
        vocab,
        ids: tf.concat(calls.map((c) => tf.reshape(c.inputs[0]!, [n, -1])), 1) as tf.Tensor2D,
        b: alongPositions(calls.map((c) => positions(c.grads[0]!, n))),
      },
    ],
  };
}

/** Ids as int32 (the capture records them; the layer keeps its own input). */
export function intIds(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => (x.dtype === 'int32' ? x.clone() : tf.cast(x, 'int32')));
}

export const embedding: LayerKind = {
  name: 'embedding',
  classNames: ['Embedding'],
  recorder(layer) {
    const table = (layer as unknown as { embeddings: { shape: number[] } }).embeddings;
    return embeddingRecorder(table.shape[0]!, table.shape[1]!, variablesOf(layer));
  },
  instrument(layer, key, recorder) {
    return overrideCall(layer, (original) => (inputs, kwargs) => {
      const capture = activeCapture();
      if (capture === null) return original(inputs, kwargs);
      const ids = intIds(one(inputs));
      const call = capture.forward(key, recorder, [ids]);
      ids.dispose();
      return probe(one(original(inputs, kwargs)), (dy) => capture.backward(key, call, dy));
    });
  },
};
