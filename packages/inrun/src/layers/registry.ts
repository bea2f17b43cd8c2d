// The registry of layer kinds, and the layers inrun knows it cannot attribute through (with why).
import type * as tf from '@tensorflow/tfjs';
import { conv } from './conv.js';
import { dense } from './dense.js';
import { embedding } from './embedding.js';
import type { LayerKind } from './kind.js';
import { layerNorm } from './layer-norm.js';
import { recurrent } from './recurrent.js';
import { timeDistributed } from './time-distributed.js';

/** Every layer kind inrun attributes through. A new kind is one file and one line here. */
export const KINDS: readonly LayerKind[] = [dense, embedding, conv, layerNorm, recurrent, timeDistributed];

/**
 * Layers with trainable weights that no kind covers, and why (docs/layers.md). They keep training;
 * the scores leave their parameters out, and `run.info.layers.coveredParams` says how much that is.
 */
export const SKIPPED_CLASSES: Readonly<Record<string, string>> = {
  BatchNormalization:
    'per-example gradients are not defined in training mode: the batch statistics couple the examples of a batch',
  RNN: 'a generic RNN runs any cell (StackedRNNCells, user cells) whose computation inrun cannot probe; use SimpleRNN, GRU or LSTM layers',
  ConvLSTM2D: 'convolutional gates: the recurrent kind covers cells whose gates are dense maps of the step input and state',
  SeparableConv2D: 'not covered yet: one op runs a depthwise then a pointwise convolution, and the intermediate output gradient is not observable',
  Conv2DTranspose: 'not covered yet: its gradient pairs output-gradient patches with input pixels, the transpose of what the conv kind records',
  Conv3D: 'not covered yet: the conv kind builds patches for 1D and 2D convolutions only',
  Conv3DTranspose: 'not covered yet: the conv kind builds patches for 1D and 2D convolutions only',
};

const byClass = new Map(KINDS.flatMap((k) => k.classNames.map((c) => [c, k] as const)));

/** The kind that instruments this layer, or null. */
export function kindOf(layer: tf.layers.Layer): LayerKind | null {
  return byClass.get(layer.getClassName()) ?? null;
}

/** Class names of the layers inrun attributes through, for messages. */
export function supportedClasses(): string[] {
  return [...byClass.keys()];
}
