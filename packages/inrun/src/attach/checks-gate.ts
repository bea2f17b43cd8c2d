// Holds a run's training entry points until the checks of values started at attach have read their tensors.
import type { AttributionRun } from '../run/run.js';

/**
 * Where a check at attach needs an asynchronous read (every backend but cpu: no synchronous read is
 * ever made), attach returns at once and the run awaits the checks before its first step: `step`,
 * `fit` and `fitDataset` (and the model's own `fit`/`fitDataset`, which route through them) reject
 * with the check's `InrunError` instead of training on bad targets. Nothing waits when `checks` is empty.
 */
export function gateOnChecks(run: AttributionRun, checks: readonly Promise<void>[]): AttributionRun {
  if (checks.length === 0) return run;
  const ready = Promise.all(checks).then(() => undefined);
  // The error surfaces at the first step; until then it is not an unhandled rejection.
  ready.catch(() => undefined);
  const gated = run as unknown as Record<'step' | 'fit' | 'fitOn', (...args: unknown[]) => Promise<unknown>>;
  for (const name of ['step', 'fit', 'fitOn'] as const) {
    const original = gated[name].bind(run);
    gated[name] = async (...args: unknown[]) => {
      await ready;
      return original(...args);
    };
  }
  return run;
}
