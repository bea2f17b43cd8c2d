// checkRunInfo: a stored run's info (run.json or the runs table) checked field by field before anything reads it.
import { InrunError, type RunInfo } from '@inrun/store';

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const num: Check = (v) => typeof v === 'number';
const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strOrNull: Check = (v) => v === null || typeof v === 'string';

/** A store's damaged run info: bad input (exit 3) naming the store and the field. */
const damaged = (where: string, field: string, what: string) => new InrunError(`${where}: run info field ${field} ${what}: the store is damaged or not written by inrun`, { field: 'store', code: 'invalid_input' });

/**
 * Checks that `value` has every field of a RunInfo the readers and the report use, with its type, and
 * returns it; throws `invalid_input` on `store` naming `where` (the file) and the first bad field.
 * Strings may hold anything (the report escapes them); numbers must be numbers.
 */
export function checkRunInfo(value: unknown, where: string): RunInfo {
  const need = (o: Record<string, unknown>, path: string, fields: Record<string, Check>) => {
    for (const [k, ok] of Object.entries(fields)) if (!ok(o[k])) throw damaged(where, `${path}${k}`, 'is missing or has the wrong type');
  };
  const list = (o: Record<string, unknown>, path: string, k: string, item: (v: unknown, at: string) => void) => {
    const v = o[k];
    if (!Array.isArray(v)) throw damaged(where, `${path}${k}`, 'is missing or not a list');
    v.forEach((x, i) => item(x, `${path}${k}[${i}]`));
  };
  const record = (v: unknown, at: string, fields: Record<string, Check>) => {
    if (!obj(v)) throw damaged(where, at, 'is missing or not an object');
    need(v, `${at}.`, fields);
    return v;
  };
  if (!obj(value)) throw damaged(where, '(the whole info)', 'is not an object');
  need(value, '', { runId: str, startedAt: str, inrunVersion: str, tfjsVersion: str, backend: str, lossReduction: str });
  record(value['model'], 'model', { name: str, className: str, params: num });
  record(value['optimizer'], 'optimizer', { className: str, attribution: str });
  list(value, '', 'methods', (v, at) => {
    if (!str(v)) throw damaged(where, at, 'is not a string');
  });
  list(value, '', 'columns', (v, at) => record(v, at, { name: str, method: str, target: strOrNull }));
  list(value, '', 'targets', (v, at) => record(v, at, { name: str, rows: num }));
  const layers = record(value['layers'], 'layers', { coveredParams: num, trainableParams: num });
  list(layers, 'layers.', 'covered', (v, at) => record(v, at, { name: str, kind: str, params: num }));
  list(layers, 'layers.', 'skipped', (v, at) => record(v, at, { name: str, className: str, reason: str }));
  if (value['meta'] !== undefined && !obj(value['meta'])) throw damaged(where, 'meta', 'is not an object');
  return value as unknown as RunInfo;
}

/** Parses stored run info text (JSON) and checks it; throws `invalid_input` on `store` naming `where`. */
export function parseRunInfo(json: string, where: string): RunInfo {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    throw new InrunError(`${where}: run info is not JSON (${(cause as Error).message}): the store is damaged or not written by inrun`, { field: 'store', code: 'invalid_input', cause });
  }
  return checkRunInfo(value, where);
}
