/** Ranking metrics for detection tasks: higher score = more suspicious. */
import { pearson, ranks, spearman } from '../packages/cli/src/report/ranks.js';

export { pearson, spearman };

/** Area under the ROC curve (Mann-Whitney U with tied ranks averaged): 0.5 = chance, 1 = perfect. */
export function auroc(scores: ArrayLike<number>, positive: ArrayLike<number>): number {
  const rank = ranks(scores);
  let pos = 0;
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    if (positive[i]) {
      pos++;
      sum += rank[i]! + 1;
    }
  }
  const neg = scores.length - pos;
  return pos === 0 || neg === 0 ? Number.NaN : (sum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Share of positives among the `fraction` highest scores. */
export function shareInTop(scores: ArrayLike<number>, positive: ArrayLike<number>, fraction: number): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const top = order.slice(0, Math.max(1, Math.ceil(scores.length * fraction)));
  return top.reduce((s, i) => s + (positive[i] ? 1 : 0), 0) / top.length;
}

/** Seeded uniform numbers in [0, 1). */
export function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    s ^= s >>> 13;
    return (s >>> 0) / 4294967296;
  };
}
