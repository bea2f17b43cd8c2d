// One ghost kernel for every method: a step's per-example products summed over layers and pieces.
import * as tf from '@tensorflow/tfjs';
import { choosePath, pieceSelfProducts, pieceTargetProducts } from './pieces.js';
import type { GhostPath, LayerRows, ReportedPath, TargetLayout } from './types.js';

/** Which products a step needs (the union over the run's methods). */
export interface ProductNeeds {
  /** `<G_i, G_T>` over every covered layer. */
  readonly target: boolean;
  /** `<G_i, G_T>` over word-embedding layers only (TracIn-WE). */
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
    if (needs.self) {
      for (const piece of layer.pieces) self = addInto(self, pieceSelfProducts(piece, n));
    }
    if (!wantTarget || (!layer.embedding && !needs.target)) continue;
    groups.forEach((group, g) => {
      const tgt = group.rows.get(key);
      if (tgt === undefined) return;
      let sum: tf.Tensor2D | null = null;
      layer.pieces.forEach((piece, p) => {
        const other = tgt.pieces[p]!;
        const products = pieceTargetProducts(piece, other, group.layout, force === 'auto' ? choosePath(piece, other, group.layout.ranges.length) : force);
        if (p === 0 && !paths.has(key)) paths.set(key, products.path);
        sum = addInto(sum, products.perExample);
        if (needs.tokens === key && products.perPosition !== undefined && piece.form === 'table') {
          tokenTerms[g] = products.perPosition();
          tokenIds = piece.ids;
        }
      });
      if (sum === null) return;
      if (needs.target) target[g] = addInto(target[g]!, sum);
      if (needs.targetEmbedding && layer.embedding) embedding[g] = addInto(embedding[g]!, sum);
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
