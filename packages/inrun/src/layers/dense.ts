// Dense layers: input rows times pre-activation output gradients, one outer piece.
import type * as tf from '@tensorflow/tfjs';
import type { Recorder } from '../hooks/capture.js';
import type { WeightLayout } from '../ghost/types.js';
import type { LayerKind } from './kind.js';
import { outerPiece, recordInputProbePreActivation, variablesOf } from './seams.js';
import { fusedDenseHook } from '../hooks/fused.js';

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
  kernel: { shape: number[] };
  bias: { shape: number[] } | null;
}

export const dense: LayerKind = {
  name: 'dense',
  classNames: ['Dense'],
  lastLayer: true,
  recorder(layer) {
    const { kernel, bias } = layer as unknown as DenseInternals;
    return denseRecorder(kernel.shape[0]!, kernel.shape[1]!, bias !== null, variablesOf(layer));
  },
  instrument(layer, key, recorder) {
    const probing = recordInputProbePreActivation(layer, key, recorder);
    // A fused step (docs/hooks.md) replaces the call; every other pass goes through the probing one.
    const fused = fusedDenseHook(layer, key, recorder);
    return () => {
      fused();
      probing();
    };
  },
};
