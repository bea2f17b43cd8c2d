// Optimizer-aware values: the optimizer's per-parameter update factors and the target products they scale.
import * as tf from '@tensorflow/tfjs';
import type { StepProducts, TargetGroupRows } from '../ghost/products.js';
import { tableTerms } from '../ghost/embedding.js';
import type { EmbeddingRows, LayerRows } from '../ghost/types.js';
import { combine, fromWeights, gradientsOf, paramProducts, weightShaped, wholeBatch, type LayerParams } from './hessian.js';

/** Optimizers whose update rule inrun knows (moments frozen at the step). */
const SUPPORTED = ['SGD', 'Momentum', 'Adam', 'RMSProp', 'Adagrad'] as const;

/** Why the optimizer-aware values are not available for this optimizer, or null when they are. */
export function unsupportedOptimizer(optimizer: tf.Optimizer): string | null {
  const name = optimizer.getClassName();
  if (!(SUPPORTED as readonly string[]).includes(name)) return `${name} is not supported (supported: ${SUPPORTED.join(', ')})`;
  if (name === 'RMSProp' && (optimizer as unknown as { centered?: boolean }).centered) return 'centered RMSProp is not supported';
  return null;
}

interface Slot {
  readonly originalName: string;
  readonly variable: tf.Tensor;
}

/** An optimizer slot by name: tf.js keeps slots in arrays indexed by update order, named `<variable>/<slot>`. */
function slot(optimizer: tf.Optimizer, field: string, name: string): tf.Tensor | null {
  const slots = (optimizer as unknown as Record<string, (Slot | undefined)[] | undefined>)[field] ?? [];
  return slots.find((s) => s?.originalName === name)?.variable ?? null;
}

/**
 * The per-parameter factor Q with which the optimizer turns this step's gradient into its update,
 * relative to the learning rate and with the optimizer's state frozen at the step: the update's share
 * of example z is `lr * Q * G_z`, so its first-order value is `lr <Q g_T, G_z>` (docs/methods.md).
 * `gradient` is the whole step's gradient of `variable` (Adam, RMSProp and Adagrad fold it into their
 * second moments before dividing). SGD and Momentum: Q = 1 (Nesterov: 1 + momentum); momentum
 * carries past steps' gradients, which belong to those steps. Adam: (1 - b1)/(1 - b1^t) /
 * (sqrt(v_t / (1 - b2^t)) + eps). RMSProp: 1/sqrt(ms_t + eps). Adagrad: 1/sqrt(acc_t + eps).
 * Reads tf.js' optimizer state (4.x) before the optimizer applies the step. Call inside `tf.tidy`.
 */
export function updateFactor(optimizer: tf.Optimizer, variable: tf.Variable, gradient: tf.Tensor): tf.Tensor {
  const o = optimizer as unknown as Record<string, number | boolean | tf.Tensor>;
  const g2 = () => tf.square(gradient);
  switch (optimizer.getClassName()) {
    case 'Adam': {
      const [b1, b2, eps] = [o['beta1'] as number, o['beta2'] as number, o['epsilon'] as number];
      const v = slot(optimizer, 'accumulatedSecondMoment', `${variable.name}/v`) ?? tf.zerosLike(variable);
      const vt = tf.add(tf.mul(v, b2), tf.mul(g2(), 1 - b2));
      const corrected = tf.div(vt, tf.sub(1, o['accBeta2'] as tf.Tensor));
      const scale = tf.div(1 - b1, tf.sub(1, o['accBeta1'] as tf.Tensor));
      return tf.div(scale, tf.add(tf.sqrt(corrected), eps));
    }
    case 'RMSProp': {
      const [decay, eps] = [o['decay'] as number, o['epsilon'] as number];
      const ms = slot(optimizer, 'accumulatedMeanSquares', `${variable.name}/rms`) ?? tf.zerosLike(variable);
      return tf.div(1, tf.sqrt(tf.add(tf.add(tf.mul(ms, decay), tf.mul(g2(), 1 - decay)), eps)));
    }
    case 'Adagrad': {
      const acc = slot(optimizer, 'accumulatedGrads', `${variable.name}/accumulator`) ?? tf.fill(variable.shape, o['initialAccumulatorValue'] as number);
      return tf.div(1, tf.sqrt(tf.add(tf.add(acc, g2()), tf.backend().epsilon())));
    }
    case 'Momentum':
      return tf.fill(variable.shape, o['useNesterov'] === true ? 1 + (o['momentum'] as number) : 1);
    default:
      return tf.onesLike(variable);
  }
}

/** Scales a layer's parameter sets by its factors (shaped like the layer's weights). */
export function precondition(params: LayerParams, factors: readonly tf.Tensor[]): LayerParams {
  return combine(params, fromWeights(params.layout, factors), (p, f) => tf.mul(p, f));
}

/** What the optimizer-aware path needs at a step: the optimizer and the covered layers' weights. */
export interface UpdateRule {
  readonly optimizer: tf.Optimizer;
  readonly weights: ReadonlyMap<string, readonly tf.Variable[]>;
}

/**
 * Every covered layer's factors at this step. The step's gradient is the optimizer's own (from
 * `computeGradients`, regularisers included) where it has one, else the sum of the recorded shares.
 * Call inside `tf.tidy`.
 */
export function stepFactors(rule: UpdateRule, train: ReadonlyMap<string, LayerRows>, grads: tf.NamedTensorMap | null, n: number): Map<string, tf.Tensor[]> {
  const out = new Map<string, tf.Tensor[]>();
  for (const [key, rows] of train) {
    const vars = rule.weights.get(key);
    if (vars === undefined || vars.length === 0) continue;
    let summed: tf.Tensor[] | null = null;
    const fromRows = () => (summed ??= weightShaped(gradientsOf(rows, wholeBatch(n)), 0));
    out.set(
      key,
      vars.map((v, i) => updateFactor(rule.optimizer, v, grads?.[v.name] ?? fromRows()[i]!)),
    );
  }
  return out;
}

/** Optimizer-aware target products `<G_i, Q g_T>`: every layer, embedding layers only, and per-position terms of one embedding layer. */
export type PreconditionedProducts = Pick<StepProducts, 'target' | 'targetEmbedding' | 'tokens'>;

/**
 * `<G_i, Q g_T>` for every example and target. Unlike the ghost kernel, each target's gradient is
 * materialised (one parameter-sized tensor per target and layer) so that it can be scaled by the
 * optimizer's per-parameter factors; its cost is that of one extra update per target. Call inside `tf.tidy`.
 */
export function preconditionedProducts(
  train: ReadonlyMap<string, LayerRows>,
  groups: readonly TargetGroupRows[],
  factors: ReadonlyMap<string, readonly tf.Tensor[]>,
  wants: { readonly target: boolean; readonly targetEmbedding: boolean; readonly tokens: string | null },
  n: number,
): PreconditionedProducts {
  const perGroup = groups.map(({ rows, layout }) => {
    const params = new Map<string, LayerParams>();
    for (const [key, r] of rows) {
      const f = factors.get(key);
      if (f !== undefined && train.has(key)) params.set(key, precondition(gradientsOf(r, layout.ranges), f));
    }
    return { params, width: layout.ranges.length };
  });
  const join = (parts: tf.Tensor2D[]) => (parts.length === 1 ? parts[0]! : (tf.concat(parts, 1) as tf.Tensor2D));
  const over = (only: ReadonlyMap<string, LayerRows>) =>
    join(perGroup.map(({ params, width }) => paramProducts(only, params, n) ?? (tf.zeros([n, width]) as tf.Tensor2D)));
  const embeddings = new Map([...train].filter(([, r]) => r.embedding));
  const tokenPiece = wants.tokens === null ? undefined : train.get(wants.tokens)?.pieces[0];
  const tokenRows = tokenPiece?.form === 'table' ? tokenPiece : undefined;
  return {
    target: wants.target ? over(train) : null,
    targetEmbedding: wants.targetEmbedding ? over(embeddings) : null,
    tokens:
      tokenRows !== undefined
        ? {
            ids: tokenRows.ids,
            terms: tf.concat(
              perGroup.map(({ params, width }) => {
                const table = params.get(wants.tokens!)?.pieces[0]?.[0];
                return table !== undefined ? positionTerms(tokenRows, table as tf.Tensor3D) : tf.zeros([n, tokenRows.ids.shape[1], width]);
              }),
              2,
            ) as tf.Tensor3D,
          }
        : null,
  };
}

/** `<b_p, P_j[id_p]>` per position p and parameter set j: `[n, T, sets]`. Summed over an example's positions of one id, that id's share. */
function positionTerms(rows: EmbeddingRows, tables: tf.Tensor3D): tf.Tensor3D {
  const [n, t] = rows.ids.shape;
  const terms = tableTerms(tables, tf.reshape(rows.ids, [n * t]), tf.reshape(rows.b, [n * t, rows.b.shape[2]]));
  return tf.reshape(terms, [n, t, tables.shape[0]]);
}

