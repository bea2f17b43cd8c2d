// Embedding layers: looked-up ids and output gradients, one table piece.
import * as tf from '@tensorflow/tfjs';
import type { Recorder } from '../hooks/capture.js';
import { activeCapture, probe } from '../hooks/capture.js';
import { kernelGradient, splitRows } from './fusing.js';
import type { LayerFuse, LayerKind } from './kind.js';
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

/**
 * Embedding in a fused step: the gather tf.layers' Embedding runs, over every row's ids. Its gradient
 * is whatever gradient tf.js has registered for GatherV2 (the stock one, or inrun's opt-in
 * scatterND), evaluated on the training rows' ids and output gradient only, as a plain step does.
 */
const embeddingFuse: LayerFuse = {
  unfusable(layer) {
    if ((layer as unknown as { maskZero?: boolean }).maskZero === true) return 'maskZero: tf.layers computes the mask from the training rows alone, not the concatenated ones';
    // Measured (test/backend-webgpu-node.test.ts, test/backend-browser.test.ts): webgl and webgpu concatenate
    // small host-resident id tensors on the CPU, which reads them (2 reads per step) where the separate pass reads nothing.
    const backend = tf.getBackend();
    if (backend === 'webgpu' || backend === 'webgl') return `Embedding on ${backend}: the ids would be concatenated on the CPU (a read per step)`;
    return null;
  },
  call(layer, x, rows) {
    const table = (layer as unknown as { embeddings: { read(): tf.Tensor } }).embeddings.read();
    const ids = x.dtype === 'int32' ? x : tf.cast(x, 'int32');
    const dim = table.shape[1]!;
    const perRow = x.size / x.shape[0]!;
    const op = tf.customGrad((t, save) => {
      const tbl = t as tf.Tensor;
      // The ids only: the table is a variable, which outlives the step (each saved tensor costs a copy kernel).
      (save as tf.GradSaveFunc)([ids]);
      return {
        value: tf.reshape(tf.gather(tbl, tf.reshape(ids, [ids.size])), [...x.shape, dim]),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const all = saved[0]!;
          const [idsTrain, idsTarget] = splitRows(all, rows.batch);
          const [dyTrain, dyTarget] = splitRows(dy, rows.batch);
          rows.record([[idsTrain, idsTarget]], [[dyTrain, dyTarget]]);
          const n = rows.batch * perRow;
          return kernelGradient('GatherV2', 'x', tf.reshape(dyTrain, [n, dim]), [table, tf.reshape(idsTrain, [n])], { axis: 0, batchDims: 0 });
        },
      };
    });
    return op(table);
  },
};

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
  fuse: embeddingFuse,
};
