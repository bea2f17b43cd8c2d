// One ordered pass over a score column: histograms, per-source sums, curation curves, top and bottom rows.
import { InrunError } from '@inrun/store';
import type { StoredColumn, StoredRun } from '../read/stored-run.js';
import { text } from '../read/text.js';
import type { StoreReader } from '../read/reader.js';

/** Labels that mark a row as known-noisy (the demo writes `ham (flipped)`). */
export const NOISY_LABEL = /flipped|noisy|mislabel|corrupt/i;

/** Called now and then during long work. */
export type Progress = (done: number, total: number) => void;

/** Counts per bin for each group (a label or source; the rarest share one `(other)` group). */
export interface Histogram {
  readonly edges: readonly number[];
  /** The x scale the bins were cut on: symlog (its linear range `constant`) for heavy-tailed columns, else linear. */
  readonly scale: { readonly type: 'symlog'; readonly constant: number } | { readonly type: 'linear' };
  readonly groups: ReadonlyMap<string, Float64Array>;
}

/** A point of a curve over the rows in rank order. */
export interface CurvePoint {
  readonly fraction: number;
  readonly value: number;
}

/** What one pass over a column (ascending by value) leaves. */
export interface ColumnScan {
  readonly column: StoredColumn;
  readonly count: number;
  readonly sum: number;
  readonly byLabel: Histogram;
  readonly bySource: Histogram;
  /** Per source: rows and summed value. */
  readonly sources: ReadonlyMap<string, { count: number; sum: number }>;
  /** Fraction dropped, lowest values first, vs the summed value of the dropped rows. */
  readonly dropCurve: readonly CurvePoint[];
  /** Rows whose label is noisy (NOISY_LABEL), and the inspection curves (found share), or null when none. */
  readonly inspection: { readonly noisy: number; readonly lowestFirst: readonly CurvePoint[]; readonly highestFirst: readonly CurvePoint[] } | null;
  /** Example keys of the lowest and the highest values (highest first). */
  readonly lowest: readonly number[];
  readonly highest: readonly number[];
}

const BINS = 40;
/** Fine bins counted during the pass; the shown bins merge them over the 0.5%..99.5% quantile range. */
const FINE = 4000;
const CURVE_POINTS = 200;
const GROUPS = 8;

/** A group's display name (null shows as `(none)`). */
export function groupName(value: unknown): string {
  return value === null || value === undefined ? '(none)' : text(value);
}

/** Every example's source and label as small integers, read once per report (a few bytes per example). */
export interface ExampleGroups {
  readonly sourceOf: Uint32Array;
  readonly labelOf: Uint32Array;
  readonly sources: readonly string[];
  readonly labels: readonly string[];
  readonly sourceCounts: readonly number[];
  readonly labelCounts: readonly number[];
}

/** Reads the run's examples' sources and labels (keys are dense per run: docs/schema.md). */
export async function readGroups(store: StoreReader, run: StoredRun): Promise<ExampleGroups> {
  const [range] = await store.all('SELECT MIN(example_key) AS lo, MAX(example_key) AS hi, COUNT(*) AS n FROM examples WHERE run_id = ?', [run.id]);
  const n = Number(range?.['n'] ?? 0);
  const size = Number(range?.['hi'] ?? -1) + 1;
  // Keys are dense (0..n-1): anything else is a damaged store, not an array of 2^40 slots to allocate.
  if (n > 0 && (!Number.isSafeInteger(size) || size > n || Number(range?.['lo']) < 0)) {
    throw new InrunError(`${store.path}: run ${run.id} has example keys ${String(range?.['lo'])} to ${String(range?.['hi'])} for ${n} examples (they are 0 to n - 1): the store is damaged`, { field: 'store', code: 'invalid_input' });
  }
  const sourceOf = new Uint32Array(size);
  const labelOf = new Uint32Array(size);
  const index = (names: string[], counts: number[], lookup: Map<string, number>, name: string) => {
    let i = lookup.get(name);
    if (i === undefined) {
      i = names.length;
      lookup.set(name, i);
      names.push(name);
      counts.push(0);
    }
    counts[i]! += 1;
    return i;
  };
  const sources: string[] = [];
  const labels: string[] = [];
  const sourceCounts: number[] = [];
  const labelCounts: number[] = [];
  const sourceIds = new Map<string, number>();
  const labelIds = new Map<string, number>();
  for await (const r of store.iterate('SELECT example_key AS k, source, label FROM examples WHERE run_id = ?', [run.id])) {
    const k = Number(r['k']);
    sourceOf[k] = index(sources, sourceCounts, sourceIds, groupName(r['source']));
    labelOf[k] = index(labels, labelCounts, labelIds, groupName(r['label']));
  }
  return { sourceOf, labelOf, sources, labels, sourceCounts, labelCounts };
}

/** Histogram slot per group: the most frequent `GROUPS - 1` (or all, when few) apart, the rest `(other)`. */
function slots(names: readonly string[], counts: readonly number[]): { slotOf: Int32Array; slotNames: string[] } {
  const order = names.map((_, i) => i).sort((a, b) => counts[b]! - counts[a]! || (names[a]! < names[b]! ? -1 : 1));
  const kept = order.length <= GROUPS ? order : order.slice(0, GROUPS - 1);
  const slotOf = new Int32Array(names.length).fill(kept.length);
  kept.forEach((g, i) => (slotOf[g] = i));
  return { slotOf, slotNames: [...kept.map((g) => names[g]!), ...(order.length > kept.length ? ['(other)'] : [])] };
}

/**
 * Streams column `column` of run `run` in ascending order once; memory holds `n` rows of each end and
 * fixed-size aggregates, however many examples the store has.
 */
export async function scanColumn(store: StoreReader, run: StoredRun, column: StoredColumn, groups: ExampleGroups, n: number, progress?: Progress): Promise<ColumnScan> {
  const [stats] = await store.all('SELECT COUNT(*) AS n, MIN(value) AS lo, MAX(value) AS hi FROM scores WHERE run_id = ? AND column_id = ?', [run.id, column.id]);
  const count = Number(stats?.['n'] ?? 0);
  const lo = Number(stats?.['lo'] ?? 0);
  const hi = Number(stats?.['hi'] ?? 0);
  // Self-influence is heavy-tailed (a few rows hold most of it): its bins are cut on a symlog scale
  // whose linear range is the median row's value, so the bulk and the tail both show.
  const constant = column.method === 'tracin_self' ? await medianOf(store, run, column, count) : 0;
  const scale: Histogram['scale'] = constant > 0 ? { type: 'symlog', constant } : { type: 'linear' };
  const fwd = (x: number) => (scale.type === 'symlog' ? Math.sign(x) * Math.log1p(Math.abs(x) / scale.constant) : x);
  const inv = (t: number) => (scale.type === 'symlog' ? Math.sign(t) * scale.constant * Math.expm1(Math.abs(t)) : t);
  const tLo = fwd(lo);
  const width = fwd(hi) > tLo ? (fwd(hi) - tLo) / FINE : 1;
  const sourceSlots = slots(groups.sources, groups.sourceCounts);
  const labelSlots = slots(groups.labels, groups.labelCounts);
  const bySource = sourceSlots.slotNames.map(() => new Float64Array(FINE));
  const byLabel = labelSlots.slotNames.map(() => new Float64Array(FINE));
  const noisyLabel = Uint8Array.from(groups.labels, (l) => (NOISY_LABEL.test(l) ? 1 : 0));
  const sourceCount = new Float64Array(groups.sources.length);
  const sourceSum = new Float64Array(groups.sources.length);
  // Cumulative value and noisy rows found, sampled at CURVE_POINTS + 1 ranks (the curves need no more).
  const marks = Array.from({ length: CURVE_POINTS + 1 }, (_, j) => Math.round((j / CURVE_POINTS) * count));
  const cumulative = new Float64Array(CURVE_POINTS + 1);
  const found = new Float64Array(CURVE_POINTS + 1);
  let mark = 1;
  let sum = 0;
  let noisy = 0;
  const lowest: number[] = [];
  const ring: number[] = new Array<number>(n);
  let seen = 0;
  for await (const r of store.iterate('SELECT example_key AS k, value AS v FROM scores WHERE run_id = ? AND column_id = ? ORDER BY value, example_key', [run.id, column.id])) {
    const key = Number(r['k']);
    const v = Number(r['v']);
    const source = groups.sourceOf[key] ?? 0;
    const label = groups.labelOf[key] ?? 0;
    const bin = Math.min(FINE - 1, Math.max(0, Math.floor((fwd(v) - tLo) / width)));
    bySource[sourceSlots.slotOf[source]!]![bin]! += 1;
    byLabel[labelSlots.slotOf[label]!]![bin]! += 1;
    sourceCount[source]! += 1;
    sourceSum[source]! += v;
    sum += v;
    noisy += noisyLabel[label] ?? 0;
    if (seen < n) lowest.push(key);
    ring[seen % n] = key;
    seen += 1;
    while (mark <= CURVE_POINTS && marks[mark] === seen) {
      cumulative[mark] = sum;
      found[mark] = noisy;
      mark += 1;
    }
    if (progress !== undefined && seen % 50_000 === 0) progress(seen, count);
  }
  progress?.(seen, count);
  const sources = new Map<string, { count: number; sum: number }>();
  groups.sources.forEach((name, i) => {
    if (sourceCount[i]! > 0) sources.set(name, { count: sourceCount[i]!, sum: sourceSum[i]! });
  });
  const asMap = (names: readonly string[], counts: Float64Array[]) => new Map(names.map((name, i) => [name, counts[i]!]));
  const highest: number[] = [];
  for (let i = 1; i <= Math.min(n, seen); i++) highest.push(ring[(seen - i) % n]!);
  const fraction = (j: number) => (count === 0 ? 0 : marks[j]! / count);
  return {
    column,
    count: seen,
    sum,
    byLabel: coarsen(asMap(labelSlots.slotNames, byLabel), tLo, width, seen, scale, inv),
    bySource: coarsen(asMap(sourceSlots.slotNames, bySource), tLo, width, seen, scale, inv),
    sources,
    dropCurve: marks.map((_, j) => ({ fraction: fraction(j), value: cumulative[j]! })),
    inspection:
      noisy === 0
        ? null
        : {
            noisy,
            lowestFirst: marks.map((_, j) => ({ fraction: fraction(j), value: found[j]! / noisy })),
            // Highest first: the top k rows are all rows but the lowest count - k.
            highestFirst: marks.map((_, j) => ({ fraction: fraction(j), value: (noisy - found[CURVE_POINTS - j]!) / noisy })),
          },
    lowest,
    highest,
  };
}

/**
 * Merges fine bins into at most BINS shown bins over the range holding all but the 0.5% of rows at
 * each end (heavy tails would squeeze the bulk into one bar); the end bins take the tails.
 */
function coarsen(fine: Map<string, Float64Array>, lo: number, width: number, rows: number, scale: Histogram['scale'], inv: (t: number) => number): Histogram {
  const total = new Float64Array(FINE);
  for (const counts of fine.values()) counts.forEach((c, i) => (total[i]! += c));
  let first = 0;
  let last = FINE - 1;
  for (let below = 0; first < FINE - 1 && below + total[first]! <= rows * 0.005; first++) below += total[first]!;
  for (let above = 0; last > first && above + total[last]! <= rows * 0.005; last--) above += total[last]!;
  const per = Math.max(1, Math.ceil((last - first + 1) / BINS));
  const shown = Math.ceil((last - first + 1) / per);
  const edges = Array.from({ length: shown + 1 }, (_, j) => inv(lo + (first + j * per) * width));
  const groups = new Map<string, Float64Array>();
  for (const [name, counts] of fine) {
    const out = new Float64Array(shown);
    counts.forEach((c, i) => (out[Math.min(shown - 1, Math.max(0, Math.floor((i - first) / per)))]! += c));
    groups.set(name, out);
  }
  return { edges, groups, scale };
}

/** The median row's value of a column (0 when it has no rows). */
async function medianOf(store: StoreReader, run: StoredRun, column: StoredColumn, count: number): Promise<number> {
  if (count === 0) return 0;
  const [mid] = await store.all('SELECT value FROM scores WHERE run_id = ? AND column_id = ? ORDER BY value, example_key LIMIT 1 OFFSET ?', [run.id, column.id, Math.floor((count - 1) / 2)]);
  return Number(mid?.['value'] ?? 0);
}
