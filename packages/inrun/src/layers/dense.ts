// Dense layers: input rows times pre-activation output gradients, one outer piece.
import * as tf from '@tensorflow/tfjs';
import type { Recorder } from '../hooks/capture.js';
import type { WeightLayout } from '../ghost/types.js';
import { fusedAffine } from './fusing.js';
import type { LayerFuse, LayerKind } from './kind.js';
import { outerPiece, recordInputProbePreActivation, variablesOf, type Activation } from './seams.js';

/** Kernel `[dIn, dOut]` and optional bias `[dOut]`: one outer piece, laid out as the weights are. */
function denseLayout(dIn: number, dOut: number, hasBias: boolean): WeightLayout {
  return {
    params: (dIn + (hasBias ? 1 : 0)) * dOut,
    pieces: [{ form: 'outer', rows: dIn + (hasBias ? 1 : 0), cols: dOut }],
    toWeights: ([piece]) => [...piece!],
    fromWeights: (weights) => [[...weights]],
  };
}

/** The recorder of a dense map (tf.layers Dense or `ops.dense`): input rows and pre-activation gradients. */
export function denseRecorder(dIn: number, dOut: number, hasBias: boolean, weights: readonly tf.Variable[]): Recorder {
  return {
    kind: dense.name,
    embedding: false,
    weights,
    layout: denseLayout(dIn, dOut, hasBias),
    pieces: (calls, n) => [outerPiece(calls, n, hasBias)],
  };
}

interface DenseInternals {
  kernel: { shape: number[]; read(): tf.Tensor };
  bias: { shape: number[]; read(): tf.Tensor } | null;
  activation: Activation;
}

/**
 * Dense in a fused step: the ops tf.layers' Dense runs while training (`fused.matMul` with a fusable
 * activation, which tf.js unfuses into matMul, add and the activation under a gradient; otherwise a
 * linear matMul, the bias add and the activation as its own op), over every row. The gradient is
 * matMul's: the input gradient for every row, the kernel and bias gradients from the training rows
 * (`matMul(x[:B]^T, dz[:B])`, `sum(dz[:B], 0)`), with the plain step's shapes.
 */
const denseFuse: LayerFuse = {
  unfusable(layer) {
    const rank = (layer.input as tf.SymbolicTensor).shape.length;
    return rank === 2 ? null : `rank-${rank} inputs: tf.layers' Dense reshapes and transposes them, and the fused call is built for rank-2 rows`;
  },
  call(layer, x, rows) {
    const internals = layer as unknown as DenseInternals;
    return fusedAffine(
      x,
      rows,
      { kernel: internals.kernel, bias: internals.bias, activation: internals.activation, fusesActivation: true },
      (a, w, b, act) => {
        const inner = act !== 'linear' && b !== undefined;
        const z = tf.fused.matMul({ a: a as tf.Tensor2D, b: w as tf.Tensor2D, ...(inner ? { bias: b } : {}), activation: act as 'linear' });
        return b === undefined || inner ? z : tf.add(z, b);
      },
      ({ dz, aTrain, dzTrain }, w, b) => ({
        dx: rows.inputGrad ? tf.matMul(dz, w, false, true) : null,
        dws: [tf.matMul(aTrain, dzTrain, true, false), ...(b === undefined ? [] : [tf.sum(dzTrain, 0)])],
      }),
    );
  },
};

export const dense: LayerKind = {
  name: 'dense',
  classNames: ['Dense'],
  lastLayer: true,
  recorder(layer) {
    const { kernel, bias } = layer as unknown as DenseInternals;
    return denseRecorder(kernel.shape[0]!, kernel.shape[1]!, bias !== null, variablesOf(layer));
  },
  instrument: recordInputProbePreActivation,
  fuse: denseFuse,
};
