import * as tf from '@tensorflow/tfjs';
import { cheaper, denseCosts, embeddingCosts } from './cost.js';
import { denseSelfProducts, denseTargetProducts } from './dense.js';
import { embeddingPairs, embeddingSelfProducts, embeddingTargetProducts, type EmbeddingPairs } from './embedding.js';
import type { EmbeddingRows, GhostPath, LayerRows, ReportedPath, TargetLayout } from './rows.js';

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
  /** `<G_i, H_T u>` (second order; computed beside the ghost kernel, from a Hessian-vector product). */
  readonly hessian?: boolean;
}

/** One target pass's rows, with the layout of the targets it holds. */
export interface TargetGroupRows {
  readonly rows: ReadonlyMap<string, LayerRows>;
  readonly layout: TargetLayout;
}

/** Per-example products of one step, summed over layers; target axes follow the groups' order. */
export interface StepProducts {
  /** `[n, targets]` or null when not needed. */
  readonly target: tf.Tensor2D | null;
  readonly targetEmbedding: tf.Tensor2D | null;
  readonly self: tf.Tensor1D | null;
  /** Ids `[n, T]` and per-position terms `[n, T, targets]` of the token layer. */
  readonly tokens: { readonly ids: tf.Tensor2D; readonly terms: tf.Tensor3D } | null;
  /** Path used per layer for target products. */
  readonly paths: ReadonlyMap<string, ReportedPath>;
  /** `[n, targets]`: `<G_i, H_T u>` summed over layers, when second-order values are wanted. */
  readonly hessian?: tf.Tensor2D | null;
}

function choosePath(train: LayerRows, target: LayerRows, targets: number): GhostPath {
  if (train.kind === 'dense' && target.kind === 'dense') {
    const [n, t, dIn] = train.rows.a.shape;
    const [k, tk] = target.rows.a.shape;
    return cheaper(denseCosts(n, t, k, tk, dIn, train.rows.b.shape[2], targets));
  }
  if (train.kind === 'embedding' && target.kind === 'embedding') {
    const [n, t] = train.rows.ids.shape;
    const [k, tk] = target.rows.ids.shape;
    return cheaper(embeddingCosts(n, t, k, tk, train.rows.b.shape[2], train.vocab, targets));
  }
  throw new Error(`inrun: a layer recorded as ${train.kind} in training and ${target.kind} in the target pass`);
}

function addInto<T extends tf.Tensor>(sum: T | null, term: T): T {
  return sum === null ? term : (tf.add(sum, term) as T);
}

function concatTargets<T extends tf.Tensor>(parts: (T | null)[], axis: number, zeros: (group: number) => T): T | null {
  if (parts.every((p) => p === null)) return null;
  const filled = parts.map((p, g) => p ?? zeros(g));
  return filled.length === 1 ? filled[0]! : (tf.concat(filled, axis) as T);
}

/**
 * One ghost kernel for every method: per-layer products summed into what `needs` asks for, toward
 * every target group. Call inside `tf.tidy`.
 */
export function stepProducts(
  n: number,
  train: ReadonlyMap<string, LayerRows>,
  groups: readonly TargetGroupRows[],
  needs: ProductNeeds,
  force: 'auto' | GhostPath,
): StepProducts {
  const wantTarget = needs.target || needs.targetEmbedding || needs.tokens !== null;
  let self: tf.Tensor1D | null = null;
  const target: (tf.Tensor2D | null)[] = groups.map(() => null);
  const embedding: (tf.Tensor2D | null)[] = groups.map(() => null);
  const tokenTerms: (tf.Tensor3D | null)[] = groups.map(() => null);
  let tokenIds: tf.Tensor2D | null = null;
  const paths = new Map<string, ReportedPath>();
  for (const [key, layer] of train) {
    // An embedding layer's pairs serve its self products and its materialised target products.
    let pairs: EmbeddingPairs | null = null;
    const pairsOf = (rows: EmbeddingRows, vocab: number) => (pairs ??= embeddingPairs(rows, vocab));
    if (needs.self) {
      self = addInto(
        self,
        layer.kind === 'dense' ? denseSelfProducts(layer.rows, layer.hasBias) : embeddingSelfProducts(pairsOf(layer.rows, layer.vocab), n),
      );
    }
    if (!wantTarget || (layer.kind === 'dense' && !needs.target)) continue;
    groups.forEach((group, g) => {
      const tgt = group.rows.get(key);
      if (tgt === undefined) return;
      const path = force === 'auto' ? choosePath(layer, tgt, group.layout.ranges.length) : force;
      if (!paths.has(key)) paths.set(key, path);
      if (layer.kind === 'dense' && tgt.kind === 'dense') {
        target[g] = addInto(target[g]!, denseTargetProducts(layer.rows, tgt.rows, group.layout, layer.hasBias, path));
      } else if (layer.kind === 'embedding' && tgt.kind === 'embedding') {
        const products = embeddingTargetProducts(layer.rows, () => pairsOf(layer.rows, layer.vocab), tgt.rows, group.layout, layer.vocab, path);
        paths.set(key, products.path);
        if (needs.target) target[g] = addInto(target[g]!, products.perExample);
        if (needs.targetEmbedding) embedding[g] = addInto(embedding[g]!, products.perExample);
        if (needs.tokens === key) {
          tokenTerms[g] = products.perPosition();
          tokenIds = layer.rows.ids;
        }
      }
    });
  }
  const width = (g: number) => groups[g]!.layout.ranges.length;
  const zeros2 = (g: number) => tf.zeros([n, width(g)]) as tf.Tensor2D;
  const terms = tokenIds === null ? null : concatTargets(tokenTerms, 2, (g) => tf.zeros([n, tokenIds!.shape[1], width(g)]) as tf.Tensor3D);
  return {
    target: needs.target ? concatTargets(target, 1, zeros2) : null,
    targetEmbedding: needs.targetEmbedding ? concatTargets(embedding, 1, zeros2) : null,
    self,
    tokens: tokenIds !== null && terms !== null ? { ids: tokenIds, terms } : null,
    paths,
  };
}
