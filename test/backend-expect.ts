// Registers one vitest case per (layer kind, check) from a backend run's results, with the known failures marked.
import { describe, expect, it } from 'vitest';
import { BACKEND_CASES } from './backend-cases.js';
import { BACKEND_CHECKS, type BackendCheck, type BackendResult } from './backend-checks.js';

/** The first case waits for the whole run: software GPUs compile every shader on busy CPUs. */
const RUN_TIMEOUT_MS = 540_000;

/**
 * Checks that fail on this branch and why. `it.fails` passes while the check fails and fails once it
 * passes, so the merge that fixes it must drop the entry here (and a new failure cannot hide).
 */
export type KnownFailures = Readonly<Record<string, string>>;

/**
 * `results()` runs every check once (in a page or a child process) and is awaited by the first case;
 * each (kind, check) is then its own test, failing with the check's detail.
 */
export function describeBackend(label: string, results: () => Promise<readonly BackendResult[]>, known: KnownFailures = {}): void {
  let pending: Promise<readonly BackendResult[]> | undefined;
  const all = () => (pending ??= results());
  describe(label, () => {
    for (const spec of BACKEND_CASES) {
      for (const check of BACKEND_CHECKS) {
        const key = `${spec.name} ${check}`;
        const body = async () => {
          const r = (await all()).find((x) => x.case === spec.name && x.check === (check as BackendCheck));
          expect(r, `no result for ${key}`).toBeDefined();
          expect(r!.ok, `${key}: ${r!.detail}`).toBe(true);
        };
        if (known[key] === undefined) it(key, body, RUN_TIMEOUT_MS);
        else it.fails(`${key} (known: ${known[key]})`, body, RUN_TIMEOUT_MS);
      }
    }
  });
}
