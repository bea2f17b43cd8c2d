// The run folder of one distributed invocation: `<out>/run=<id>/`, its id checked, claimed before any job starts.
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InrunError } from '@inrun/store';
import { checkRunId, newRunId } from '@inrun/store/internal';

/** The output folders a claim created: a refused run removes them again when they are left empty. */
const createdOuts = new Set<string>();

/**
 * Checks `runId` (or draws a fresh one) and creates `<out>/run=<runId>/`. The folder must not exist:
 * creating it is the claim, so two invocations (a rerun, or two at once with one id) never write
 * parts into one run folder, and a merge reads only its own run's parts.
 */
export function claimRunFolder(out: string, runId: string | undefined): string {
  const id = runId === undefined ? newRunId() : checkRunId(runId);
  const folder = join(out, `run=${id}`);
  if (!existsSync(out)) createdOuts.add(out);
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

/** Removes `<out>/run=<runId>/` when it holds no file (only empty folders), and `out` when the claim created it and it is left empty: what a refused run leaves. */
export function releaseRunFolder(out: string, runId: string): void {
  const folder = join(out, `run=${runId}`);
  try {
    const files = readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((f) => !statSync(join(folder, f)).isDirectory());
    if (files.length === 0) rmSync(folder, { recursive: true, force: true });
  } catch {
    // Already gone, or unreadable: nothing to tidy.
  }
  if (!createdOuts.delete(out)) return;
  try {
    // Only when empty (rmdir refuses otherwise): the user's --out is left as it was before the run.
    rmdirSync(out);
  } catch {
    // Not empty: another run's output lives there.
  }
}
