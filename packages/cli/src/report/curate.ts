// curate: the manifest of examples to drop (lowest values, lowest within their label, negative, highest self-influence, a source) and its predicted effect.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InrunError } from '@inrun/store';
import { findColumn, readRun, type StoredColumn, type StoredRun, valueColumn } from '../read/stored-run.js';
import { csvField } from '../read/text.js';
import { typedId } from '../read/example-id.js';
import { openStore } from '../read/open-store.js';
import { checkOutputNotInput } from '../read/output-path.js';
import type { SqlParam, StoreReader } from '../read/reader.js';

/** Options of {@link curate}. */
export interface CurateOptions {
  /**
   * What to drop: `lowest:10%` or `lowest:500` (lowest values of `column`), `negative` (values below 0),
   * `self-top:5%` or `self-top:200` (highest `tracin_self`), `source:NAME` (every example of a source),
   * `label-lowest:5%` or `label-lowest:200` (lowest value compared within its label: the value minus
   * the mean value of the example's label, so a target that favours one label does not pick its rows).
   */
  readonly drop: string;
  /** The manifest: `.csv` or `.jsonl`. */
  readonly out: string;
  /** The column that ranks examples (`self-top` always ranks by `tracin_self`). @defaultValue the first `shapley1` column */
  readonly column?: string;
  /** @defaultValue the newest run of the store */
  readonly run?: string;
}

/** What {@link curate} wrote and predicts. */
export interface CurateResult {
  readonly out: string;
  readonly runId: string;
  readonly dropped: number;
  readonly examples: number;
  /** The column that ranked the dropped examples. */
  readonly column: string;
  /** The first-order value column summed for the prediction, or null when the run has none. */
  readonly valueColumn: string | null;
  /**
   * Sum of the dropped examples' first-order values: the predicted change of the target loss had they
   * not been trained on (negative = the loss would fall). First order, from one run: it ignores how
   * the rest of training would change without them; retrain to confirm.
   */
  readonly predictedChange: number | null;
  /** Rows of the value column's target: the prediction's total is over them. */
  readonly targetRows: number | null;
  /**
   * {@link CurateResult.predictedChange} divided by {@link CurateResult.targetRows}: the predicted
   * change of the target's mean loss per row (the total is the loss summed over the target's rows).
   */
  readonly predictedChangePerRow: number | null;
}

/** Rows of a column's target from the run info, or null when it has none recorded. */
export function targetRowsOf(run: StoredRun, column: StoredColumn | undefined): number | null {
  const t = run.info.targets.find((x) => x.name === column?.target) ?? run.info.targets[0];
  return column === undefined || t === undefined || t.rows <= 0 ? null : t.rows;
}

/** How many of `examples` a `lowest:N%` (or `self-top:N%`) drop takes: rounded up, as curate does. */
export function dropCount(examples: number, percent: number): number {
  return Math.ceil((percent / 100) * examples);
}

/**
 * The predicted change of the target loss from dropping the `count` examples of lowest `column`
 * (summing their `column` values in the manifest's order): the report's figure, computed the way
 * {@link curate} computes `lowest:N`, total and per target row.
 */
export async function predictLowest(store: StoreReader, run: StoredRun, column: StoredColumn, count: number): Promise<{ total: number; perRow: number | null }> {
  const p = await predictDrop(store, run, { drop: `lowest:${Math.max(0, Math.floor(count))}`, column: column.name });
  return { total: p.total ?? 0, perRow: p.perRow };
}

/** What dropping the rows of a `--drop` spec predicts, computed as {@link curate} computes it (without writing). */
export interface DropPrediction {
  readonly dropped: number;
  /** Summed first-order values of the dropped rows (the target loss summed over its rows), or null without one. */
  readonly total: number | null;
  /** `total` / the target's rows: the change of the mean loss. */
  readonly perRow: number | null;
  readonly targetRows: number | null;
  /** The dropped rows' example keys in the manifest's order (the first `keys` asked for). */
  readonly keys: readonly number[];
}

/**
 * The dropped rows of `options.drop` and their predicted effect: the same rows, order and sum as
 * {@link curate}'s manifest (one query builds both), so the report and `inrun curate` agree.
 */
export async function predictDrop(store: StoreReader, run: StoredRun, options: { drop: string; column?: string; keys?: number }): Promise<DropPrediction> {
  const plan = await planDrop(store, run, parseDrop(options.drop), options.column);
  let dropped = 0;
  let total = 0;
  const keys: number[] = [];
  for await (const r of store.iterate(plan.sql, plan.params)) {
    dropped += 1;
    if (r['value'] !== null && r['value'] !== undefined) total += Number(r['value']);
    if (keys.length < (options.keys ?? 0)) keys.push(Number(r['key']));
  }
  const has = plan.value !== undefined;
  return { dropped, total: has ? total : null, perRow: has && plan.targetRows !== null ? total / plan.targetRows : null, targetRows: plan.targetRows, keys };
}

interface DropPlan {
  readonly sql: string;
  readonly params: SqlParam[];
  /** The ranking column. */
  readonly column: StoredColumn;
  /** The first-order column summed for the prediction. */
  readonly value: StoredColumn | undefined;
  readonly targetRows: number | null;
  readonly examples: number;
}

/** The one query behind a manifest and its prediction: rows in drop order with their score and first-order value. */
async function planDrop(store: StoreReader, run: StoredRun, drop: DropSpec, columnName: string | undefined): Promise<DropPlan> {
  // The prediction sums first-order values of the ranking column's target (or of the first target).
  const target = columnName === undefined ? null : findColumn(run, columnName).target;
  const firstOrder = run.columns.filter((c) => c.method === 'shapley1');
  const value = firstOrder.find((c) => c.target === target) ?? firstOrder[0];
  let column: StoredColumn;
  if (drop.kind === 'self-top') {
    const self = run.columns.find((c) => c.method === 'tracin_self');
    if (self === undefined) throw new InrunError(`run "${run.id}" has no tracin_self column; its columns: ${run.columns.map((c) => c.name).join(', ')}`, { field: 'drop', code: 'invalid_option' });
    column = self;
  } else if (columnName !== undefined) column = findColumn(run, columnName);
  else {
    const first = valueColumn(run);
    if (first === undefined) throw new InrunError(`run "${run.id}" has no score column`, { field: 'column', code: 'invalid_option' });
    column = first;
  }
  const [counted] = await store.all('SELECT COUNT(*) AS n FROM scores WHERE run_id = ? AND column_id = ?', [run.id, column.id]);
  const examples = Number(counted?.['n'] ?? 0);
  const limit = drop.count === undefined ? null : drop.count.percent ? dropCount(examples, drop.count.n) : drop.count.n;
  const where = drop.kind === 'negative' ? 'AND s.value < 0' : drop.kind === 'source' ? 'AND e.source = ?' : '';
  // label-lowest: the value compared within its label (minus the label's mean value), lowest first.
  const within = drop.kind === 'label-lowest';
  const means = within
    ? `JOIN (SELECT e2.label AS label, AVG(s2.value) AS mean FROM scores s2 JOIN examples e2 ON e2.run_id = s2.run_id AND e2.example_key = s2.example_key
        WHERE s2.run_id = ? AND s2.column_id = ? GROUP BY e2.label) m ON m.label IS NOT DISTINCT FROM e.label`
    : '';
  const params: SqlParam[] = [value?.id ?? -1, ...(within ? [run.id, column.id] : []), run.id, column.id, ...(drop.kind === 'source' ? [drop.source!] : [])];
  const order = drop.kind === 'self-top' ? 's.value DESC' : within ? 's.value - m.mean' : 's.value';
  const sql = `SELECT s.example_key AS key, e.example_id AS id, ${store.idType('e')} AS id_type, e.source AS source, e.label AS label, s.value AS score, v.value AS value
      FROM scores s JOIN examples e ON e.run_id = s.run_id AND e.example_key = s.example_key
      LEFT JOIN scores v ON v.run_id = s.run_id AND v.example_key = s.example_key AND v.column_id = ?
      ${means}
      WHERE s.run_id = ? AND s.column_id = ? ${where}
      ORDER BY ${order}, s.example_key${limit === null ? '' : ` LIMIT ${limit}`}`;
  return { sql, params, column, value, targetRows: targetRowsOf(run, value), examples };
}

interface DropSpec {
  readonly kind: 'lowest' | 'label-lowest' | 'negative' | 'self-top' | 'source';
  readonly count?: { readonly percent: boolean; readonly n: number };
  readonly source?: string;
}

/** Parses a `--drop` value; throws `invalid_option` on `drop` saying what is accepted. */
export function parseDrop(spec: string): DropSpec {
  const bad = () => new InrunError(`expected lowest:N|N%, label-lowest:N|N%, negative, self-top:N|N% or source:NAME, got ${JSON.stringify(spec)}`, { field: 'drop', code: 'invalid_option' });
  if (spec === 'negative') return { kind: 'negative' };
  const at = spec.indexOf(':');
  if (at < 0) throw bad();
  const kind = spec.slice(0, at);
  const arg = spec.slice(at + 1);
  if (kind === 'source') {
    if (arg.length === 0) throw bad();
    return { kind, source: arg };
  }
  if (kind !== 'lowest' && kind !== 'label-lowest' && kind !== 'self-top') throw bad();
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(arg);
  if (m === null) throw bad();
  const n = Number(m[1]);
  const percent = m[2] === '%';
  // A count past 2^53 is no count (and no SQL LIMIT): refused like any bad value.
  if ((percent && n > 100) || (!percent && !Number.isSafeInteger(n))) throw bad();
  return { kind, count: { percent, n } };
}

/**
 * Writes the manifest of the examples to drop (id, source, label, the ranking column and its score,
 * rank, first-order value), streaming however many there are, and returns the predicted effect.
 */
export async function curate(storePath: string, options: CurateOptions): Promise<CurateResult> {
  const drop = parseDrop(options.drop);
  const format = options.out.endsWith('.csv') ? 'csv' : options.out.endsWith('.jsonl') ? 'jsonl' : null;
  if (format === null) throw new InrunError(`expected a .csv or .jsonl file, got ${JSON.stringify(options.out)}`, { field: 'out', code: 'invalid_option' });
  checkOutputNotInput(options.out, [storePath]);
  const store = await openStore(storePath);
  try {
    const run = await readRun(store, options.run);
    const { sql, params, column, value, targetRows, examples } = await planDrop(store, run, drop, options.column);
    mkdirSync(dirname(resolve(options.out)), { recursive: true });
    // Written aside, then renamed over `out`: a curate that fails leaves an existing manifest as it was.
    const aside = join(dirname(resolve(options.out)), `.${basename(options.out)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    const fd = openSync(aside, 'wx');
    let dropped = 0;
    let predicted = 0;
    let written = false;
    try {
      let buffer = format === 'csv' ? 'example_id,source,label,column,score,rank,value,value_per_target_row\n' : '';
      for await (const r of store.iterate(sql, params)) {
        dropped += 1;
        const v = r['value'] === null || r['value'] === undefined ? null : Number(r['value']);
        if (v !== null) predicted += v;
        const row = { example_id: typedId(r['id'], r['id_type']), source: r['source'] ?? null, label: r['label'] ?? null, column: column.name, score: Number(r['score']), rank: dropped, value: v, value_per_target_row: v === null || targetRows === null ? null : v / targetRows };
        buffer += format === 'csv' ? `${Object.values(row).map(csvField).join(',')}\n` : `${JSON.stringify(row)}\n`;
        if (buffer.length > 1 << 16) {
          writeSync(fd, buffer);
          buffer = '';
        }
      }
      writeSync(fd, buffer);
      fsyncSync(fd);
      written = true;
    } finally {
      closeSync(fd);
      if (written) renameSync(aside, options.out);
      else rmSync(aside, { force: true });
    }
    return { out: options.out, runId: run.id, dropped, examples, column: column.name, valueColumn: value?.name ?? null, predictedChange: value === undefined ? null : predicted, targetRows, predictedChangePerRow: value === undefined || targetRows === null ? null : predicted / targetRows };
  } finally {
    await store.close();
  }
}
