// Stored runs for the report and CLI tests, written through the real sinks without training (tf-free).
import Database from 'better-sqlite3';
import { sqliteSink, type Scores, type Sink, type StepRecord } from 'inrun';
import { uniform } from '../eval/metrics.js';

export { COLUMNS, HOSTILE, runInfo } from './run-info-fixture.js';
import { COLUMNS, HOSTILE, runInfo } from './run-info-fixture.js';

/** The synthetic run's ground truth: totals per column, the examples' metadata, per-step sums. */
export interface SyntheticRun {
  readonly runId: string;
  readonly ids: string[];
  readonly sources: string[];
  readonly labels: string[];
  readonly texts: string[];
  readonly totals: Record<string, Float64Array>;
}

/**
 * Drives `sinks` through a run of `n` examples over `steps` steps of `batch` rows: sources `web`,
 * `books` and one named with markup; 10% of labels flipped (and their values pushed down); example 0
 * carries the hostile text. Target losses fall by exactly each step's summed first-order value.
 */
export async function syntheticRun(sinks: readonly Sink[], o: { runId?: string; n?: number; steps?: number; batch?: number; seed?: number } = {}): Promise<SyntheticRun> {
  const runId = o.runId ?? 'run-synthetic';
  const n = o.n ?? 300;
  const steps = o.steps ?? 40;
  const batch = o.batch ?? 30;
  const rand = uniform(o.seed ?? 7);
  const info = runInfo(runId);
  const ids = Array.from({ length: n }, (_, i) => `ex-${i}`);
  const sources = ids.map((_, i) => ['web', 'books', '<b>forum</b>'][i % 3]!);
  const flipped = ids.map(() => rand() < 0.1);
  const labels = flipped.map((f, i) => (f ? `${i % 2 ? 'a' : 'b'} (flipped)` : i % 2 ? 'b' : 'a'));
  const texts = ids.map((_, i) => (i === 0 ? HOSTILE : `email number ${i} about cheap offers`));
  const totals = Object.fromEntries(COLUMNS.map((c) => [c, new Float64Array(n)])) as Record<string, Float64Array>;
  const seen = new Int32Array(n);
  for (const s of sinks) await s.open(info);
  for (const s of sinks) await s.writeExamples?.(ids.map((id, i) => ({ id, source: sources[i]!, label: labels[i]!, text: texts[i]! })));
  let loss = 100;
  const records: StepRecord[] = [];
  for (let t = 0; t < steps; t++) {
    const rows = Array.from({ length: batch }, (_, j) => (t * batch + j) % n);
    const decay = 1 / (1 + t / 5);
    const columns: Record<string, Float32Array> = {
      'shapley1:val': Float32Array.from(rows, (i) => decay * (rand() - (flipped[i] ? 0.9 : 0.35))),
      tracin_self: Float32Array.from(rows, (i) => decay * (rand() + (flipped[i] ? 2 : 0))),
      'tracin_we:val': Float32Array.from(rows, (i) => decay * (rand() - (flipped[i] ? 0.8 : 0.4))),
    };
    rows.forEach((i, j) => {
      for (const c of COLUMNS) totals[c]![i]! += columns[c]![j]!;
      seen[i]! += 1;
    });
    records.push({ runId, step: t, epoch: 0, learningRate: 0.1, batchSize: batch, loss: 1, targetLosses: { val: loss }, ids: rows.map((i) => ids[i]!), columns, attributionMs: 1, stepMs: 2 });
    loss -= columns['shapley1:val']!.reduce((a, b) => a + b, 0);
  }
  for (const s of sinks) await s.writeSteps?.(records);
  // Totals as the device would sum them (float32 per step, summed in float32 like the sinks store them).
  const scores: Scores = {
    ids,
    columns: Object.fromEntries(COLUMNS.map((c) => [c, Float32Array.from(totals[c]!)])),
    steps: seen,
    tokens: {
      'tracin_we:val': ids.map((_, i) => [
        { token: 5, word: i === 0 ? 'script' : 'cheap', score: i % 2 ? 0.5 : -0.5 },
        { token: 9, word: 'offers', score: -0.25 },
      ]),
    },
  };
  for (const s of sinks) await s.writeScores?.(scores, info, { step: steps - 1, final: true });
  for (const s of sinks) await s.close();
  for (const c of COLUMNS) totals[c] = Float64Array.from(scores.columns[c]!);
  return { runId, ids, sources, labels, texts, totals };
}

/**
 * A store of `n` examples x 3 columns (totals only), bulk-inserted through better-sqlite3 in one
 * transaction after the sink created the schema. Values: shapley1 = sin(i), tracin_self = i mod 97,
 * tracin_we = cos(i); sources s0..s19, labels y0..y4.
 */
export async function bulkStore(path: string, n: number): Promise<void> {
  const sink = sqliteSink(path);
  await sink.open(runInfo('run-bulk', 10_000));
  await sink.close();
  const db = new Database(path);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  const per = 100;
  const insert = (sql: string, width: number) => db.prepare(`${sql} VALUES ${Array.from({ length: per }, () => `(${Array(width).fill('?').join(',')})`).join(',')}`);
  const examples = insert('INSERT INTO examples (run_id, example_key, example_id, source, label, text)', 6);
  const scores = insert('INSERT INTO scores (run_id, column_id, example_key, value, steps)', 5);
  db.transaction(() => {
    const e: unknown[] = [];
    const s: unknown[] = [];
    for (let i = 0; i < n; i++) {
      e.push('run-bulk', i, i, `s${i % 20}`, `y${i % 5}`, `text of example ${i}`);
      s.push('run-bulk', 0, i, Math.sin(i), 1, 'run-bulk', 1, i, i % 97, 1, 'run-bulk', 2, i, Math.cos(i), 1);
      if ((i + 1) % per === 0) {
        examples.run(e);
        e.length = 0;
        // 3 rows per example: flush every `per` rows of scores.
        for (let k = 0; k < s.length; k += per * 5) scores.run(s.slice(k, k + per * 5));
        s.length = 0;
      }
    }
    if (e.length > 0) throw new Error('bulkStore: n must be a multiple of 100');
    db.prepare("UPDATE runs SET status = 'completed', totals_step = 0 WHERE run_id = 'run-bulk'").run();
  })();
  db.close();
}
