// TracIn summed per source, sources in first-seen order: rows' scores added per query (tracin(), a shard's checkpoints), or shards' sums added (the merge).

/** One source's TracIn: its rows' scores summed per query. */
export interface SourceInfluence {
  readonly source: string;
  /** Training rows of the source. */
  readonly examples: number;
  /** Per query, in query order: the sum of the source's rows' scores (positive = the source lowers that query's loss). */
  readonly scores: Float64Array;
  /**
   * The mean of `scores` over the queries: the source's influence on the queries taken as one target set
   * (the gradient of a mean loss is the mean of the gradients), comparable with UnTrac's per-source influence.
   */
  readonly mean: number;
}

/** Per-source counts and per-query sums; one accumulator serves every place that sums TracIn by source. */
export class SourceSums {
  private readonly index = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly counts: number[] = [];
  private readonly sums: Float64Array[] = [];

  constructor(private readonly queries: number) {}

  /** Sources seen so far. */
  get size(): number {
    return this.names.length;
  }

  /** The source's slot, made the first time the name is seen. */
  slot(name: string): number {
    let at = this.index.get(name);
    if (at === undefined) {
      at = this.names.length;
      this.index.set(name, at);
      this.names.push(name);
      this.counts.push(0);
      this.sums.push(new Float64Array(this.queries));
    }
    return at;
  }

  /** One training row of the source: counted, and its score for every query (`values[offset + j]`) added. */
  addRow(slot: number, values: ArrayLike<number>, offset: number): void {
    this.counts[slot]!++;
    const sums = this.sums[slot]!;
    for (let j = 0; j < this.queries; j++) sums[j]! += values[offset + j]!;
  }

  /** Part of a source summed elsewhere (a shard): `examples` rows, and their sum for query `query`. */
  addSum(slot: number, examples: number, query: number, score: number): void {
    this.counts[slot]! += examples;
    this.sums[slot]![query]! += score;
  }

  /** Every source with its rows, its sums per query and their mean over the queries. */
  list(): SourceInfluence[] {
    return this.names.map((source, at) => {
      const scores = this.sums[at]!;
      return { source, examples: this.counts[at]!, scores, mean: scores.reduce((a, b) => a + b, 0) / this.queries };
    });
  }
}
