// compareRuns: how stable two runs' rankings are, per shared column (Spearman, top-k and bottom-k overlap).
import { InrunError } from '@inrun/store';
import { spearman } from './ranks.js';
import { readRun } from '../read/stored-run.js';
import { openStore } from '../read/open-store.js';
import { text } from '../read/text.js';
import { idKey, typedId } from '../read/example-id.js';

/** Options of {@link compareRuns}. */
export interface CompareOptions {
  /** @defaultValue the newest run of each store */
  readonly runA?: string;
  readonly runB?: string;
  /** Size of the top and bottom sets compared. @defaultValue 100 */
  readonly k?: number;
}

/** Rank stability of one column over the examples both runs scored (matched by example id). */
export interface ColumnComparison {
  readonly column: string;
  readonly examples: number;
  readonly spearman: number;
  readonly k: number;
  /** Share of run A's k highest that are among run B's k highest. */
  readonly topOverlap: number;
  readonly bottomOverlap: number;
}

const overlap = (a: Float64Array, b: Float64Array, k: number, highest: boolean): number => {
  const pick = (v: Float64Array) => new Set(Array.from(v.keys()).sort((x, y) => (highest ? v[y]! - v[x]! : v[x]! - v[y]!)).slice(0, k));
  const sa = pick(a);
  let shared = 0;
  for (const i of pick(b)) if (sa.has(i)) shared++;
  return k === 0 ? NaN : shared / k;
};

/**
 * Compares two stored runs (in one store or two): for each column both have, Spearman's rank
 * correlation and the overlap of their k highest and k lowest examples.
 */
export async function compareRuns(storeA: string, storeB: string, options: CompareOptions = {}): Promise<{ runA: string; runB: string; columns: ColumnComparison[] }> {
  const k = options.k ?? 100;
  if (!Number.isInteger(k) || k < 1) throw new InrunError(`expected a positive integer, got ${k}`, { field: 'k', code: 'invalid_option' });
  const load = async (path: string, runId: string | undefined) => {
    const store = await openStore(path);
    try {
      const run = await readRun(store, runId);
      const columns = new Map<string, Map<string, number>>();
      for (const c of run.columns) {
        const values = new Map<string, number>();
        const sql = `SELECT e.example_id AS id, ${store.idType('e')} AS id_type, s.value AS v FROM scores s JOIN examples e ON e.run_id = s.run_id AND e.example_key = s.example_key WHERE s.run_id = ? AND s.column_id = ?`;
        for await (const r of store.iterate(sql, [run.id, c.id])) {
          // Typed keys: the number 0 and the string "0" are distinct ids, in every kind of store.
          const key = idKey(typedId(r['id'], r['id_type']));
          if (values.has(key)) {
            throw new InrunError(`run "${run.id}" of ${path} reads two examples with the id ${text(r['id'])} (ids of other types stored as text?): they cannot be matched by id`, { field: 'store', code: 'invalid_input' });
          }
          values.set(key, Number(r['v']));
        }
        columns.set(c.name, values);
      }
      return { id: run.id, columns };
    } finally {
      await store.close();
    }
  };
  const a = await load(storeA, options.runA);
  const b = await load(storeB, options.runB);
  const columns: ColumnComparison[] = [];
  for (const [name, va] of a.columns) {
    const vb = b.columns.get(name);
    if (vb === undefined) continue;
    const ids = [...va.keys()].filter((id) => vb.has(id));
    const xa = Float64Array.from(ids, (id) => va.get(id)!);
    const xb = Float64Array.from(ids, (id) => vb.get(id)!);
    const kk = Math.min(k, ids.length);
    columns.push({ column: name, examples: ids.length, spearman: spearman(xa, xb), k: kk, topOverlap: overlap(xa, xb, kk, true), bottomOverlap: overlap(xa, xb, kk, false) });
  }
  if (columns.length === 0) throw new InrunError(`runs "${a.id}" and "${b.id}" share no column`, { field: 'storeB', code: 'invalid_input' });
  return { runA: a.id, runB: b.id, columns };
}
