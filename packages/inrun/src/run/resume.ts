// Resume: where a stored run continues (a checkpoint or afterStep), and the totals it continues from.
import { InrunError, invalid } from '../errors.js';
import type { ResumeState } from '@inrun/store';
import type { Delivery } from '../stream/delivery.js';
import { readCheckpointInfo, resolveCheckpoint } from './checkpoint.js';
import { readTotalsFiles } from './totals-files.js';

/** Where a resumed run continues: after `step`, in the epoch after `epoch`. */
export interface ResumePoint {
  readonly runId: string;
  readonly step: number;
  readonly epoch: number | null;
}

/** Reads and checks the point `run.resume(from)` continues after; the checkpoint must belong to run `runId`. */
export function resumePoint(from: string | { readonly afterStep: number }, runId: string): ResumePoint {
  const point = typeof from === 'string' ? readCheckpointInfo(from) : { runId, step: from.afterStep, epoch: null };
  if (!Number.isInteger(point.step) || point.step < -1) invalid('afterStep', 'an integer >= -1', point.step);
  if (point.runId !== runId) {
    throw new InrunError(`the checkpoint belongs to run "${point.runId}", this run is "${runId}"; attach with runId: "${point.runId}"`, {
      field: 'runId',
      code: 'invalid_state',
    });
  }
  return point;
}

/** Reopens the sinks at the point and returns the totals to continue from. */
export async function resumeTotals(from: string | { readonly afterStep: number }, point: ResumePoint, delivery: Delivery, columns: readonly string[]): Promise<ResumeState> {
  const sinkState = await delivery.resume(point.step);
  // A checkpoint's own totals first: the sinks' newest snapshot may be of a later checkpoint that never finished.
  const state = (typeof from === 'string' ? readTotalsFiles(resolveCheckpoint(from), columns, point.step) : null) ?? sinkState;
  if (sinkState === null || state === null) throw new InrunError('resume needs a sink that can resume (sqliteSink or parquetSink)', { field: 'sinks', code: 'invalid_option' });
  return state;
}
