// TRAK's per-example scores as a stored run (column `trak:<target>`), through the ordinary sinks, so `inrun report`, `query` and `curate` read them as any run.
import { VERSION, type ExampleId, type RunInfo, type Sink } from '@inrun/store';

/** The name of the target a TRAK run's column is toward: the queries, summed. */
export const TRAK_TARGET = 'queries';

/** What a TRAK run stores: one score per training row toward the queries, and what they came from. */
export interface TrakRun {
  readonly runId: string;
  /** Training ids, in training order. */
  readonly ids: readonly ExampleId[];
  /** Per training row, the sum over the queries of its TRAK scores (positive = it lowers their loss). */
  readonly totals: Float32Array;
  /** Each row's source, or null when the row file has none. */
  readonly sources: readonly string[] | null;
  /** Each row's label (the argmax of a one-hot `ys`), or null. */
  readonly labels: readonly number[] | null;
  readonly queries: number;
  /** The last step among the checkpoints (the totals are "after" it). */
  readonly step: number;
  readonly tfjsVersion: string;
  readonly backend: string;
  /** The settings and inputs, shown in the report's summary. */
  readonly meta: Readonly<Record<string, unknown>>;
}

/**
 * Writes `run` to each sink as a run of one column `trak:queries` (method `trak`, target `queries`):
 * the same tables as an attached run (runs, columns, examples, scores; no steps), one final totals
 * snapshot. A training row's value is its summed TRAK score over the queries, in the units of the
 * model output (docs/scale-out.md#trak), as `shapley1:<target>` sums over its target's rows.
 */
export async function writeTrakRun(sinks: readonly Sink[], run: TrakRun): Promise<void> {
  const column = `trak:${TRAK_TARGET}`;
  const info: RunInfo = {
    runId: run.runId,
    startedAt: new Date().toISOString(),
    inrunVersion: VERSION,
    tfjsVersion: run.tfjsVersion,
    backend: run.backend,
    // The model is known only through its checkpoints (named in meta).
    model: { name: 'checkpoints', className: 'TRAK', params: 0 },
    optimizer: { className: '(after the run)', attribution: 'exact' },
    lossReduction: 'sum',
    methods: ['trak'],
    columns: [{ name: column, method: 'trak', target: TRAK_TARGET }],
    targets: [{ name: TRAK_TARGET, rows: run.queries }],
    layers: { covered: [], skipped: [], coveredParams: 0, trainableParams: 0 },
    targetEvery: 1,
    targetPass: null,
    hvp: null,
    seeds: [],
    meta: run.meta,
  };
  const examples = run.ids.map((id, i) => ({ id, ...(run.sources === null ? {} : { source: run.sources[i]! }), ...(run.labels === null ? {} : { label: run.labels[i]! }) }));
  for (const sink of sinks) {
    await sink.open(info);
    try {
      await sink.writeExamples?.(examples);
      await sink.writeScores?.({ ids: run.ids, columns: { [column]: run.totals }, steps: new Int32Array(run.ids.length), tokens: {} }, info, { step: run.step, final: true });
    } finally {
      await sink.close();
    }
  }
}
