// RunGate: whether the run may still be used: closed runs refuse calls, a reused run id refuses training until resume(), training waits for attach's asynchronous checks.
import { InrunError } from '../errors.js';

export class RunGate {
  private closedFlag = false;

  /** attach's asynchronous checks as one promise, or null when attach had none to wait for. */
  readonly ready: Promise<void> | null;

  constructor(
    private readonly runId: string,
    /** A sink already storing this run id (asked at attach), or null; cleared by resume(). */
    private storedIn: string | null,
    /**
     * Checks of values started at attach that read their tensors asynchronously (every backend but
     * cpu: no synchronous read is ever made). attach returns at once; the training entry points
     * (`step`, `fit`, `fitDataset`, and the model's own `fit`/`fitDataset`, which route through them)
     * await {@link RunGate.ready} and reject with the check's `InrunError` instead of training on bad
     * targets.
     */
    checks: readonly Promise<void>[] = [],
  ) {
    this.ready = checks.length === 0 ? null : Promise.all(checks).then(() => undefined);
    // The error surfaces at the first step; until then it is not an unhandled rejection.
    this.ready?.catch(() => undefined);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Whether the run id was already stored at attach and never resumed: close() then writes nothing. */
  get reused(): boolean {
    return this.storedIn !== null;
  }

  assertOpen(): void {
    if (this.closedFlag) throw new InrunError('this run is closed', { code: 'invalid_state' });
  }

  /**
   * A run id some sink already stores, found at attach, fails before the first step (not at the first
   * write mid-training). attach cannot refuse it itself: `run.resume()` may still follow.
   */
  checkNewRun(): void {
    if (this.storedIn === null) return;
    throw new InrunError(`run "${this.runId}" is already stored in sink ${this.storedIn}; choose another runId, or call run.resume(checkpoint) before training`, {
      field: 'runId',
      code: 'invalid_state',
    });
  }

  /** resume() continues the stored run: training may start. */
  resumed(): void {
    this.storedIn = null;
  }

  /** close() started: every later call but close() fails. */
  close(): void {
    this.closedFlag = true;
  }
}
