// The findings' pure computations against brute force: the label-mix adjustment of sources, the review queue's shares, the two warnings.
import { describe, expect, it } from 'vitest';
import { adjustForLabelMix, coverageWarning, learningWarning, ReviewShares, type SourceLabelCell } from '../packages/cli/src/report/findings.js';
import { uniform } from '../eval/metrics.js';

describe('adjustForLabelMix', () => {
  // Rows (source, label, value), summed into cells as the store's GROUP BY does.
  const rows: [string, string, number][] = [];
  for (let i = 0; i < 60; i++) rows.push([`s${i % 4}`, i % 3 === 0 ? 'spam' : 'ham', Math.sin(i * 1.7) + (i % 3 === 0 ? -2 : 1)]);
  const cells = new Map<string, SourceLabelCell>();
  for (const [source, label, v] of rows) {
    const c = cells.get(`${source}|${label}`) ?? { source, label, count: 0, sum: 0 };
    cells.set(`${source}|${label}`, { ...c, count: c.count + 1, sum: c.sum + v });
  }
  const adjusted = adjustForLabelMix([...cells.values()]);

  it('adds to 0 over the sources', () => {
    expect(adjusted.reduce((a, s) => a + s.adjusted, 0)).toBeCloseTo(0, 9);
  });

  it("equals each source's sum of (value - its label's mean) row by row", () => {
    const mean = (label: string) => {
      const vs = rows.filter((r) => r[1] === label).map((r) => r[2]);
      return vs.reduce((a, b) => a + b, 0) / vs.length;
    };
    for (const s of adjusted) {
      const brute = rows.filter((r) => r[0] === s.source).reduce((a, r) => a + r[2] - mean(r[1]), 0);
      expect(s.adjusted).toBeCloseTo(brute, 9);
      expect(s.sum).toBeCloseTo(rows.filter((r) => r[0] === s.source).reduce((a, r) => a + r[2], 0), 9);
    }
    expect(adjusted.map((s) => s.adjusted)).toEqual([...adjusted.map((s) => s.adjusted)].sort((a, b) => a - b));
  });
});

describe('the warnings', () => {
  it('coverage: fires under 100% naming the skipped layer, not at 100%', () => {
    const w = coverageWarning({ coveredParams: 88, trainableParams: 100, skipped: [{ name: 'td', className: 'TimeDistributed', reason: 'not covered' }] });
    expect(w?.title).toContain('88.0%');
    expect(w?.detail).toContain('td (TimeDistributed)');
    expect(coverageWarning({ coveredParams: 100, trainableParams: 100, skipped: [] })).toBeNull();
  });

  it('learning: fires when the loss did not fall or ends at chance, not when it learned', () => {
    expect(learningWarning(100, 97, 128, 2)?.title).toBe('The model has not learned the target');
    // Fell by half but still at ln 2 per row (0.693): chance.
    expect(learningWarning(200, 100, 128, 2)?.title).toBe('The model is near chance on the target');
    expect(learningWarning(100, 40, 128, 2)).toBeNull();
    expect(learningWarning(null, 40, 128, 2)).toBeNull();
  });
});

describe('ReviewShares', () => {
  // Self-influence of 997 rows: most near 1, a heavy tail, many ties (rounded to 0.01).
  const rand = uniform(3);
  const values = Array.from({ length: 997 }, () => Math.round(100 * (1 + rand() + (rand() < 0.1 ? 20 * rand() : 0))) / 100);
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor((values.length - 1) / 2)]!;
  const excess = [...values].sort((a, b) => b - a).map((v) => Math.max(0, v - median));
  const total = excess.reduce((a, b) => a + b, 0);
  /** Brute force: the share of the excess held by the top k. */
  const heldBy = (k: number) => excess.slice(0, k).reduce((a, b) => a + b, 0) / total;
  /** Brute force: the fewest top rows holding at least `t` of the excess. */
  const rowsFor = (t: number) => excess.findIndex((_, i) => heldBy(i + 1) >= t - 1e-12) + 1;
  const queue = 37; // not one of the 200 sampled ranks of 997 rows
  const shares = new ReviewShares(values.length, median, total, [0.5, 0.8, 0.9], 200, [queue]);
  for (const v of [...values].sort((a, b) => b - a)) if (v > median) shares.add(v);

  it('counts the rows that hold 50%, 80% and 90% of the expected problems as brute force does', () => {
    const needed = shares.needed();
    for (const t of [0.5, 0.8, 0.9]) {
      expect(rowsFor(t)).toBeGreaterThan(1);
      expect(needed.get(t)).toBe(rowsFor(t));
    }
  });

  it("gives the queue's share exactly, and the curve's points at their ranks", () => {
    expect(shares.shareOfTop(queue)).toBeCloseTo(heldBy(queue), 12);
    expect(shares.shareOfTop(values.length)).toBeCloseTo(1, 12);
    expect(shares.curve().length).toBeGreaterThan(10);
    for (const p of shares.curve()) expect(p.share).toBeCloseTo(heldBy(p.rows), 12);
  });
});
