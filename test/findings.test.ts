// The findings' pure computations against brute force: the label-mix adjustment of sources and the two warnings.
import { describe, expect, it } from 'vitest';
import { adjustForLabelMix, coverageWarning, learningWarning, type SourceLabelCell } from '../packages/cli/src/report/findings.js';

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
