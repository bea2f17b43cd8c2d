// Cost rules that pick the cheaper ghost path (pairwise or materialised) per piece.
import type { GhostPath } from './types.js';

/**
 * Multiply-adds of the two ways to get `<G_i, G_T>` for every training example i (docs/methods.md,
 * "Ghost products"). Pairwise: Gram matrices of inputs and of output gradients against every target row.
 * Materialised: build the target gradient once, then one extra forward matMul per training row.
 */
export function denseCosts(n: number, t: number, k: number, tk: number, dIn: number, dOut: number, targets: number) {
  return {
    pairwise: n * t * k * tk * (dIn + dOut),
    materialised: k * tk * dIn * dOut + n * t * dIn * dOut * targets,
  };
}

/** Embedding: pairwise compares ids position by position; materialised scatters into a table. */
export function embeddingCosts(n: number, t: number, k: number, tk: number, dim: number, vocab: number, targets: number) {
  return {
    pairwise: n * t * k * tk * (dim + 1),
    materialised: (k * tk + n * t + vocab) * dim * targets,
  };
}

export function cheaper(costs: { pairwise: number; materialised: number }): GhostPath {
  return costs.pairwise <= costs.materialised ? 'pairwise' : 'materialised';
}
