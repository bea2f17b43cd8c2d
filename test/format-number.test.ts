// The report's numbers are written for people: no exponent notation in the page's text (issue: "3.363e-4").
import { describe, expect, it } from 'vitest';
import { formatNumber } from '../packages/cli/src/report/html.js';

describe('formatNumber', () => {
  it('writes decimals and digit groups, and a power of ten only below 1e-6', () => {
    expect(formatNumber(3.363e-4)).toBe('0.0003363');
    expect(formatNumber(-0.12)).toBe('-0.1200');
    expect(formatNumber(1234567.8)).toBe('1,235,000');
    expect(formatNumber(5046)).toBe('5,046');
    expect(formatNumber(-2.5e-8)).toBe('-2.500×10⁻⁸');
    expect(formatNumber(Number.NaN)).toBe('NaN');
    for (const x of [1e-3, 4.2e-5, 9.99e-7, 3e6, 7.77e12]) expect(formatNumber(x)).not.toMatch(/\de[+-]?\d/);
  });
});
