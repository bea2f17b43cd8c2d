// One UnTrac job (one source's ascent, or one target's for UnTrac-Inv) over row files, its rows to one Parquet part; the merge.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InrunError } from '@inrun/store';
import { untrac } from 'inrun/internal';
import type { UntracOptions, UntracRow } from 'inrun/internal';
import { loadTrainedModel } from 'inrun/internal';
import { readParquetFile, writeParquetFile } from '@inrun/store/internal';
import { readRows, type FileRows } from './row-files.js';

/** Settings of the ascents that travel with a job: `untrac`'s numbers (its docs and defaults); the optimizer is Adam at `learningRate`. */
export interface UntracJobSettings extends Pick<UntracOptions, 'epochs' | 'batchSize' | 'maxSteps' | 'evalRows' | 'evalBatchSize' | 'lossCeiling' | 'seed'> {
  readonly method: 'untrac' | 'untrac-inv';
  /** Adam's step size (a factory cannot travel through Redis). @defaultValue 5e-5 (untrac's default optimizer) */
  readonly learningRate?: number;
}

/** One ascent: `unlearn` names the source (UnTrac) or target (UnTrac-Inv) this job unlearns. */
export interface UntracJob extends UntracJobSettings {
  /** The trained model: an inrun checkpoint folder (or one with a `latest` file), or a tf.js model.json folder saved compiled with its optimizer. */
  readonly model: string;
  /** Name to a row file (JSON lines, or Parquet when the name ends in `.parquet`). */
  readonly sources: Readonly<Record<string, string>>;
  readonly targets: Readonly<Record<string, string>>;
  readonly unlearn: string;
  readonly out: string;
  /** The run (the invocation of `distributedUntrac`) the part belongs to: its folder is `run=<runId>`. */
  readonly runId: string;
}

/** Where the job of run `runId` that unlearns `name` writes (the run first: two runs into one folder never mix). */
export function untracPartPath(out: string, runId: string, name: string): string {
  return join(out, `run=${runId}`, `unlearned=${name}`, 'part.parquet');
}

const COLUMNS = ['target', 'source', 'method', 'influence', 'loss_before', 'loss_after', 'steps', 'seconds', 'stopped'] as const;

function writeRowsParquet(path: string, rows: readonly UntracRow[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeParquetFile(path, [
    { name: 'target', type: 'STRING', data: rows.map((r) => r.target) },
    { name: 'source', type: 'STRING', data: rows.map((r) => r.source) },
    { name: 'method', type: 'STRING', data: rows.map((r) => r.method) },
    { name: 'influence', type: 'DOUBLE', data: rows.map((r) => r.influence) },
    { name: 'loss_before', type: 'DOUBLE', data: rows.map((r) => r.lossBefore) },
    { name: 'loss_after', type: 'DOUBLE', data: rows.map((r) => r.lossAfter) },
    { name: 'steps', type: 'INT32', data: rows.map((r) => r.steps) },
    { name: 'seconds', type: 'DOUBLE', data: rows.map((r) => r.seconds) },
    { name: 'stopped', type: 'STRING', data: rows.map((r) => r.stopped), nullable: true },
  ]);
}

async function readNamed(files: Readonly<Record<string, string>>, only?: string): Promise<Record<string, FileRows>> {
  const named: Record<string, FileRows> = {};
  try {
    for (const [name, path] of Object.entries(files)) if (only === undefined || name === only) named[name] = await readRows(path);
    return named;
  } catch (e) {
    for (const r of Object.values(named)) tf.dispose([r.xs, r.ys]);
    throw e;
  }
}

/** Runs one ascent with {@link untrac} (the unlearned side reduced to one name) and writes its rows atomically. */
export async function runUntracJob(job: UntracJob): Promise<string> {
  const inv = job.method === 'untrac-inv';
  const model = await loadTrainedModel(job.model);
  // Saved without its optimizer (tf.js' default), a model.json has no loss: ascent needs one.
  if (model.loss === undefined) {
    model.dispose();
    throw new InrunError(`the model at ${job.model} is not compiled (no loss): save it with model.save(..., { includeOptimizer: true }) after compile, or pass an inrun checkpoint`, { code: 'invalid_input', field: 'model' });
  }
  try {
    const sources = await readNamed(job.sources, inv ? undefined : job.unlearn);
    try {
      const targets = await readNamed(job.targets, inv ? job.unlearn : undefined);
      try {
        const lr = job.learningRate ?? 5e-5;
        const { method, epochs, batchSize, maxSteps, evalRows, evalBatchSize, lossCeiling, seed } = job;
        const settings = Object.fromEntries(Object.entries({ epochs, batchSize, maxSteps, evalRows, evalBatchSize, lossCeiling, seed }).filter(([, v]) => v !== undefined));
        const result = await untrac(model, { ...settings, method, sources, targets, optimizer: () => tf.train.adam(lr) });
        const path = untracPartPath(job.out, job.runId, job.unlearn);
        writeRowsParquet(path, result.rows);
        return path;
      } finally {
        for (const r of Object.values(targets)) tf.dispose([r.xs, r.ys]);
      }
    } finally {
      for (const r of Object.values(sources)) tf.dispose([r.xs, r.ys]);
    }
  } catch (e) {
    throw new InrunError(`${inv ? 'target' : 'source'} ${job.unlearn}: ${withFile(e, job)}`, { code: e instanceof InrunError ? e.code : 'internal', field: `unlearn.${job.unlearn}` });
  } finally {
    model.optimizer?.dispose();
    model.dispose();
  }
}

/**
 * An error's message without its `inrun: ` prefix, naming the row file when its field points into
 * one (`untrac()` checks rows by name, `sources.a.xs`; the user knows the file).
 */
function withFile(e: unknown, job: UntracJob): string {
  const message = (e instanceof Error ? e.message : String(e)).replace(/^inrun: /, '');
  const at = e instanceof InrunError && e.field !== undefined ? /^(sources|targets)\.([^.[]+)/.exec(e.field) : null;
  const file = at === null ? undefined : job[at[1] as 'sources' | 'targets'][at[2]!];
  return file === undefined || message.includes(file) ? message : `${message} (rows of ${file})`;
}

/** What the UnTrac merge needs. */
export interface UntracMergeJob {
  readonly parts: readonly string[];
  readonly targets: readonly string[];
  readonly sources: readonly string[];
  readonly out: string;
}

/** The parts' rows, targets in the order given, then sources (as `untrac` orders them). */
export async function mergeUntracParts(job: Omit<UntracMergeJob, 'out'>): Promise<UntracRow[]> {
  const rows: UntracRow[] = [];
  for (const part of job.parts) {
    for (const r of (await readParquetFile(part, [...COLUMNS])) as Record<(typeof COLUMNS)[number], unknown>[]) {
      rows.push({
        target: r.target as string,
        source: r.source as string,
        method: r.method as UntracRow['method'],
        influence: r.influence as number,
        lossBefore: r.loss_before as number,
        lossAfter: r.loss_after as number,
        steps: r.steps as number,
        seconds: r.seconds as number,
        stopped: (r.stopped ?? null) as UntracRow['stopped'],
      });
    }
  }
  const key = (r: UntracRow) => job.targets.indexOf(r.target) * job.sources.length + job.sources.indexOf(r.source);
  return rows.sort((a, b) => key(a) - key(b));
}

/** The merge job: `<out>/influence.parquet` (`target`, `source`, `method`, `influence`, `loss_before`, `loss_after`, `steps`, `seconds`, `stopped`). */
export async function runUntracMerge(job: UntracMergeJob): Promise<string> {
  const path = join(job.out, 'influence.parquet');
  writeRowsParquet(path, await mergeUntracParts(job));
  return path;
}
