// The findings' computations from the scores alone: label-mix adjustment of sources, the review queue's expected share, the warnings.

/** One (source, label) cell of a column: its rows and summed value. */
export interface SourceLabelCell {
  readonly source: string;
  readonly label: string;
  readonly count: number;
  readonly sum: number;
}

/** A source's value beside what its label mix alone would give it. */
export interface AdjustedSource {
  readonly source: string;
  readonly count: number;
  /** Summed value (what dropping the source predicts). */
  readonly sum: number;
  /** Σ over its labels of (its rows of the label x the label's mean value): the value its label mix alone explains. */
  readonly expected: number;
  /** `sum - expected`: the value after accounting for the label mix (the label-balanced view). */
  readonly adjusted: number;
}

/** Per label: rows, summed value and mean value over all sources. */
export function labelMeans(cells: readonly SourceLabelCell[]): Map<string, { count: number; sum: number; mean: number }> {
  const out = new Map<string, { count: number; sum: number; mean: number }>();
  for (const c of cells) {
    const m = out.get(c.label) ?? { count: 0, sum: 0, mean: 0 };
    m.count += c.count;
    m.sum += c.sum;
    out.set(c.label, m);
  }
  for (const m of out.values()) m.mean = m.count === 0 ? 0 : m.sum / m.count;
  return out;
}

/**
 * Each source's value after its label mix: a source of mostly one label inherits that label's mean
 * value (a target that is mostly ham rewards ham rows); `adjusted` is what is left. The adjusted
 * values sum to 0 over all sources. Sorted by `adjusted`, lowest (most harmful) first.
 */
export function adjustForLabelMix(cells: readonly SourceLabelCell[]): AdjustedSource[] {
  const means = labelMeans(cells);
  const bySource = new Map<string, { count: number; sum: number; expected: number }>();
  for (const c of cells) {
    const s = bySource.get(c.source) ?? { count: 0, sum: 0, expected: 0 };
    s.count += c.count;
    s.sum += c.sum;
    s.expected += c.count * means.get(c.label)!.mean;
    bySource.set(c.source, s);
  }
  return [...bySource.entries()]
    .map(([source, s]) => ({ source, ...s, adjusted: s.sum - s.expected }))
    .sort((a, b) => a.adjusted - b.adjusted || (a.source < b.source ? -1 : 1));
}

/**
 * Whether values reward one label: the labels' mean values have opposite signs, or the largest and
 * smallest differ by more than the spread `scale` (e.g. the mean |value|). Then comparing rows or
 * sources across labels measures mostly their label, not their quality.
 */
export function labelsDiffer(means: ReadonlyMap<string, { count: number; mean: number }>, scale: number): boolean {
  const big = [...means.values()].filter((m) => m.count >= 5).map((m) => m.mean);
  if (big.length < 2) return false;
  const hi = Math.max(...big);
  const lo = Math.min(...big);
  return (hi > 0 && lo < 0) || hi - lo > scale;
}

/** Share of a label mix per label, e.g. `{ ham: 0.66, spam: 0.34 }`. */
export function mixShares(counts: ReadonlyMap<string, number>): Map<string, number> {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return new Map([...counts].map(([l, n]) => [l, total === 0 ? 0 : n / total]));
}

/** The largest gap between two label mixes' shares (labels missing on one side count 0). */
export function mixGap(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): number {
  let gap = 0;
  for (const l of new Set([...a.keys(), ...b.keys()])) gap = Math.max(gap, Math.abs((a.get(l) ?? 0) - (b.get(l) ?? 0)));
  return gap;
}

/**
 * The review queue's expected share, from self-influence alone. Most rows have a typical
 * self-influence; mislabelled and odd rows stand out above it. A row's excess = its self-influence
 * minus the median row's (0 below it); the expected problems are spread like the excess, so the top
 * k rows hold `share(k)` of them. (On the demo, 10% labels flipped, the excess share of the top k is
 * within a few points of the flipped share found from k = 600 of 5,046 on: docs/report.md.)
 */
export class ReviewShares {
  private readonly marks: number[];
  private readonly points: { rows: number; share: number }[] = [];
  private done = 0;
  private cumulative = 0;
  private readonly reached = new Map<number, number>();

  /**
   * @param count - rows in the column
   * @param median - the median row's self-influence
   * @param totalExcess - Σ max(0, value - median) over all rows
   * @param targets - shares to report the needed rows for
   * @param points - sampled ranks of the curve
   * @param exact - ranks the curve holds exactly besides the sampled ones (the queue's length, so its share is not read off a neighbour)
   */
  constructor(
    readonly count: number,
    readonly median: number,
    readonly totalExcess: number,
    private readonly targets: readonly number[] = [0.5, 0.8, 0.9],
    points = 200,
    exact: readonly number[] = [],
  ) {
    const sampled = Array.from({ length: points }, (_, j) => Math.max(1, Math.round(((j + 1) / points) * count)));
    this.marks = [...new Set([...sampled, ...exact.filter((k) => k >= 1 && k <= count)])].sort((a, b) => a - b);
  }

  /** Feeds the next row, highest self-influence first. */
  add(value: number): void {
    this.done += 1;
    this.cumulative += Math.max(0, value - this.median);
    const share = this.share();
    for (const t of this.targets) if (!this.reached.has(t) && share >= t - 1e-12) this.reached.set(t, this.done);
    while (this.marks.length > 0 && this.marks[0]! <= this.done) {
      this.marks.shift();
      this.points.push({ rows: this.done, share });
    }
  }

  /** The excess share held by the rows fed so far. */
  share(): number {
    return this.totalExcess > 0 ? Math.min(1, this.cumulative / this.totalExcess) : 0;
  }

  /** Rows to review for each target share (null when not reached by the rows fed). */
  needed(): Map<number, number | null> {
    return new Map(this.targets.map((t) => [t, this.reached.get(t) ?? null]));
  }

  /** The curve: rows reviewed (highest first) vs excess share, at the sampled ranks fed so far. */
  curve(): readonly { rows: number; share: number }[] {
    return this.points;
  }

  /**
   * The excess share held by the top `rows`: exact at a curve rank (pass `rows` in `exact`) and past the
   * last row fed (rows at or below the median add nothing); between two sampled ranks, the lower one's.
   */
  shareOfTop(rows: number): number {
    const curve = this.points;
    if (curve.length === 0 || rows >= curve.at(-1)!.rows) return rows >= this.done ? this.share() : (curve.at(-1)?.share ?? 0);
    let best = 0;
    for (const p of curve) if (p.rows <= rows) best = p.share;
    return best;
  }
}

/** A warning shown first: what is wrong, and why the values cannot then be trusted as they are. */
export interface Warning {
  readonly title: string;
  readonly detail: string;
}

/** The coverage warning: parameters the scores do not cover (named, with why). */
export function coverageWarning(layers: { coveredParams: number; trainableParams: number; skipped: readonly { name: string; className: string; reason: string }[] }): Warning | null {
  const { coveredParams, trainableParams, skipped } = layers;
  if (trainableParams <= 0 || coveredParams >= trainableParams) return null;
  const share = coveredParams / trainableParams;
  const named = skipped.map((l) => `${l.name} (${l.className}): ${l.reason}`).join('; ');
  return {
    title: `The scores cover ${(share * 100).toFixed(1)}% of the trainable parameters`,
    detail: `${coveredParams} of ${trainableParams} parameters are covered. ${named === '' ? 'The uncovered weights belong to ops inrun did not see.' : `Skipped: ${named}.`} What the uncovered layers learned from each example is missing from every value.`,
  };
}

/**
 * The "not learned" warning from the stored target losses (the loss before each step): the last is
 * not below 95% of the first, or, with `classes` labels, the mean loss per target row is at or above
 * ln(classes), a cross-entropy no better than guessing. Null when the target learned, or no loss is stored.
 */
export function learningWarning(first: number | null, last: number | null, rows: number | null, classes: number): Warning | null {
  if (first === null || last === null) return null;
  const per = (x: number) => (rows === null ? x : x / rows);
  const unit = rows === null ? '' : ' per target row';
  if (last >= 0.95 * first) {
    return {
      title: 'The model has not learned the target',
      detail: `The target loss went from ${per(first).toPrecision(3)} to ${per(last).toPrecision(3)}${unit} over the run (not below 95% of its start). The values are then mostly noise: train longer or fix the model, then score again.`,
    };
  }
  if (classes >= 2 && rows !== null && last / rows >= Math.log(classes)) {
    return {
      title: 'The model is near chance on the target',
      detail: `The target loss ended at ${per(last).toPrecision(3)}${unit}, at or above ln ${classes} = ${Math.log(classes).toPrecision(3)}: a cross-entropy over ${classes} labels no better than guessing. The values are then mostly noise.`,
    };
  }
  return null;
}
