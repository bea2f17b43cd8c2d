// Which layers of a LayersModel inrun covers (through the registry's kinds), and why the others are left out.
import * as tf from '@tensorflow/tfjs';
import { InrunError, preview } from '../errors.js';
import type { WeightLayout } from '../ghost/types.js';
import type { Recorder } from '../hooks/capture.js';
import type { CoveredLayer, SkippedLayer } from '../types.js';
import type { Restore } from './kind.js';
import { kindOf, SKIPPED_CLASSES, supportedClasses } from './registry.js';
import { paramCount } from './seams.js';

/** Which layers of a model inrun covers, and why the others are left out. */
export interface LayerPlan {
  readonly covered: CoveredLayer[];
  readonly skipped: SkippedLayer[];
  /** Covered layers' weights, in their layouts' order. */
  readonly weights: Map<string, tf.Variable[]>;
  /** Covered layers' weight layouts. */
  readonly layouts: Map<string, WeightLayout>;
  /** Covered layers' recorders (what a fused step records into). */
  readonly recorders: Map<string, Recorder>;
  /** Names of the covered word-embedding layers. */
  readonly embedding: Set<string>;
  /** Parameters of the covered layers and of every trainable weight of the model. */
  readonly coveredParams: number;
  readonly trainableParams: number;
  /** Installs the hooks on the covered layers; returns the function that removes them all. */
  instrument(): Restore;
}

/** The model's layers with weights of their own (nested models opened up), in model order. */
export function leafLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.flatMap((layer) => (layer instanceof tf.LayersModel ? leafLayers(layer) : [layer]));
}

/**
 * Decides coverage for a LayersModel. `selection`: 'all' supported layers, only word-embedding
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
        throw new InrunError(`unknown layer ${preview(name)}; layers with weights: ${known.join(', ') || 'none'}`, { field: 'layers' });
      }
    }
  }
  const covered: CoveredLayer[] = [];
  const skipped: SkippedLayer[] = [];
  const weights = new Map<string, tf.Variable[]>();
  const layouts = new Map<string, WeightLayout>();
  const embedding = new Set<string>();
  const recorders = new Map<string, Recorder>();
  const hooks: (() => Restore)[] = [];
  for (const layer of layers) {
    if (layer.weights.length === 0) continue;
    const className = layer.getClassName();
    const kind = kindOf(layer);
    const why = kind === null ? (SKIPPED_CLASSES[className] ?? `${className} layers are not supported`) : (kind.unsupported?.(layer) ?? null);
    const recorder = why === null ? kind!.recorder(layer) : null;
    const wanted = selection === 'all' ? true : selection === 'embedding' ? recorder?.embedding === true : selection.includes(layer.name);
    if (!wanted) {
      skipped.push({ name: layer.name, className, reason: 'not selected by the layers option' });
    } else if (why !== null || recorder === null) {
      if (Array.isArray(selection)) {
        throw new InrunError(`layer "${layer.name}" is a ${className} inrun cannot attribute through: ${why}; supported layers: ${supportedClasses().join(', ')}`, {
          field: 'layers',
          code: 'unsupported_layer',
        });
      }
      skipped.push({ name: layer.name, className, reason: why ?? 'unsupported' });
    } else if (!layer.trainable || layer.trainableWeights.length === 0) {
      skipped.push({ name: layer.name, className, reason: 'not trainable (frozen weights are not updated)' });
    } else {
      covered.push({ name: layer.name, kind: recorder.kind, params: recorder.layout.params, path: null });
      weights.set(layer.name, [...recorder.weights]);
      layouts.set(layer.name, recorder.layout);
      recorders.set(layer.name, recorder);
      if (recorder.embedding) embedding.add(layer.name);
      hooks.push(() => kind!.instrument(layer, layer.name, recorder));
    }
  }
  return {
    covered,
    skipped,
    weights,
    layouts,
    recorders,
    embedding,
    coveredParams: covered.reduce((n, l) => n + l.params, 0),
    trainableParams: layers.reduce((n, l) => n + (l.trainable ? paramCount(l) : 0), 0),
    instrument() {
      const restores = hooks.map((install) => install());
      return () => {
        for (const restore of restores.reverse()) restore();
      };
    },
  };
}

/** The last covered layer whose kind serves TracIn's last-layer fast path (`layers: 'last'`). */
export function lastLayer(model: tf.LayersModel): string {
  const last = leafLayers(model).filter((l) => l.trainable && kindOf(l)?.lastLayer === true).at(-1);
  if (last === undefined) throw new InrunError("the model has no Dense layer for layers: 'last'", { field: 'layers', code: 'unsupported_layer' });
  return last.name;
}
