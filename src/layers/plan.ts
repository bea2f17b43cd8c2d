import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import type { CoveredLayer, SkippedLayer } from '../types.js';
import { activeCapture, probe } from '../hooks/capture.js';

type Kwargs = Record<string, unknown>;
type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];

/** The parts of tf.js' Dense and Embedding layers inrun reads (private in tf.js' typings). */
interface DenseInternals {
  activation: { getClassName(): string; apply(x: tf.Tensor, axis?: number): tf.Tensor };
  kernel: { shape: number[] } | null;
  bias: { shape: number[] } | null;
}

/** Undoes an instrumentation. */
export type Restore = () => void;

/**
 * Activations tf.layers' Dense may run as one fused op. Their pre-activation gradient is derived
 * from the layer output with the same formula tf.js' own gradient uses, so the layer's computation
 * stays untouched. Every other activation is applied by Dense as a separate op, and the probe sits
 * on its input instead.
 */
const FUSED: Record<string, (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor> = {
  linear: (dy) => dy,
  relu: (dy, y) => tf.mul(dy, tf.step(y)),
  elu: (dy, y) => tf.engine().runKernel('EluGrad', { dy, y }) as tf.Tensor,
};

function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1 || inputs[0] === undefined) {
      throw new InrunError(`an instrumented layer expects exactly one input, got ${inputs.length}`);
    }
    return inputs[0];
  }
  return inputs;
}

function outputOf(result: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return one(result);
}

/** Replaces `layer.call` by an instance property (tf.js' `apply` calls `this.call`). */
function overrideCall(layer: tf.layers.Layer, wrap: (original: CallFn) => CallFn): Restore {
  const target = layer as unknown as { call: CallFn };
  const hadOwn = Object.prototype.hasOwnProperty.call(target, 'call');
  const previous = target.call;
  target.call = wrap(previous.bind(layer));
  return () => {
    if (hadOwn) target.call = previous;
    else delete (target as { call?: CallFn }).call;
  };
}

/** A layer's trainable weights as tf.Variables, in the layer's order (kernel, bias / embeddings). */
export function variablesOf(layer: tf.layers.Layer): tf.Variable[] {
  return layer.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** Instruments a tf.layers Dense layer: records its input rows and pre-activation output gradients. */
export function instrumentDense(layer: tf.layers.Layer, key: string): Restore {
  const dense = layer as unknown as DenseInternals;
  const facts = { kind: 'dense', hasBias: dense.bias !== null, vocab: 0, weights: variablesOf(layer) } as const;
  return overrideCall(layer, (original) => (inputs, kwargs) => {
    const capture = activeCapture();
    if (capture === null) return original(inputs, kwargs);
    const call = capture.forward(key, facts, one(inputs));
    const activation = dense.activation;
    const fused = FUSED[activation.getClassName()];
    if (fused !== undefined) {
      return probe(outputOf(original(inputs, kwargs)), (dy, y) => capture.backward(key, call, fused(dy, y!)), true);
    }
    // Swap in an activation that probes its input, only for the duration of this call.
    const probing = Object.create(activation) as DenseInternals['activation'];
    probing.apply = (z, axis) => activation.apply(probe(z, (dy) => capture.backward(key, call, dy)), axis);
    dense.activation = probing;
    try {
      return original(inputs, kwargs);
    } finally {
      dense.activation = activation;
    }
  });
}

/** Instruments a tf.layers Embedding layer: records the looked-up ids and the output gradients. */
export function instrumentEmbedding(layer: tf.layers.Layer, key: string): Restore {
  const table = (layer as unknown as { embeddings: { shape: number[] } }).embeddings;
  const facts = { kind: 'embedding', hasBias: false, vocab: table.shape[0] ?? 0, weights: variablesOf(layer) } as const;
  return overrideCall(layer, (original) => (inputs, kwargs) => {
    const capture = activeCapture();
    if (capture === null) return original(inputs, kwargs);
    const x = one(inputs);
    const ids = tf.tidy(() => (x.dtype === 'int32' ? x.clone() : tf.cast(x, 'int32')));
    const call = capture.forward(key, facts, ids);
    ids.dispose();
    const y = outputOf(original(inputs, kwargs));
    return probe(y, (dy) => capture.backward(key, call, dy));
  });
}

/** Which layers of a model inrun covers, and why the others are left out. */
export interface LayerPlan {
  readonly covered: CoveredLayer[];
  readonly skipped: SkippedLayer[];
  /** Covered layers' weights, `[kernel, bias?]` or `[table]`. */
  readonly weights: Map<string, tf.Variable[]>;
  /** Installs the hooks on the covered layers; returns the function that removes them all. */
  instrument(): Restore;
}

function isModel(layer: tf.layers.Layer): layer is tf.LayersModel {
  return layer instanceof tf.LayersModel;
}

function leafLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const out: tf.layers.Layer[] = [];
  for (const layer of model.layers) {
    if (isModel(layer)) out.push(...leafLayers(layer));
    else out.push(layer);
  }
  return out;
}

function paramCount(layer: tf.layers.Layer): number {
  return layer.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/**
 * Decides coverage for a LayersModel. `selection`: 'all' supported layers, only 'embedding'
 * layers, or a list of layer names (each must exist and be supported).
 */
export function planLayers(model: tf.LayersModel, selection: 'all' | 'embedding' | readonly string[]): LayerPlan {
  const layers = leafLayers(model);
  const byName = new Map(layers.map((l) => [l.name, l]));
  if (Array.isArray(selection)) {
    const names = selection as readonly string[];
    if (names.length === 0) throw new InrunError('expected at least one layer name', { field: 'layers' });
    for (const name of names) {
      if (!byName.has(name)) {
        const known = layers.filter((l) => l.trainableWeights.length > 0).map((l) => l.name);
        throw new InrunError(`unknown layer "${name}"; layers with weights: ${known.join(', ') || 'none'}`, {
          field: 'layers',
        });
      }
    }
  }
  const covered: CoveredLayer[] = [];
  const skipped: SkippedLayer[] = [];
  const weights = new Map<string, tf.Variable[]>();
  const hooks: (() => Restore)[] = [];
  for (const layer of layers) {
    if (layer.weights.length === 0) continue;
    const className = layer.getClassName();
    const kind = className === 'Dense' ? 'dense' : className === 'Embedding' ? 'embedding' : null;
    const wanted =
      selection === 'all' ? true : selection === 'embedding' ? kind === 'embedding' : selection.includes(layer.name);
    if (!wanted) {
      skipped.push({ name: layer.name, className, reason: 'not selected by the layers option' });
    } else if (kind === null) {
      if (Array.isArray(selection)) {
        throw new InrunError(`layer "${layer.name}" is a ${className}; supported layers are Dense and Embedding`, {
          field: 'layers',
        });
      }
      skipped.push({ name: layer.name, className, reason: `${className} layers are not supported` });
    } else if (!layer.trainable || layer.trainableWeights.length === 0) {
      skipped.push({ name: layer.name, className, reason: 'not trainable (frozen weights are not updated)' });
    } else {
      covered.push({ name: layer.name, kind, params: paramCount(layer), path: null });
      weights.set(layer.name, variablesOf(layer));
      hooks.push(() => (kind === 'dense' ? instrumentDense(layer, layer.name) : instrumentEmbedding(layer, layer.name)));
    }
  }
  return {
    covered,
    skipped,
    weights,
    instrument() {
      const restores = hooks.map((install) => install());
      return () => {
        for (const restore of restores.reverse()) restore();
      };
    },
  };
}
