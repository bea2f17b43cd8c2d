// The run folder of one distributed invocation: `<out>/run=<id>/`, its id checked, claimed before any job starts.
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '@inrun/store';
import { checkRunId, newRunId } from '@inrun/store/internal';

/** A claimed run folder: its id, and whether the claim created `out` (a refused run then removes it again when empty). */
export interface RunFolderClaim {
  readonly id: string;
  readonly createdOut: boolean;
}

/**
 * Checks `runId` (or draws a fresh one) and creates `<out>/run=<runId>/`. The folder must not exist:
 * creating it is the claim, so two invocations (a rerun, or two at once with one id) never write
 * parts into one run folder, and a merge reads only its own run's parts.
 */
export function claimRunFolder(out: string, runId: string | undefined): RunFolderClaim {
  const id = runId === undefined ? newRunId() : checkRunId(runId);
  const folder = join(out, `run=${id}`);
  const createdOut = !existsSync(out);
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
  return { id, createdOut };
}

/** Removes `<out>/run=<runId>/` when it holds no file (only empty folders), and `out` when the claim created it and it is left empty: what a refused run leaves. */
export function releaseRunFolder(out: string, claim: RunFolderClaim): void {
  const folder = join(out, `run=${claim.id}`);
  try {
    const files = readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((f) => !statSync(join(folder, f)).isDirectory());
    if (files.length === 0) rmSync(folder, { recursive: true, force: true });
  } catch {
    // Already gone, or unreadable: nothing to tidy.
  }
  if (!claim.createdOut) return;
  try {
    // Only when empty (rmdir refuses otherwise): the user's --out is left as it was before the run.
    rmdirSync(out);
  } catch {
    // Not empty: another run's output lives there.
  }
}
