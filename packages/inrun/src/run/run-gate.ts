// RunGate: whether the run may still be used: closed runs refuse calls, a reused run id refuses training until resume().
import { InrunError } from '../errors.js';

export class RunGate {
  private closedFlag = false;

  constructor(
    private readonly runId: string,
    /** A sink already storing this run id (asked at attach), or null; cleared by resume(). */
    private storedIn: string | null,
  ) {}

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
