// ParquetRunWriter: one run's Parquet layout (segments, examples, totals snapshots, tokens, run.json) over a small synchronous file interface, shared by the Node and the browser Parquet sinks.
import { InrunError } from './errors.js';
import { encodeParquet, type ParquetColumn } from './parquet-encode.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from './records.js';
import type { TotalsPoint } from './sink.js';

/** Options of the Parquet sinks (`parquetSink`, `browserParquetSink`). */
export interface ParquetSinkOptions {
  /** Steps per segment file: a crash loses at most the open segment. @defaultValue 1000 */
  readonly segmentSteps?: number;
  /** Rows (example x step) per segment file, whichever limit comes first. @defaultValue 200000 */
  readonly segmentRows?: number;
  /** Totals snapshots kept; older ones are deleted. @defaultValue 2 */
  readonly keepSnapshots?: number;
}

/** {@link ParquetSinkOptions} with every default applied and checked. */
export type ResolvedParquetOptions = Required<ParquetSinkOptions>;

/** Applies the defaults once; `sink` names the sink in the error's field (`parquetSink.segmentSteps`). */
export function resolveParquetOptions(options: ParquetSinkOptions, sink: string): ResolvedParquetOptions {
  const resolved = { segmentSteps: options.segmentSteps ?? 1000, segmentRows: options.segmentRows ?? 200_000, keepSnapshots: options.keepSnapshots ?? 2 };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isInteger(value) || value < 1) throw new InrunError(`expected a positive integer, got ${value}`, { field: `${sink}.${name}` });
  }
  return resolved;
}

/** Layout version in run.json; see docs/schema.md. */
export const PARQUET_LAYOUT_VERSION = 1;

/** run.json: the run's status and metadata. */
export interface RunFile {
  readonly layoutVersion: number;
  readonly status: 'running' | 'completed';
  /** Last step of the newest totals snapshot, or null. */
  readonly totalsStep: number | null;
  readonly info: RunInfo;
}

/** The folders of a run, relative to its own folder. */
export const RUN_FOLDERS = ['steps', 'examples', 'totals', 'tokens'] as const;
export const part = (n: number): string => `part-${String(n).padStart(6, '0')}.parquet`;
export const snapshot = (step: number): string => `step-${String(Math.max(step, -1) + 1).padStart(9, '0')}.parquet`;
export const stepOfSnapshot = (file: string): number => Number(/step-(\d+)\.parquet$/.exec(file)?.[1] ?? NaN) - 1;

/**
 * What {@link ParquetRunWriter} writes through: paths relative to the run's folder ('steps/part-000000.parquet'),
 * each file whole (the Node sink writes aside and renames; the browser sink hands whole files to OPFS).
 */
export interface RunFiles {
  write(path: string, content: Uint8Array | string): void;
  remove(path: string): void;
  /** The `.parquet` files of one of {@link RUN_FOLDERS}, sorted. */
  list(folder: string): string[];
}

/** One step of the open segment: what the step's rows share, and its examples' keys and values. */
export interface SegmentStep {
  readonly step: number;
  readonly epoch: number | null;
  readonly learningRate: number;
  readonly loss: number;
  readonly targetLosses: Readonly<Record<string, number>>;
  readonly attributionMs: number;
  readonly stepMs: number;
  readonly keys: Int32Array;
  readonly values: readonly ArrayLike<number>[];
}

/** The open segment: steps kept as they came, turned into typed columns once, when it closes. */
export class Segment {
  readonly steps: SegmentStep[] = [];
  rows = 0;

  constructor(
    readonly columns: readonly string[],
    readonly targets: readonly string[],
  ) {}

  add(step: SegmentStep): void {
    this.steps.push(step);
    this.rows += step.keys.length;
  }

  toColumns(): ParquetColumn[] {
    const n = this.rows;
    const step = new Int32Array(n);
    const epoch: (number | null)[] = new Array<number | null>(n);
    const key = new Int32Array(n);
    const learningRate = new Float64Array(n);
    const batchSize = new Int32Array(n);
    const loss = new Float64Array(n);
    const attributionMs = new Float64Array(n);
    const stepMs = new Float64Array(n);
    const targetLoss = this.targets.map(() => new Float64Array(n));
    const values = this.columns.map(() => new Float32Array(n));
    let at = 0;
    for (const s of this.steps) {
      const m = s.keys.length;
      step.fill(s.step, at, at + m);
      epoch.fill(s.epoch, at, at + m);
      key.set(s.keys, at);
      learningRate.fill(s.learningRate, at, at + m);
      batchSize.fill(m, at, at + m);
      loss.fill(s.loss, at, at + m);
      attributionMs.fill(s.attributionMs, at, at + m);
      stepMs.fill(s.stepMs, at, at + m);
      this.targets.forEach((t, i) => targetLoss[i]!.fill(s.targetLosses[t] ?? NaN, at, at + m));
      values.forEach((v, c) => v.set(s.values[c]!, at));
      at += m;
    }
    return [
      { name: 'step', type: 'INT32', data: step, statistics: true },
      { name: 'epoch', type: 'INT32', data: epoch, nullable: true },
      { name: 'example_key', type: 'INT32', data: key, statistics: true },
      { name: 'learning_rate', type: 'DOUBLE', data: learningRate },
      { name: 'batch_size', type: 'INT32', data: batchSize },
      { name: 'loss', type: 'DOUBLE', data: loss },
      { name: 'attribution_ms', type: 'DOUBLE', data: attributionMs },
      { name: 'step_ms', type: 'DOUBLE', data: stepMs },
      ...this.targets.map((t, i): ParquetColumn => ({ name: `target_loss:${t}`, type: 'DOUBLE', data: targetLoss[i]! })),
      ...this.columns.map((c, i): ParquetColumn => ({ name: c, type: 'FLOAT', data: values[i]! })),
    ];
  }
}

/**
 * The write side of a Parquet run: example keys, the open segment, part numbers. Every method writes
 * whole files through {@link RunFiles}; nothing here touches a file system. Layout: docs/schema.md.
 */
export class ParquetRunWriter {
  segment: Segment;
  nextStepPart = 0;
  nextExamplePart = 0;
  /** Every id's key; resume fills it with the stored ones. */
  readonly keys = new Map<ExampleId, number>();
  private readonly newKeys: { key: number; id: ExampleId }[] = [];

  constructor(
    private readonly files: RunFiles,
    public info: RunInfo,
    private readonly limits: ResolvedParquetOptions,
  ) {
    this.segment = new Segment(
      info.columns.map((c) => c.name),
      info.targets.map((t) => t.name),
    );
  }

  keyOf(id: ExampleId): number {
    let key = this.keys.get(id);
    if (key === undefined) {
      key = this.keys.size;
      this.keys.set(id, key);
      this.newKeys.push({ key, id });
    }
    return key;
  }

  writeRunFile(status: RunFile['status'], totalsStep: number | null): void {
    const file: RunFile = { layoutVersion: PARQUET_LAYOUT_VERSION, status, totalsStep, info: this.info };
    this.files.write('run.json', JSON.stringify(file, null, 2));
  }

  /** Example rows: newly keyed ids (metadata null) and described examples. */
  private writeExampleRows(rows: { key: number; id: ExampleId; e?: ExampleInfo }[]): void {
    if (rows.length === 0) return;
    this.writeParquet(`examples/${part(this.nextExamplePart++)}`, [
      { name: 'example_key', type: 'INT32', data: Int32Array.from(rows, (r) => r.key) },
      { name: 'example_id', type: 'STRING', data: rows.map((r) => String(r.id)) },
      { name: 'id_type', type: 'STRING', data: rows.map((r) => typeof r.id) },
      { name: 'source', type: 'STRING', data: rows.map((r) => r.e?.source ?? null), nullable: true },
      { name: 'label', type: 'STRING', data: rows.map((r) => (r.e?.label === undefined ? null : String(r.e.label))), nullable: true },
      { name: 'text', type: 'STRING', data: rows.map((r) => r.e?.text ?? null), nullable: true },
    ]);
  }

  writeParquet(path: string, columns: readonly ParquetColumn[]): void {
    this.files.write(path, encodeParquet(columns));
  }

  closeSegment(): void {
    if (this.segment.rows === 0) return;
    // Ids first seen in this segment are listed before the segment appears.
    this.writeExampleRows(this.newKeys.splice(0));
    this.writeParquet(`steps/${part(this.nextStepPart++)}`, this.segment.toColumns());
    this.segment = new Segment(this.segment.columns, this.segment.targets);
  }

  writeExamples(examples: readonly ExampleInfo[]): void {
    const rows = examples.map((e) => ({ key: this.keyOf(e.id), id: e.id, e }));
    const described = new Set(examples.map((e) => e.id));
    this.writeExampleRows([...this.newKeys.splice(0).filter((k) => !described.has(k.id)), ...rows]);
  }

  writeSteps(records: readonly StepRecord[]): void {
    for (const r of records) {
      const s = this.segment; // a new one after each roll
      s.add({
        step: r.step,
        epoch: r.epoch,
        learningRate: r.learningRate,
        loss: r.loss,
        targetLosses: r.targetLosses,
        attributionMs: r.attributionMs,
        stepMs: r.stepMs,
        keys: Int32Array.from(r.ids, (id) => this.keyOf(id)),
        values: s.columns.map((c) => r.columns[c]!),
      });
      if (s.steps.length >= this.limits.segmentSteps || s.rows >= this.limits.segmentRows) this.closeSegment();
    }
  }

  writeScores(scores: Scores, run: RunInfo, at: TotalsPoint): void {
    this.info = run;
    // Step detail up to the snapshot is on disk before the snapshot is.
    this.closeSegment();
    const ids = scores.ids;
    this.writeParquet(`totals/${snapshot(at.step)}`, [
      { name: 'example_key', type: 'INT32', data: Int32Array.from(ids, (id) => this.keyOf(id)) },
      { name: 'example_id', type: 'STRING', data: ids.map(String) },
      { name: 'id_type', type: 'STRING', data: ids.map((id) => typeof id) },
      { name: 'steps', type: 'INT32', data: Int32Array.from(scores.steps) },
      ...Object.entries(scores.columns).map(([name, values]): ParquetColumn => ({ name, type: 'FLOAT', data: values })),
    ]);
    this.writeExampleRows(this.newKeys.splice(0));
    const older = this.files.list('totals').filter((f) => stepOfSnapshot(f) < at.step);
    for (const f of older.slice(0, Math.max(0, older.length - (this.limits.keepSnapshots - 1)))) this.files.remove(`totals/${f}`);
    const tokenRows = Object.entries(scores.tokens).flatMap(([name, perExample]) =>
      perExample.flatMap((top, i) => top.map((t, rank) => ({ name, key: this.keyOf(ids[i]!), rank, t }))),
    );
    if (at.final && tokenRows.length > 0) {
      this.writeParquet('tokens/final.parquet', [
        { name: 'column_name', type: 'STRING', data: tokenRows.map((r) => r.name) },
        { name: 'example_key', type: 'INT32', data: Int32Array.from(tokenRows, (r) => r.key) },
        { name: 'rank', type: 'INT32', data: Int32Array.from(tokenRows, (r) => r.rank) },
        { name: 'token', type: 'INT32', data: Int32Array.from(tokenRows, (r) => r.t.token) },
        { name: 'word', type: 'STRING', data: tokenRows.map((r) => r.t.word ?? null), nullable: true },
        { name: 'value', type: 'FLOAT', data: Float32Array.from(tokenRows, (r) => r.t.score) },
      ]);
    }
    this.writeRunFile(at.final ? 'completed' : 'running', at.step);
  }
}
