// parquetSink: a run as Parquet segments in a folder, with snapshots and resume.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkRunId } from './run-id.js';
import { InrunError } from './errors.js';
import type { ExampleId, ExampleInfo, RunInfo, Scores, StepRecord } from './records.js';
import { readParquetFile, writeAtomically, writeParquetFile, type ParquetColumn } from './parquet-file.js';
import type { ResumeState, Sink, TotalsPoint } from './sink.js';

/** Options of {@link parquetSink}. */
export interface ParquetSinkOptions {
  /** Steps per segment file: a crash loses at most the open segment. @defaultValue 1000 */
  readonly segmentSteps?: number;
  /** Rows (example x step) per segment file, whichever limit comes first. @defaultValue 200000 */
  readonly segmentRows?: number;
  /** Totals snapshots kept; older ones are deleted. @defaultValue 2 */
  readonly keepSnapshots?: number;
}

/** Layout version in run.json; see docs/schema.md. */
export const PARQUET_LAYOUT_VERSION = 1;

interface RunFile {
  readonly layoutVersion: number;
  readonly status: 'running' | 'completed';
  /** Last step of the newest totals snapshot, or null. */
  readonly totalsStep: number | null;
  readonly info: RunInfo;
}

const part = (n: number) => `part-${String(n).padStart(6, '0')}.parquet`;
const snapshot = (step: number) => `step-${String(Math.max(step, -1) + 1).padStart(9, '0')}.parquet`;
const stepOfSnapshot = (file: string) => Number(/step-(\d+)\.parquet$/.exec(file)?.[1] ?? NaN) - 1;
const parquetFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort() : []);

/** One step of the open segment: what the step's rows share, and its examples' keys and values. */
interface SegmentStep {
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
class Segment {
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
 * Parquet files, one folder per run (`<folder>/<runId>/`): per-step scores rolled into segment files
 * (every `segmentSteps` steps or `segmentRows` rows), example metadata, totals snapshots and the
 * final top tokens. Every file is written aside and renamed, so a crash loses at most the open
 * segment and no reader ever sees a partial file. Layout: docs/schema.md.
 */
export function parquetSink(folder: string, options: ParquetSinkOptions = {}): Sink {
  if (typeof folder !== 'string' || folder.length === 0) throw new InrunError('expected a folder path', { field: 'parquetSink.folder' });
  const segmentSteps = options.segmentSteps ?? 1000;
  const segmentRows = options.segmentRows ?? 200_000;
  const keepSnapshots = options.keepSnapshots ?? 2;
  for (const [name, value] of Object.entries({ segmentSteps, segmentRows, keepSnapshots })) {
    if (!Number.isInteger(value) || value < 1) throw new InrunError(`expected a positive integer, got ${value}`, { field: `parquetSink.${name}` });
  }
  let dir = '';
  let info: RunInfo | null = null;
  let segment: Segment | null = null;
  let nextStepPart = 0;
  let nextExamplePart = 0;
  const keys = new Map<ExampleId, number>();
  const newKeys: { key: number; id: ExampleId }[] = [];

  const keyOf = (id: ExampleId): number => {
    let key = keys.get(id);
    if (key === undefined) {
      key = keys.size;
      keys.set(id, key);
      newKeys.push({ key, id });
    }
    return key;
  };
  const writeRunFile = (status: RunFile['status'], totalsStep: number | null) => {
    const file: RunFile = { layoutVersion: PARQUET_LAYOUT_VERSION, status, totalsStep, info: info! };
    writeAtomically(join(dir, 'run.json'), JSON.stringify(file, null, 2));
  };
  const readRunFile = (): RunFile => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunFile;
  const start = (run: RunInfo) => {
    dir = join(folder, checkRunId(run.runId));
    info = run;
    segment = new Segment(
      run.columns.map((c) => c.name),
      run.targets.map((t) => t.name),
    );
    for (const sub of ['steps', 'examples', 'totals', 'tokens']) mkdirSync(join(dir, sub), { recursive: true });
  };
  /** Example rows: newly keyed ids (metadata null) and described examples. */
  const writeExampleRows = (rows: { key: number; id: ExampleId; e?: ExampleInfo }[]) => {
    if (rows.length === 0) return;
    writeParquetFile(join(dir, 'examples', part(nextExamplePart++)), [
      { name: 'example_key', type: 'INT32', data: Int32Array.from(rows, (r) => r.key) },
      { name: 'example_id', type: 'STRING', data: rows.map((r) => String(r.id)) },
      { name: 'id_type', type: 'STRING', data: rows.map((r) => typeof r.id) },
      { name: 'source', type: 'STRING', data: rows.map((r) => r.e?.source ?? null), nullable: true },
      { name: 'label', type: 'STRING', data: rows.map((r) => (r.e?.label === undefined ? null : String(r.e.label))), nullable: true },
      { name: 'text', type: 'STRING', data: rows.map((r) => r.e?.text ?? null), nullable: true },
    ]);
  };
  const closeSegment = () => {
    if (segment === null || segment.rows === 0) return;
    // Ids first seen in this segment are listed before the segment appears.
    writeExampleRows(newKeys.splice(0));
    writeParquetFile(join(dir, 'steps', part(nextStepPart++)), segment.toColumns());
    segment = new Segment(segment.columns, segment.targets);
  };

  return {
    name: `parquet:${folder}`,
    stores: (runId: string) => existsSync(join(folder, checkRunId(runId), 'run.json')),
    open(run: RunInfo) {
      start(run);
      if (existsSync(join(dir, 'run.json'))) {
        throw new InrunError(`run "${run.runId}" is already stored in ${folder}; choose another runId, or resume it`, { field: 'runId', code: 'invalid_state' });
      }
      writeRunFile('running', null);
    },
    async resume(run: RunInfo, afterStep: number): Promise<ResumeState> {
      start(run);
      if (!existsSync(join(dir, 'run.json'))) throw new InrunError(`run "${run.runId}" is not stored in ${folder}; nothing to resume`, { field: 'runId', code: 'invalid_state' });
      const stored = readRunFile();
      const names = run.columns.map((c) => c.name);
      if (stored.info.columns.map((c) => c.name).join() !== names.join()) {
        throw new InrunError(`the stored run has other columns than this run; resume with the same methods and targets`, { field: 'methods', code: 'invalid_state' });
      }
      // Every (key, id) pair ever written keeps its key: an id seen again after resuming maps back to it.
      const remember = (key: number, id: string, type: unknown) => keys.set(type === 'number' ? Number(id) : id, key);
      for (const f of parquetFiles(join(dir, 'examples'))) {
        for (const r of await readParquetFile(join(dir, 'examples', f), ['example_key', 'example_id', 'id_type'])) {
          remember(r['example_key'] as number, r['example_id'] as string, r['id_type']);
        }
      }
      const stepFiles = parquetFiles(join(dir, 'steps'));
      const snapshots = parquetFiles(join(dir, 'totals'));
      const atStep = snapshots.find((f) => stepOfSnapshot(f) === afterStep);
      const totals = new Map<number, { values: number[]; steps: number }>();
      const row = (key: number) => {
        let t = totals.get(key);
        if (t === undefined) totals.set(key, (t = { values: names.map(() => 0), steps: 0 }));
        return t;
      };
      let last = -1;
      for (const f of stepFiles) {
        const rows = await readParquetFile(join(dir, 'steps', f));
        const kept = rows.filter((r) => (r['step'] as number) <= afterStep);
        for (const r of rows) last = Math.max(last, r['step'] as number);
        if (atStep === undefined) {
          const seen = new Set<string>();
          for (const r of kept) {
            const t = row(r['example_key'] as number);
            names.forEach((c, i) => (t.values[i]! += r[c] as number));
            const k = `${r['step'] as number}:${r['example_key'] as number}`;
            if (!seen.has(k)) t.steps++;
            seen.add(k);
          }
        }
        if (kept.length === 0) rmSync(join(dir, 'steps', f));
        else if (kept.length < rows.length) {
          // Rewrite the segment that straddles the resume point with its rows up to it.
          const s = new Segment(names, run.targets.map((t) => t.name));
          const byStep = new Map<number, Record<string, unknown>[]>();
          for (const r of kept) byStep.set(r['step'] as number, [...(byStep.get(r['step'] as number) ?? []), r]);
          for (const [step, rs] of byStep) {
            const first = rs[0]!;
            s.add({
              step,
              epoch: (first['epoch'] as number | null) ?? null,
              learningRate: first['learning_rate'] as number,
              loss: first['loss'] as number,
              targetLosses: Object.fromEntries(s.targets.map((t) => [t, first[`target_loss:${t}`] as number])),
              attributionMs: first['attribution_ms'] as number,
              stepMs: first['step_ms'] as number,
              keys: Int32Array.from(rs, (r) => r['example_key'] as number),
              values: names.map((c) => Float32Array.from(rs, (r) => r[c] as number)),
            });
          }
          writeParquetFile(join(dir, 'steps', f), s.toColumns());
        }
      }
      if (afterStep > last && atStep === undefined) {
        throw new InrunError(`step ${afterStep} is not stored in ${dir} (the last stored step is ${last})`, { field: 'afterStep', code: 'invalid_state' });
      }
      if (atStep !== undefined) {
        for (const r of await readParquetFile(join(dir, 'totals', atStep))) {
          const t = row(r['example_key'] as number);
          names.forEach((c, i) => (t.values[i] = r[c] as number));
          t.steps = r['steps'] as number;
          remember(r['example_key'] as number, r['example_id'] as string, r['id_type']);
        }
      }
      for (const f of snapshots) if (stepOfSnapshot(f) > afterStep) rmSync(join(dir, 'totals', f));
      const parts = parquetFiles(join(dir, 'steps'));
      nextStepPart = parts.length === 0 ? 0 : Math.max(...parts.map((f) => Number(f.slice(5, 11)))) + 1;
      nextExamplePart = parquetFiles(join(dir, 'examples')).length;
      writeRunFile('running', atStep === undefined ? null : afterStep);
      const byKey = [...keys.entries()].sort((a, b) => a[1] - b[1]);
      return {
        ids: byKey.map(([id]) => id),
        columns: Object.fromEntries(names.map((c, i) => [c, byKey.map(([, key]) => totals.get(key)?.values[i] ?? 0)])),
        steps: byKey.map(([, key]) => totals.get(key)?.steps ?? 0),
        step: afterStep,
      };
    },
    writeExamples(examples: readonly ExampleInfo[]) {
      const rows = examples.map((e) => ({ key: keyOf(e.id), id: e.id, e }));
      const described = new Set(examples.map((e) => e.id));
      writeExampleRows([...newKeys.splice(0).filter((k) => !described.has(k.id)), ...rows]);
    },
    writeSteps(records: readonly StepRecord[]) {
      for (const r of records) {
        const s = segment!; // a new one after each roll
        s.add({
          step: r.step,
          epoch: r.epoch,
          learningRate: r.learningRate,
          loss: r.loss,
          targetLosses: r.targetLosses,
          attributionMs: r.attributionMs,
          stepMs: r.stepMs,
          keys: Int32Array.from(r.ids, keyOf),
          values: s.columns.map((c) => r.columns[c]!),
        });
        if (s.steps.length >= segmentSteps || s.rows >= segmentRows) closeSegment();
      }
    },
    writeScores(scores: Scores, run: RunInfo, at: TotalsPoint) {
      info = run;
      // Step detail up to the snapshot is on disk before the snapshot is.
      closeSegment();
      const ids = scores.ids;
      writeParquetFile(join(dir, 'totals', snapshot(at.step)), [
        { name: 'example_key', type: 'INT32', data: Int32Array.from(ids, keyOf) },
        { name: 'example_id', type: 'STRING', data: ids.map(String) },
        { name: 'id_type', type: 'STRING', data: ids.map((id) => typeof id) },
        { name: 'steps', type: 'INT32', data: Int32Array.from(scores.steps) },
        ...Object.entries(scores.columns).map(([name, values]): ParquetColumn => ({ name, type: 'FLOAT', data: values })),
      ]);
      writeExampleRows(newKeys.splice(0));
      const older = parquetFiles(join(dir, 'totals')).filter((f) => stepOfSnapshot(f) < at.step);
      for (const f of older.slice(0, Math.max(0, older.length - (keepSnapshots - 1)))) rmSync(join(dir, 'totals', f));
      const tokenRows = Object.entries(scores.tokens).flatMap(([name, perExample]) =>
        perExample.flatMap((top, i) => top.map((t, rank) => ({ name, key: keyOf(ids[i]!), rank, t }))),
      );
      if (at.final && tokenRows.length > 0) {
        writeParquetFile(join(dir, 'tokens', 'final.parquet'), [
          { name: 'column_name', type: 'STRING', data: tokenRows.map((r) => r.name) },
          { name: 'example_key', type: 'INT32', data: Int32Array.from(tokenRows, (r) => r.key) },
          { name: 'rank', type: 'INT32', data: Int32Array.from(tokenRows, (r) => r.rank) },
          { name: 'token', type: 'INT32', data: Int32Array.from(tokenRows, (r) => r.t.token) },
          { name: 'word', type: 'STRING', data: tokenRows.map((r) => r.t.word ?? null), nullable: true },
          { name: 'value', type: 'FLOAT', data: Float32Array.from(tokenRows, (r) => r.t.score) },
        ]);
      }
      writeRunFile(at.final ? 'completed' : 'running', at.step);
    },
    close() {
      if (dir !== '' && info !== null) closeSegment();
    },
  };
}
