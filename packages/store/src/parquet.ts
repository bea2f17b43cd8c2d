// parquetSink: a run as Parquet segments in a folder, with snapshots and resume.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkRunId } from './run-id.js';
import { InrunError } from './errors.js';
import type { ExampleInfo, RunInfo, Scores, StepRecord } from './records.js';
import { readParquetFile, writeAtomically, writeParquetFile } from './parquet-file.js';
import { ParquetRunWriter, resolveParquetOptions, RUN_FOLDERS, Segment, stepOfSnapshot, type ParquetSinkOptions, type RunFile } from './parquet-run-writer.js';
import type { ResumeState, Sink, TotalsPoint } from './sink.js';

export type { ParquetSinkOptions } from './parquet-run-writer.js';
export { PARQUET_LAYOUT_VERSION } from './parquet-run-writer.js';

const parquetFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort() : []);

/**
 * Parquet files, one folder per run (`<folder>/<runId>/`): per-step scores rolled into segment files
 * (every `segmentSteps` steps or `segmentRows` rows), example metadata, totals snapshots and the
 * final top tokens. Every file is written aside and renamed, so a crash loses at most the open
 * segment and no reader ever sees a partial file. Layout: docs/schema.md.
 */
export function parquetSink(folder: string, options: ParquetSinkOptions = {}): Sink {
  if (typeof folder !== 'string' || folder.length === 0) throw new InrunError('expected a folder path', { field: 'parquetSink.folder' });
  const limits = resolveParquetOptions(options, 'parquetSink');
  let dir = '';
  let writer: ParquetRunWriter | null = null;
  const files = {
    write: (path: string, content: Uint8Array | string) => writeAtomically(join(dir, path), content),
    remove: (path: string) => rmSync(join(dir, path)),
    list: (sub: string) => parquetFiles(join(dir, sub)),
  };
  const open = (): ParquetRunWriter => writer!;
  const readRunFile = (): RunFile => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunFile;
  const start = (run: RunInfo): ParquetRunWriter => {
    dir = join(folder, checkRunId(run.runId));
    writer = new ParquetRunWriter(files, run, limits);
    for (const sub of RUN_FOLDERS) mkdirSync(join(dir, sub), { recursive: true });
    return writer;
  };

  return {
    name: `parquet:${folder}`,
    stores: (runId: string) => existsSync(join(folder, checkRunId(runId), 'run.json')),
    open(run: RunInfo) {
      const w = start(run);
      if (existsSync(join(dir, 'run.json'))) {
        throw new InrunError(`run "${run.runId}" is already stored in ${folder}; choose another runId, or resume it`, { field: 'runId', code: 'invalid_state' });
      }
      w.writeRunFile('running', null);
    },
    async resume(run: RunInfo, afterStep: number): Promise<ResumeState> {
      const w = start(run);
      const keys = w.keys;
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
      w.nextStepPart = parts.length === 0 ? 0 : Math.max(...parts.map((f) => Number(f.slice(5, 11)))) + 1;
      w.nextExamplePart = parquetFiles(join(dir, 'examples')).length;
      w.writeRunFile('running', atStep === undefined ? null : afterStep);
      const byKey = [...keys.entries()].sort((a, b) => a[1] - b[1]);
      return {
        ids: byKey.map(([id]) => id),
        columns: Object.fromEntries(names.map((c, i) => [c, byKey.map(([, key]) => totals.get(key)?.values[i] ?? 0)])),
        steps: byKey.map(([, key]) => totals.get(key)?.steps ?? 0),
        step: afterStep,
      };
    },
    writeExamples(examples: readonly ExampleInfo[]) {
      open().writeExamples(examples);
    },
    writeSteps(records: readonly StepRecord[]) {
      open().writeSteps(records);
    },
    writeScores(scores: Scores, run: RunInfo, at: TotalsPoint) {
      open().writeScores(scores, run, at);
    },
    close() {
      writer?.closeSegment();
    },
  };
}
