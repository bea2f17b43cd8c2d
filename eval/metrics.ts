/** Ranking metrics for detection tasks: higher score = more suspicious. */

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

/** 0-based ranks in ascending order, ties given their average rank. */
function ranks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => v[x]! - v[y]!);
  const r = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && v[order[j + 1]!] === v[order[i]!]) j++;
    for (let k = i; k <= j; k++) r[order[k]!] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

/** Share of positives among the `fraction` highest scores. */
export function shareInTop(scores: ArrayLike<number>, positive: ArrayLike<number>, fraction: number): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const top = order.slice(0, Math.max(1, Math.ceil(scores.length * fraction)));
  return top.reduce((s, i) => s + (positive[i] ? 1 : 0), 0) / top.length;
}

/** Spearman rank correlation (tied ranks averaged): Pearson over the ranks. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(ranks(a), ranks(b));
}

/** Pearson correlation (NaN when either side is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]! / n;
    mb += b[i]! / n;
  }
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += (a[i]! - ma) * (b[i]! - mb);
    da += (a[i]! - ma) ** 2;
    db += (b[i]! - mb) ** 2;
  }
  return da === 0 || db === 0 ? Number.NaN : num / Math.sqrt(da * db);
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
