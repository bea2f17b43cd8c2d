// The methods (shapley1, shapley2, tracin_self, tracin_we): columns and values from the step products.
import * as tf from '@tensorflow/tfjs';
import type { ProductNeeds, StepProducts } from '../ghost/products.js';
import type { ColumnInfo, Method } from '../types.js';

/**
 * Scale of one step. `c = learningRate * lossScale` is docs/methods.md's c_t: the training loss is
 * `lossScale * sum_i l_i` (1/B for mean-loss training), so the recorded gradient of example i is
 * G_i = lossScale * g_i and c_t <g_T, g_i> = learningRate <g_T, G_i>.
 */
export interface StepScale {
  readonly learningRate: number;
  readonly lossScale: number;
}

/** A method: which products it needs and how it turns them into per-example values `[n, columns]`. */
export interface MethodDef {
  readonly method: Method;
  readonly needs: Partial<ProductNeeds>;
  columns(targets: readonly string[]): ColumnInfo[];
  values(products: StepProducts, scale: StepScale, n: number, targets: number): tf.Tensor2D;
  /** Per-position values `[n, T, targets]` from the token layer's terms, for methods with token scores. */
  tokenValues?(terms: tf.Tensor3D, scale: StepScale): tf.Tensor3D;
}

function perTarget(method: Method, targets: readonly string[]): ColumnInfo[] {
  return targets.map((target) => ({ name: `${method}:${target}`, method, target }));
}

function orZeros(t: tf.Tensor2D | null, n: number, targets: number): tf.Tensor2D {
  return t ?? tf.zeros([n, targets]);
}

/** First-order In-Run Data Shapley = TracIn-Ideal: c_t <g_T, g_z> (docs/methods.md, "Sign and units"). */
const shapley1: MethodDef = {
  method: 'shapley1',
  needs: { target: true },
  columns: (targets) => perTarget('shapley1', targets),
  values: (p, s, n, k) => tf.mul(orZeros(p.target, n, k), s.learningRate),
};

/** TracIn self-influence c_t ||g_z||^2 (docs/methods.md, "Columns"). */
const tracinSelf: MethodDef = {
  method: 'tracin_self',
  needs: { self: true },
  columns: () => [{ name: 'tracin_self', method: 'tracin_self', target: null }],
  values: (p, s, n) =>
    tf.reshape(tf.mul(p.self ?? tf.zeros([n]), s.learningRate / s.lossScale), [n, 1]) as tf.Tensor2D,
};

/** TracIn-WE: the first-order value over word-embedding parameters only (docs/methods.md, "TracIn-WE and per-token scores"). */
const tracinWe: MethodDef = {
  method: 'tracin_we',
  needs: { targetEmbedding: true },
  columns: (targets) => perTarget('tracin_we', targets),
  values: (p, s, n, k) => tf.mul(orZeros(p.targetEmbedding, n, k), s.learningRate),
  tokenValues: (terms, s) => tf.mul(terms, s.learningRate),
};

/**
 * Second-order In-Run Data Shapley (docs/methods.md, "Second order"): c<g_T, g_z> - (c^2/2) g_z^T H_T v with
 * v the batch gradient. In recorded shares (G_z = s g_z, c = lr s, u = lr sum_j G_j) the second term
 * is -(lr/2) <G_z, H_T u>: one Hessian-vector product per target and step, shared by the batch.
 */
const shapley2: MethodDef = {
  method: 'shapley2',
  needs: { target: true, hessian: true },
  columns: (targets) => perTarget('shapley2', targets),
  values: (p, s, n, k) => tf.sub(tf.mul(orZeros(p.target, n, k), s.learningRate), tf.mul(orZeros(p.hessian ?? null, n, k), s.learningRate / 2)),
};

export const METHODS: Readonly<Record<Method, MethodDef>> = {
  shapley1,
  shapley2,
  tracin_self: tracinSelf,
  tracin_we: tracinWe,
};

/** Methods that score toward targets (and so need at least one). */
export const TARGET_METHODS: ReadonlySet<Method> = new Set(['shapley1', 'shapley2', 'tracin_we']);
