// checkJob: every field of a job's payload checked on the worker before it runs, as the CLI and the API check them (a job may come from anyone on the Redis).
import { isAbsolute, relative, resolve } from 'node:path';
import { InrunError } from '@inrun/store';
import { checkRunId, preview } from '@inrun/store/internal';

/** What a source or target name may be (it names a folder, `unlearned=<name>`): the API's rule. */
export const PART_NAME = /^[\w.-]+$/;

/** A bad field of a job's payload: bad input, naming the field as `job.<field>`. */
const bad = (field: string, what: string, value: unknown) => new InrunError(`the job's ${field} must be ${what}, got ${preview(value)}: refused (the worker checks every job, whoever enqueued it)`, { code: 'invalid_input', field: `job.${field}` });

type Data = Record<string, unknown>;

function str(d: Data, field: string): string {
  const v = d[field];
  if (typeof v !== 'string' || v === '') throw bad(field, 'a non-empty string (a path)', v);
  return v;
}

function int(d: Data, field: string, min: number, optional = false, at = field): void {
  const v = d[field];
  if (optional && v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw bad(at, `an integer >= ${min}`, v);
}

function num(d: Data, field: string, ok: (n: number) => boolean, what: string): void {
  const v = d[field];
  if (v !== undefined && (typeof v !== 'number' || !ok(v))) throw bad(field, what, v);
}

function oneOf(d: Data, field: string, values: readonly string[]): void {
  if (!values.includes(d[field] as string)) throw bad(field, `one of ${values.join(', ')}`, d[field]);
}

function runId(d: Data): void {
  try {
    checkRunId(d['runId'], 'job.runId');
  } catch {
    throw bad('runId', "1 to 128 characters of A-Z a-z 0-9 . _ - not starting with '.' or '-'", d['runId']);
  }
}

/** Paths the job reads that it wrote itself (parts): each must lie inside `out`. */
function partsInside(d: Data, out: string): void {
  const parts = d['parts'];
  if (!Array.isArray(parts)) throw bad('parts', 'a list of paths', parts);
  parts.forEach((p, i) => {
    const rel = typeof p === 'string' ? relative(resolve(out), resolve(p)) : '..';
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw bad(`parts[${i}]`, `a part inside the output folder ${out}`, p);
  });
}

/** The shard's `range`: an object `{ start, end }` of integers, start <= end. */
function range(d: Data): void {
  const r = d['range'] as Data | undefined;
  if (typeof r !== 'object' || r === null) throw bad('range', 'an object { start, end }', r);
  int(r, 'start', 0, false, 'range.start');
  int(r, 'end', 0, false, 'range.end');
  if ((r['end'] as number) < (r['start'] as number)) throw bad('range', 'a range with start <= end', r);
}

/** What every shard job names, tracin's and trak's: its row files, output folder, run id, row range and shard number. */
function shardFields(d: Data): void {
  str(d, 'train');
  str(d, 'queries');
  str(d, 'out');
  runId(d);
  range(d);
  int(d, 'shard', 0);
}

function names(d: Data, field: string): string[] {
  const v = d[field];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(field, 'an object of name to row file', v);
  const out = Object.entries(v as Data);
  for (const [name, path] of out) {
    if (!PART_NAME.test(name) || name === '.' || name === '..') throw bad(`${field}.${name}`, "a name of letters, digits, '.', '_' or '-' (it names a folder)", name);
    if (typeof path !== 'string' || path === '') throw bad(`${field}.${name}`, 'a path', path);
  }
  return out.map(([n]) => n);
}

function strings(d: Data, field: string): void {
  const v = d[field];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && PART_NAME.test(s))) throw bad(field, 'a list of names', v);
}

/**
 * Checks the payload of job `name` field by field (types, ranges, run ids and names that build
 * paths, parts inside the output folder); throws `invalid_input` on `job.<field>`, so the job fails
 * naming the field and nothing is read or written. Unknown job names are left to the dispatcher.
 */
export function checkJob(name: string, data: unknown): void {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('data', 'an object', data);
  const d = data as Data;
  switch (name) {
    case 'tracin-shard': {
      str(d, 'checkpoints');
      shardFields(d);
      int(d, 'k', 1);
      int(d, 'checkpoint', 0, true);
      oneOf(d, 'layers', ['all', 'last', 'embedding']);
      return;
    }
    case 'tracin-merge':
      str(d, 'checkpoints');
      str(d, 'queries');
      int(d, 'k', 1);
      partsInside(d, str(d, 'out'));
      if (d['perCheckpoint'] !== undefined && typeof d['perCheckpoint'] !== 'boolean') throw bad('perCheckpoint', 'a boolean', d['perCheckpoint']);
      return;
    case 'trak-shard': {
      const runs = d['runs'];
      if (!Array.isArray(runs) || runs.length === 0 || !runs.every((r) => typeof r === 'string' && r !== '')) throw bad('runs', 'a non-empty list of paths', runs);
      shardFields(d);
      int(d, 'dim', 1);
      int(d, 'seed', 0);
      int(d, 'batchSize', 1);
      oneOf(d, 'output', ['margin', 'loss']);
      oneOf(d, 'layers', ['all', 'last', 'embedding']);
      oneOf(d, 'sketches', ['stored', 'recompute']);
      return;
    }
    case 'trak-merge':
      int(d, 'k', 1);
      num(d, 'lambda', (n) => Number.isFinite(n) && n >= 0, 'a finite number >= 0');
      partsInside(d, str(d, 'out'));
      // The merge reads the binary beside each index (`.json` -> `.f64`): any other name would read the index itself.
      (d['parts'] as unknown[]).forEach((p, i) => {
        if (!(p as string).endsWith('.json')) throw bad(`parts[${i}]`, 'a trak-part .json index', p);
      });
      // The run id names the stored run's folder under `out`.
      runId(d);
      if (d['sqlite'] !== undefined) str(d, 'sqlite');
      return;
    case 'untrac': {
      str(d, 'model');
      str(d, 'out');
      runId(d);
      oneOf(d, 'method', ['untrac', 'untrac-inv']);
      const sources = names(d, 'sources');
      const targets = names(d, 'targets');
      const side = d['method'] === 'untrac-inv' ? targets : sources;
      if (typeof d['unlearn'] !== 'string' || !side.includes(d['unlearn'])) throw bad('unlearn', `one of the job's ${d['method'] === 'untrac-inv' ? 'targets' : 'sources'}`, d['unlearn']);
      for (const f of ['epochs', 'batchSize', 'maxSteps', 'evalRows', 'evalBatchSize']) int(d, f, 1, true);
      num(d, 'seed', Number.isFinite, 'a finite number');
      num(d, 'lossCeiling', (n) => n > 0, 'a positive number');
      num(d, 'learningRate', (n) => Number.isFinite(n) && n > 0, 'a positive finite number');
      return;
    }
    case 'untrac-merge':
      strings(d, 'targets');
      strings(d, 'sources');
      partsInside(d, str(d, 'out'));
      return;
    default:
  }
}
