// Per-step value by source in step buckets, beside each bucket's drop of the target loss.
import { InrunError } from '@inrun/store';
import type { StoredColumn, StoredRun } from '../read/stored-run.js';
import { groupName } from './scan.js';
import { text } from '../read/text.js';
import type { Row, StoreReader } from '../read/reader.js';

/** One bucket of consecutive steps. */
export interface StepBucket {
  /** Its first step. */
  readonly step: number;
  readonly bySource: Map<string, number>;
  total: number;
  /** Target loss before the bucket's first step minus after its last, or null where not measured. */
  lossDrop: number | null;
}

/** At most this many buckets: every step is in one, consecutive steps summed where there are more. */
const BUCKETS = 120;
const SOURCES = 8;

/** A step row's stored loss of `target` (null where not measured); a damaged `target_losses` throws naming the step. */
function targetLossOf(store: StoreReader, run: StoredRun, r: Row, target: string): number | null {
  let parsed: Record<string, number | null>;
  try {
    parsed = JSON.parse(text(r['target_losses']) || '{}') as Record<string, number | null>;
  } catch (cause) {
    throw new InrunError(`${store.path}: target_losses of step ${text(r['step'])} of run ${run.id} is not JSON: the store is damaged`, { field: 'store', code: 'invalid_input', cause });
  }
  if (typeof parsed !== 'object' || parsed === null) throw new InrunError(`${store.path}: target_losses of step ${text(r['step'])} of run ${run.id} is not a JSON object: the store is damaged`, { field: 'store', code: 'invalid_input' });
  const loss = parsed[target];
  return typeof loss === 'number' && Number.isFinite(loss) ? loss : null;
}

/** The target's stored loss at the first and the last step (the loss before each step), null where none. */
export async function targetLossSpan(store: StoreReader, run: StoredRun, target: string): Promise<{ first: number | null; last: number | null; steps: number }> {
  const at = async (order: 'ASC' | 'DESC') => {
    const [r] = await store.all(`SELECT step, target_losses FROM steps WHERE run_id = ? ORDER BY step ${order} LIMIT 1`, [run.id]);
    return r === undefined ? null : targetLossOf(store, run, r, target);
  };
  const [n] = await store.all('SELECT COUNT(*) AS n FROM steps WHERE run_id = ?', [run.id]);
  return { first: await at('ASC'), last: await at('DESC'), steps: Number(n?.['n'] ?? 0) };
}

/**
 * Sums `column`'s per-step values by source in at most 120 step buckets (one per step when fewer) (the largest sources kept
 * apart, the rest as `(other)`), and the drop of the column's target loss over each bucket. Null when
 * the store has no per-step scores for the column.
 */
export async function stepSeries(store: StoreReader, run: StoredRun, column: StoredColumn): Promise<{ buckets: StepBucket[]; width: number; target: string } | null> {
  const losses: { step: number; loss: number | null }[] = [];
  const target = column.target ?? run.info.targets[0]?.name ?? '';
  for await (const r of store.iterate('SELECT step, target_losses FROM steps WHERE run_id = ? ORDER BY step', [run.id])) {
    losses.push({ step: Number(r['step']), loss: targetLossOf(store, run, r, target) });
  }
  if (losses.length === 0) return null;
  const first = losses[0]!.step;
  const span = losses.at(-1)!.step - first + 1;
  const width = Math.ceil(span / BUCKETS);
  const bucketOf = (step: number) => Math.floor((step - first) / width);
  const buckets: StepBucket[] = Array.from({ length: Math.ceil(span / width) }, (_, i) => ({ step: first + i * width, bySource: new Map(), total: 0, lossDrop: null }));
  const top = await store.all('SELECT source AS g, COUNT(*) AS n FROM examples WHERE run_id = ? GROUP BY source ORDER BY n DESC, g LIMIT ?', [run.id, SOURCES]);
  const kept = new Set(top.map((r) => groupName(r['g'])).slice(0, top.length === SOURCES ? SOURCES - 1 : SOURCES));
  let rows = 0;
  for await (const r of store.iterate(
    `SELECT ss.step AS step, e.source AS source, SUM(ss.value) AS v
     FROM step_scores ss JOIN examples e ON e.run_id = ss.run_id AND e.example_key = ss.example_key
     WHERE ss.run_id = ? AND ss.column_id = ? GROUP BY ss.step, e.source`,
    [run.id, column.id],
  )) {
    const b = buckets[bucketOf(Number(r['step']))];
    if (b === undefined) continue;
    const source = kept.has(groupName(r['source'])) ? groupName(r['source']) : '(other)';
    const v = Number(r['v']);
    b.bySource.set(source, (b.bySource.get(source) ?? 0) + v);
    b.total += v;
    rows += 1;
  }
  if (rows === 0) return null;
  // A bucket's drop: its first step's loss minus the next bucket's first (the loss before each step).
  const lossAt = new Map(losses.map((l) => [l.step, l.loss]));
  for (const b of buckets) {
    const before = lossAt.get(b.step);
    const after = lossAt.get(b.step + width);
    b.lossDrop = before !== undefined && before !== null && after !== undefined && after !== null ? before - after : null;
  }
  return { buckets, width, target };
}
