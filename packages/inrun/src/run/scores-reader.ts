// ScoresReader: one asynchronous read of the device totals (and the top tokens) into Scores.
import type { TokenOptions } from '../attach/options.js';
import type { TokenTotals } from '../accumulators/tokens.js';
import type { DeviceTotals } from '../accumulators/totals.js';
import type { IdIndex } from '../hooks/ids.js';
import type { Scores, TokenScore } from '../types.js';
import type { RunInfoLog } from './info-log.js';

/** What the totals are read from. */
export interface ScoresSource {
  readonly totals: DeviceTotals;
  readonly tokens: TokenTotals | null;
  readonly tokenOptions: TokenOptions;
  /** Column names, in the totals' column order. */
  readonly columns: readonly string[];
}

export class ScoresReader {
  constructor(
    private readonly source: ScoresSource,
    private readonly index: IdIndex,
    private readonly info: RunInfoLog,
  ) {}

  /** One asynchronous read of the device totals (and, with `withTokens`, the top tokens). */
  async read(withTokens: boolean): Promise<Scores> {
    const rows = this.index.size;
    const { columns, steps } = await this.source.totals.read(rows);
    const byName: Record<string, Float32Array> = {};
    this.source.columns.forEach((name, c) => (byName[name] = columns[c]!));
    const tokens: Record<string, TokenScore[][]> = {};
    const weColumns = this.info.current.columns.filter((c) => c.method === 'tracin_we');
    if (withTokens && weColumns.length > 0) {
      const options = this.source.tokenOptions;
      const top = this.source.tokens
        ? await this.source.tokens.top(rows, options.topK ?? 5, new Set(options.ignore ?? []), options.vocabulary)
        : null;
      weColumns.forEach((column, k) => {
        tokens[column.name] = top?.perTarget[k] ?? Array.from({ length: rows }, () => []);
      });
      if (top !== null && top.changedPositions > 0) {
        this.info.noteMeta('tokenPositionsChanged', top.changedPositions);
      }
    }
    return { ids: this.index.ids.slice(), columns: byName, steps, tokens };
  }
}
