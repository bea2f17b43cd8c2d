// sourceValues(): a run's per-example values summed per source (the dataset-level answer that costs no extra training).
import { InrunError, invalid, preview } from '../errors.js';
import type { ExampleId, ExampleInfo, Scores } from '../types.js';

/** One source's share of one column of a run. */
export interface SourceValue {
  readonly source: string;
  /** The column (`shapley1:val`), its method and target. */
  readonly column: string;
  readonly method: string;
  readonly target: string | null;
  /** Examples of the source among the scores. */
  readonly examples: number;
  /** Sum and mean of the source's per-example values (positive = lowered the target's loss). */
  readonly sum: number;
  readonly mean: number;
  /**
   * The source's sum over the column's total (signed: below 0 or above 1 when sources pull in opposite
   * directions; NaN when the total is 0).
   */
  readonly valueShare: number;
  /** The source's examples over all scored examples. */
  readonly dataShare: number;
}

/** Options of {@link sourceValues}. */
export interface SourceValuesOptions {
  /** Only the columns of these targets. @defaultValue every target */
  readonly targets?: readonly string[];
  /** Methods whose columns are summed. @defaultValue ['shapley1', 'shapley2', 'tracin_we'] */
  readonly methods?: readonly string[];
}

/** What {@link sourceValues} returns. */
export interface SourceValues {
  /** Per column, then per source (in first-seen order); examples without a source count as `'(none)'`. */
  readonly table: Readonly<Record<string, Readonly<Record<string, SourceValue>>>>;
  readonly rows: readonly SourceValue[];
}

/** The source given for examples that were not described with one. */
export const NO_SOURCE = '(none)';

/**
 * Sums a run's per-example values per source: for each target column (`shapley1:val`, ...), the sum
 * and mean of each source's examples and its share of the total value next to its share of the data.
 * `sources` is what the run was told (`attach({ examples })`, `run.describe`): example records with a
 * `source`, or a map from example id to source. Sums of first-order values are the source's
 * contribution to the target's loss change over the run (docs/methods.md).
 */
export function sourceValues(scores: Scores, sources: Iterable<ExampleInfo> | ReadonlyMap<ExampleId, string>, options: SourceValuesOptions = {}): SourceValues {
  if (scores === null || typeof scores !== 'object' || !Array.isArray(scores.ids) || typeof scores.columns !== 'object') {
    invalid('scores', 'the Scores of run.close()', scores, 'invalid_input');
  }
  const sourceOf = sourceMap(sources);
  const methods = options.methods ?? ['shapley1', 'shapley2', 'tracin_we'];
  const columns = Object.keys(scores.columns).map((name) => {
    const [method = name, target = null] = name.split(':');
    return { name, method, target };
  });
  const known = [...new Set(columns.flatMap((c) => (c.target === null ? [] : [c.target])))];
  options.targets?.forEach((t, i) => {
    if (!known.includes(t)) throw new InrunError(`unknown target ${preview(t)}; the run's targets are ${known.map((k) => JSON.stringify(k)).join(', ') || 'none'}`, { field: `targets[${i}]` });
  });
  const picked = columns.filter((c) => methods.includes(c.method) && (options.targets === undefined || (c.target !== null && options.targets.includes(c.target))));

  const members = new Map<string, number[]>();
  scores.ids.forEach((id, i) => {
    const source = sourceOf.get(id as ExampleId) ?? NO_SOURCE;
    const list = members.get(source) ?? [];
    list.push(i);
    members.set(source, list);
  });
  const n = scores.ids.length;
  const rows: SourceValue[] = [];
  const table: Record<string, Record<string, SourceValue>> = {};
  for (const c of picked) {
    const values = scores.columns[c.name]!;
    const total = values.reduce((s, v) => s + v, 0);
    table[c.name] = {};
    for (const [source, idx] of members) {
      const sum = idx.reduce((s, i) => s + values[i]!, 0);
      const row = { source, column: c.name, method: c.method, target: c.target, examples: idx.length, sum, mean: sum / idx.length, valueShare: total === 0 ? Number.NaN : sum / total, dataShare: idx.length / n };
      rows.push(row);
      table[c.name]![source] = row;
    }
  }
  return { table, rows };
}

function sourceMap(sources: Iterable<ExampleInfo> | ReadonlyMap<ExampleId, string>): ReadonlyMap<ExampleId, string> {
  if (sources instanceof Map) return sources as ReadonlyMap<ExampleId, string>;
  if (sources === null || typeof sources !== 'object' || typeof (sources as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    invalid('sources', 'example records { id, source } or a Map from id to source', sources, 'invalid_input');
  }
  const map = new Map<ExampleId, string>();
  let i = 0;
  for (const e of sources as Iterable<ExampleInfo>) {
    if (e === null || typeof e !== 'object' || (typeof e.id !== 'number' && typeof e.id !== 'string')) invalid(`sources[${i}].id`, 'an example id', e?.id, 'invalid_input');
    if (e.source !== undefined) map.set(e.id, e.source);
    i++;
  }
  return map;
}
