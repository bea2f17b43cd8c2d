// eval/lds.ts's score(): LDS of scores whose subset sums are the retrained outputs (exactly, or reversed) is 1 (or -1).
import { describe, expect, it } from 'vitest';
import { ensembleMean, score, subsetRows } from '../eval/lds.js';

describe('LDS score', () => {
  const n = 6;
  const q = 2;
  // score[i, j] row-major: query 0 values row i as i, query 1 as -i^2.
  const matrix = Array.from({ length: n * q }, (_, k) => (k % q === 0 ? Math.floor(k / q) : -((Math.floor(k / q)) ** 2)));
  const subsets = [[0, 1, 2], [3, 4, 5], [0, 4, 5], [1, 2, 3], [0, 2, 5]];
  const sums = subsets.map((rows) => [rows.reduce((s, i) => s + i, 0), rows.reduce((s, i) => s - i * i, 0)]);

  it('is 1 when the retrained outputs rank the subsets as the summed scores do, -1 when reversed', () => {
    // A monotone transform of the sums: Spearman only sees ranks.
    const same = score(matrix, subsets, sums.map(([a, b]) => [Math.exp(a! / 3), b! * 2 + 1]), q);
    expect(same.mean).toBeCloseTo(1, 12);
    expect(same.spread).toBeCloseTo(0, 12);
    const reversed = score(matrix, subsets, sums.map(([a, b]) => [-a!, -b!]), q);
    expect(reversed.mean).toBeCloseTo(-1, 12);
    const mixed = score(matrix, subsets, sums.map(([a, b]) => [a!, -b!]), q);
    expect(mixed.mean).toBeCloseTo(0, 12);
    expect(mixed.spread).toBeCloseTo(1, 12);
  });
});

describe('LDS subsets and ensembles', () => {
  it('draws distinct rows, the given share, the same for the same index and different across indices', () => {
    const a = subsetRows(100, 3);
    expect(a).toHaveLength(50);
    expect(new Set(a).size).toBe(50);
    expect(a.every((i) => Number.isInteger(i) && i >= 0 && i < 100)).toBe(true);
    expect(subsetRows(100, 3)).toEqual(a);
    expect(subsetRows(100, 4)).not.toEqual(a);
    expect(subsetRows(100, 3, 0.9)).toHaveLength(90);
    // Not the first half in order: a shuffle, so every row can be left out.
    expect([...a].sort((x, y) => x - y)).not.toEqual([...Array(50).keys()]);
  });

  it('averages the first k matrices only', () => {
    const m = [[1, 2], [3, 6], [100, 100]];
    expect(Array.from(ensembleMean(m, 1))).toEqual([1, 2]);
    expect(Array.from(ensembleMean(m, 2))).toEqual([2, 4]);
  });
});
