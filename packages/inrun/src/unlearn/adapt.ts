// New models from a model: a plain copy, a copy with LoRA adapters on chosen layers, and adapters merged back.
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '../errors.js';
import { LoraConv2D, LoraDense, LoraEmbedding } from './lora.js';

/** A layer's entry in a model's JSON topology (pythonic keys, as `model.toJSON` writes them). */
interface LayerEntry {
  class_name: string;
  config: Record<string, unknown>;
}

/** Which layers get adapters, how large, and A's seed. */
export interface AdapterSpec {
  readonly layers: 'all' | readonly string[];
  readonly rank: number;
  readonly alpha: number;
  readonly seed: number;
}

/** Layer classes that can take an adapter, and the adapter class each becomes. */
const ADAPTABLE: Readonly<Record<string, string>> = { Dense: LoraDense.className, Conv2D: LoraConv2D.className, Embedding: LoraEmbedding.className };

/** Config keys each adapted class keeps besides the base ones (pythonic, as in the JSON topology). */
const OWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  Dense: ['activation', 'use_bias', 'units'],
  Conv2D: ['activation', 'use_bias', 'filters', 'kernel_size', 'strides', 'padding', 'dilation_rate'],
  Embedding: ['input_dim', 'output_dim', 'input_length'],
};

/** Keys of the base Layer config every rewritten entry keeps. */
const BASE_KEYS = ['name', 'trainable', 'dtype', 'batch_input_shape'];

function topologyOf(model: tf.LayersModel): { json: Record<string, unknown>; entries: LayerEntry[] } {
  const json = model.toJSON(null, false) as unknown as Record<string, unknown>;
  const config = json['config'] as Record<string, unknown> | unknown[];
  // Sequential and functional models both list their layers under config.layers.
  const entries = (Array.isArray(config) ? config : (config['layers'] as unknown[])) as LayerEntry[];
  return { json, entries };
}

function pick(config: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => config[k] !== undefined).map((k) => [k, config[k]]));
}

/** Builds a model from a rewritten topology, compiled like `like` (loss, metrics, a fresh optimizer of the same kind). */
async function build(json: Record<string, unknown>, like: tf.LayersModel): Promise<tf.LayersModel> {
  const model = await tf.models.modelFromJSON({ modelTopology: json as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  const optimizer = like.optimizer as tf.Optimizer | undefined;
  if (optimizer !== undefined) {
    const Kind = optimizer.constructor as unknown as { fromConfig(cls: unknown, config: tf.serialization.ConfigDict): tf.Optimizer };
    model.compile({ optimizer: Kind.fromConfig(Kind, optimizer.getConfig()), loss: like.loss, ...(like.metrics === undefined ? {} : { metrics: like.metrics }) });
    // The optimizer is the model's own (nobody else holds it): model.dispose() frees it too. A
    // Sequential keeps the flag on its inner model as well.
    for (const m of [model, (model as unknown as { model?: object }).model]) if (m !== undefined) (m as { isOptimizerOwned: boolean }).isOptimizerOwned = true;
  }
  return model;
}

/**
 * Gives each layer of `to` the weights of the same-named layer of `from`. The variables share the
 * values (tf.js counts references): training `to` assigns new values and never writes into `from`'s.
 */
function copyWeights(from: tf.LayersModel, to: tf.LayersModel, skip: ReadonlySet<string>): void {
  for (const layer of to.layers) {
    if (!skip.has(layer.name) && layer.weights.length > 0) layer.setWeights(from.getLayer(layer.name).getWeights());
  }
}

/** A new model with the same topology, compilation and weights; `model` is untouched. */
export async function cloneModel(model: tf.LayersModel): Promise<tf.LayersModel> {
  const copy = await build(topologyOf(model).json, model);
  copyWeights(model, copy, new Set());
  return copy;
}

/** A layer that gets an adapter, and the adapter's rank there. */
export interface AdaptedLayer {
  readonly name: string;
  readonly rank: number;
}

/**
 * Checks the adapter spec against the model; returns the layers that get adapters. With
 * `layers: 'all'` a layer narrower than `rank` gets an adapter of its width (a classifier's last
 * layer often has fewer units than the rank); a layer named explicitly must be at least `rank` wide.
 */
export function adaptedLayers(model: tf.LayersModel, spec: AdapterSpec): AdaptedLayer[] {
  const adaptable = (l: tf.layers.Layer) => ADAPTABLE[l.getClassName()] !== undefined;
  let names: string[];
  if (spec.layers === 'all') {
    names = model.layers.filter(adaptable).map((l) => l.name);
    if (names.length === 0) throw new InrunError('the model has no Dense, Conv2D or Embedding layer to put adapters on', { field: 'layers', code: 'unsupported_model' });
  } else {
    names = [...spec.layers];
    names.forEach((name, i) => {
      const layer = model.layers.find((l) => l.name === name);
      if (layer === undefined) throw new InrunError(`no layer named "${name}" at the model's top level`, { field: `layers[${i}]` });
      if (!adaptable(layer)) throw new InrunError(`${layer.getClassName()} layers cannot take adapters (Dense, Conv2D and Embedding can)`, { field: `layers[${i}]`, code: 'unsupported_layer' });
    });
  }
  const widest = { name: '', width: 0 };
  const layers = names.map((name) => {
    const layer = model.getLayer(name);
    const config = layer.getConfig();
    if (((config['dataFormat'] as string | undefined) ?? 'channelsLast') !== 'channelsLast') {
      throw new InrunError(`layer "${name}" is channels-first; adapters support channels-last convolutions`, { field: 'layers', code: 'unsupported_layer' });
    }
    if (config['maskZero'] === true) throw new InrunError(`layer "${name}" masks id 0; adapters support Embedding layers without maskZero`, { field: 'layers', code: 'unsupported_layer' });
    const shape = layer.getWeights()[0]!.shape;
    const width = Math.min(shape.slice(0, -1).reduce((a, b) => a * b, 1), shape[shape.length - 1]!);
    if (width > widest.width) Object.assign(widest, { name, width });
    if (spec.rank > width && spec.layers !== 'all') {
      throw new InrunError(`rank ${spec.rank} is above the width of layer "${name}" (kernel [${shape.join(', ')}], at most ${width})`, { field: 'rank' });
    }
    return { name, rank: Math.min(spec.rank, width) };
  });
  if (spec.rank > widest.width) {
    throw new InrunError(`rank ${spec.rank} is above the width of every adapted layer (the widest, "${widest.name}", allows ${widest.width})`, { field: 'rank' });
  }
  return layers;
}

/**
 * A new model where each named Dense/Conv2D/Embedding layer is its LoRA version (same name, same frozen kernel
 * and bias, A random, B zero: the same outputs as `model`). Other layers are copies.
 */
export async function withAdapters(model: tf.LayersModel, spec: AdapterSpec, layers: readonly AdaptedLayer[]): Promise<tf.LayersModel> {
  const { json, entries } = topologyOf(model);
  const rankOf = new Map(layers.map((l) => [l.name, l.rank]));
  const names = layers.map((l) => l.name);
  const chosen = new Set(names);
  for (const entry of entries) {
    const c = entry.config;
    const rank = rankOf.get(c['name'] as string);
    if (rank === undefined) continue;
    entry.config = { ...pick(c, [...BASE_KEYS, ...OWN_KEYS[entry.class_name]!]), rank, alpha: spec.alpha, seed: spec.seed };
    entry.class_name = ADAPTABLE[entry.class_name]!;
  }
  const adapted = await build(json, model);
  copyWeights(model, adapted, chosen);
  for (const name of names) {
    const [kernel, bias] = model.getLayer(name).getWeights();
    (adapted.getLayer(name) as LoraDense | LoraConv2D | LoraEmbedding).setBase(kernel!, bias ?? null);
  }
  return adapted;
}

/**
 * A plain model equal to `model` with every LoRA adapter folded into its layer's kernel
 * (`W0 + (alpha / rank) A B`): Dense, Conv2D and Embedding layers again, loadable without inrun.
 */
export async function mergeAdapters(model: tf.LayersModel): Promise<tf.LayersModel> {
  const { json, entries } = topologyOf(model);
  const lora = new Set<string>();
  const plainOf = new Map(Object.entries(ADAPTABLE).map(([plain, adapter]) => [adapter, plain]));
  for (const entry of entries) {
    const c = entry.config;
    const plain = plainOf.get(entry.class_name);
    if (plain === undefined) continue;
    entry.class_name = plain;
    entry.config = { ...pick(c, [...BASE_KEYS, ...OWN_KEYS[plain]!]), ...(plain === 'Conv2D' ? { data_format: 'channels_last' } : {}) };
    lora.add(c['name'] as string);
  }
  const merged = await build(json, model);
  copyWeights(model, merged, lora);
  for (const name of lora) {
    const layer = model.getLayer(name) as LoraDense | LoraConv2D | LoraEmbedding;
    const kernel = layer.mergedKernel();
    const bias = layer.baseBias();
    merged.getLayer(name).setWeights(bias === null ? [kernel] : [kernel, bias]);
    tf.dispose(kernel);
  }
  return merged;
}
