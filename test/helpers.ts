import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { spearman, uniform as rng } from '../eval/metrics.js';

export { rng, spearman };

/** Per-example loss as the tests' models define it: one value per row. */
export type PerExampleLoss = (ys: tf.Tensor, predictions: tf.Tensor) => tf.Tensor1D;

export const losses = {
  categorical: ((ys, p) => tf.metrics.categoricalCrossentropy(ys, p) as tf.Tensor1D) as PerExampleLoss,
  binary: ((ys, p) => tf.metrics.binaryCrossentropy(ys, p) as tf.Tensor1D) as PerExampleLoss,
  mse: ((ys, p) => tf.mean(tf.square(tf.sub(ys, p)), -1) as tf.Tensor1D) as PerExampleLoss,
};

/** Gradient of the summed loss of all rows of (x, y) w.r.t. `vars`, flattened in `vars` order. */
export function targetGradient(
  forward: (x: tf.Tensor) => tf.Tensor,
  loss: PerExampleLoss,
  x: tf.Tensor,
  y: tf.Tensor,
  vars: tf.Variable[],
): Float64Array {
  const flat = tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.sum(loss(y, forward(x))) as tf.Scalar, vars);
    return tf.concat(vars.map((v) => tf.reshape(grads[v.name]!, [-1])));
  });
  const out = Float64Array.from(flat.dataSync());
  flat.dispose();
  return out;
}

/**
 * The brute-force reference: one backward pass per example. Returns each example's gradient of its
 * own (unscaled) loss w.r.t. `vars`, flattened and concatenated in `vars` order.
 */
export function perExampleGradients(
  forward: (x: tf.Tensor) => tf.Tensor,
  loss: PerExampleLoss,
  x: tf.Tensor,
  y: tf.Tensor,
  vars: tf.Variable[],
): Float64Array[] {
  return Array.from({ length: x.shape[0]! }, (_, i) => {
    const [xi, yi] = [tf.slice(x, i, 1), tf.slice(y, i, 1)];
    const g = targetGradient(forward, loss, xi, yi, vars);
    tf.dispose([xi, yi]);
    return g;
  });
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Every |actual - expected| within `rel` times the largest |expected| (a scale-aware relative error). */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  expect(scale).toBeGreaterThan(0);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst / scale).toBeLessThanOrEqual(rel);
}

/** Trainable tf.Variables of the named layers, kernel then bias, in layer order. */
export function layerVariables(model: tf.LayersModel, names?: readonly string[]): tf.Variable[] {
  return model.layers
    .filter((l) => l.trainableWeights.length > 0 && (names === undefined || names.includes(l.name)))
    .flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
}

/** Copies of a model's weights, to start another model from the same point. */
export function snapshot(model: tf.LayersModel): tf.Tensor[] {
  return model.getWeights().map((w) => w.clone());
}

export function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

/** Saves `model` the way tfjs-node's file:// handler and the converter do: model.json with a weightsManifest over `shards` files. */
export async function saveModelFiles(model: tf.LayersModel, shards: number, includeOptimizer = false): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'inrun-model-folder-'));
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const bytes = new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData!));
      const cut = Math.ceil(bytes.byteLength / shards / 4) * 4;
      const paths = Array.from({ length: shards }, (_, s) => `group1-shard${s + 1}of${shards}.bin`);
      paths.forEach((p, s) => writeFileSync(join(dir, p), bytes.subarray(s * cut, (s + 1) * cut)));
      const json = { modelTopology: a.modelTopology, format: 'layers-model', generatedBy: a.generatedBy, convertedBy: null, trainingConfig: a.trainingConfig, weightsManifest: [{ paths, weights: a.weightSpecs }] };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' as const } });
    }),
    { includeOptimizer },
  );
  return dir;
}

/**
 * A trap for synchronous reads (no-sync-reads and unlearn tests): while `armed`, the public sync reads
 * (`dataSync`, `arraySync`, `bufferSync`) throw, and each named backend's `readSync` throws unless a
 * tf.js kernel calls it (cpu kernels read their inputs that way; inrun must not). Each throw is
 * recorded in `calls`. `restore()` puts the originals back.
 */
export interface SyncReadTrap {
  armed: boolean;
  readonly calls: string[];
  restore(): void;
}

export function syncReadTrap(backends: readonly string[]): SyncReadTrap {
  const undo: (() => void)[] = [];
  const trap: SyncReadTrap = { armed: false, calls: [], restore: () => undo.splice(0).forEach((f) => f()) };
  // Frame 0 is the Error, 1 the patched readSync, 2 its caller.
  const fromTfjs = (stack: string | undefined) => (stack?.split('\n')[3] ?? '').includes('@tensorflow');
  const patch = (owner: object, name: string, allow: (stack: string | undefined) => boolean) => {
    const target = owner as Record<string, (...args: unknown[]) => unknown>;
    const original = target[name]!;
    target[name] = function (this: unknown, ...args: unknown[]) {
      if (trap.armed && !allow(new Error().stack)) {
        trap.calls.push(name);
        throw new Error(`sync read: ${name}`);
      }
      return original.apply(this, args);
    };
    undo.push(() => (target[name] = original));
  };
  for (const name of ['dataSync', 'arraySync', 'bufferSync']) patch(tf.Tensor.prototype, name, () => false);
  for (const backend of backends) patch(tf.findBackend(backend)!, 'readSync', fromTfjs);
  return trap;
}
