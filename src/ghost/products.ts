import * as tf from '@tensorflow/tfjs';
import { cheaper, denseCosts, embeddingCosts } from './cost.js';
import { denseSelfProducts, denseTargetProducts } from './dense.js';
import { embeddingSelfProducts, embeddingTargetTerms } from './embedding.js';
import type { EmbeddingRows, GhostPath, LayerRows, TargetLayout } from './rows.js';

/** Which products a step needs (the union over the run's methods). */
export interface ProductNeeds {
  /** `<G_i, G_T>` over every covered layer. */
  readonly target: boolean;
  /** `<G_i, G_T>` over embedding layers only (TracIn-WE). */
  readonly targetEmbedding: boolean;
  /** `||G_i||^2` over every covered layer. */
  readonly self: boolean;
  /** Embedding layer whose per-position terms are kept, or null. */
  readonly tokens: string | null;
}

/** Per-example products of one step, summed over layers. */
export interface StepProducts {
  readonly target: tf.Tensor2D | null;
  readonly targetEmbedding: tf.Tensor2D | null;
  readonly self: tf.Tensor1D | null;
  /** Ids `[n, T]` and per-position terms `[n, T, targets]` of the token layer. */
  readonly tokens: { readonly ids: tf.Tensor2D; readonly terms: tf.Tensor3D } | null;
  /** Path used per layer for target products. */
  readonly paths: ReadonlyMap<string, GhostPath>;
}

function choosePath(train: LayerRows, target: LayerRows, targets: number): GhostPath {
  if (train.kind === 'dense' && target.kind === 'dense') {
    const [n, t, dIn] = train.rows.a.shape;
    const [k, tk] = target.rows.a.shape;
    return cheaper(denseCosts(n, t, k, tk, dIn, train.rows.b.shape[2], targets));
  }
  const tr = train.rows as EmbeddingRows;
  const tg = target.rows as EmbeddingRows;
  const [n, t] = tr.ids.shape;
  const [k, tk] = tg.ids.shape;
  return cheaper(embeddingCosts(n, t, k, tk, tr.b.shape[2], (train as { vocab: number }).vocab, targets));
}

function addInto<T extends tf.Tensor>(sum: T | null, term: T): T {
  return sum === null ? term : (tf.add(sum, term) as T);
}

/**
 * One ghost kernel for every method: per-layer products summed into what `needs` asks for.
 * `target` and `layout` may be null when no target product is needed. Call inside `tf.tidy`.
 */
export function stepProducts(
  train: ReadonlyMap<string, LayerRows>,
  target: ReadonlyMap<string, LayerRows> | null,
  layout: TargetLayout | null,
  needs: ProductNeeds,
  force: 'auto' | GhostPath,
): StepProducts {
  let targetSum: tf.Tensor2D | null = null;
  let embeddingSum: tf.Tensor2D | null = null;
  let selfSum: tf.Tensor1D | null = null;
  let tokens: StepProducts['tokens'] = null;
  const paths = new Map<string, GhostPath>();
  const wantTarget = needs.target || needs.targetEmbedding || needs.tokens !== null;
  for (const [key, layer] of train) {
    if (needs.self) {
      selfSum = addInto(
        selfSum,
        layer.kind === 'dense' ? denseSelfProducts(layer.rows, layer.hasBias) : embeddingSelfProducts(layer.rows, layer.vocab),
      );
    }
    const tgt = target?.get(key);
    if (!wantTarget || tgt === undefined || layout === null) continue;
    if (layer.kind === 'dense' && !needs.target) continue;
    const path = force === 'auto' ? choosePath(layer, tgt, layout.ranges.length) : force;
    paths.set(key, path);
    if (layer.kind === 'dense' && tgt.kind === 'dense') {
      targetSum = addInto(targetSum, denseTargetProducts(layer.rows, tgt.rows, layout, layer.hasBias, path));
    } else if (layer.kind === 'embedding' && tgt.kind === 'embedding') {
      const terms = embeddingTargetTerms(layer.rows, tgt.rows, layout, layer.vocab, path);
      const perExample = tf.sum(terms, 1) as tf.Tensor2D;
      if (needs.target) targetSum = addInto(targetSum, perExample);
      if (needs.targetEmbedding) embeddingSum = addInto(embeddingSum, perExample);
      if (needs.tokens === key) tokens = { ids: layer.rows.ids, terms };
    }
  }
  return { target: targetSum, targetEmbedding: embeddingSum, self: selfSum, tokens, paths };
}
