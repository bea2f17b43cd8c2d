// The run folder of one distributed invocation: `<out>/run=<id>/`, its id checked, claimed before any job starts.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '@inrun/store';
import { checkRunId, newRunId } from '@inrun/store/internal';

/**
 * Checks `runId` (or draws a fresh one) and creates `<out>/run=<runId>/`. The folder must not exist:
 * creating it is the claim, so two invocations (a rerun, or two at once with one id) never write
 * parts into one run folder, and a merge reads only its own run's parts.
 */
export function claimRunFolder(out: string, runId: string | undefined): string {
  const id = runId === undefined ? newRunId() : checkRunId(runId);
  const folder = join(out, `run=${id}`);
  try {
    mkdirSync(out, { recursive: true });
  } catch (e) {
    throw new InrunError(`cannot create ${out}: ${e instanceof Error ? e.message : String(e)}`, { code: 'invalid_option', field: 'out' });
  }
  try {
    mkdirSync(folder);
  } catch (e) {
    const taken = (e as NodeJS.ErrnoException).code === 'EEXIST';
    throw new InrunError(taken ? `${folder} exists: run ids are one per invocation; choose another, or leave it out for a fresh one` : `cannot create ${folder}: ${e instanceof Error ? e.message : String(e)}`, { code: 'invalid_option', field: taken ? 'runId' : 'out' });
  }
  return id;
}
