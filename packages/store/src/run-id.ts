// Run ids: a fresh one when nobody chose one, and the one check of every id a path is built from (sink folders, file names).
import { InrunError, preview } from './errors.js';

/** What a run id may be: a folder name on every platform, never `.`/`..`, never a separator. */
const RUN_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks a run id before any path is built from it: 1 to 128 characters of `A-Z a-z 0-9 . _ -`,
 * not starting with `.` or `-` (so `.`, `..` and hidden names are out). Throws an InrunError naming `field`.
 */
export function checkRunId(value: unknown, field = 'runId'): string {
  if (typeof value === 'string' && RUN_ID.test(value)) return value;
  throw new InrunError(
    `expected 1 to 128 characters of A-Z a-z 0-9 . _ - not starting with '.' or '-' (run ids name folders and files), got ${preview(value)}`,
    { field, code: 'invalid_option' },
  );
}

/** A run id nobody chose: the time and a random suffix (passes {@link checkRunId}). */
export function newRunId(): string {
  return `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${Math.random().toString(16).slice(2, 8)}`;
}
