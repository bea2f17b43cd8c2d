// NonFiniteSteps: the nonFinite policy: counts and warns about non-finite steps, and under 'stop' halts training.
import type { NonFinitePolicy } from '../attach/options.js';
import { InrunError } from '../errors.js';
import type { RunMetrics } from '../telemetry/metrics.js';

export class NonFiniteSteps {
  private count = 0;
  private firstStep: number | null = null;
  /** Set under `nonFinite: 'stop'` once a non-finite step is read back: every later step fails with it. */
  private halted: InrunError | null = null;

  constructor(
    private readonly runId: string,
    private readonly policy: NonFinitePolicy,
    private readonly metrics: RunMetrics | null,
  ) {}

  /** Non-finite steps read back so far. */
  get steps(): number {
    return this.count;
  }

  get first(): number | null {
    return this.firstStep;
  }

  /** The error training stopped with under 'stop', or null. */
  get halt(): InrunError | null {
    return this.halted;
  }

  /** Whether a drained step's record reaches records$ and the sinks. */
  keeps(finite: boolean): boolean {
    return finite || this.policy === 'record';
  }

  /** Counts non-finite steps, warns once per flush with their numbers, and feeds the metric. */
  note(steps: readonly number[]): void {
    if (steps.length === 0) return;
    this.count += steps.length;
    this.firstStep ??= steps[0]!;
    this.metrics?.nonFinite(steps.length);
    const shown = steps.slice(0, 5).join(', ') + (steps.length > 5 ? `, ... (${steps.length} steps)` : '');
    process.emitWarning(`inrun: run "${this.runId}": step ${shown} not finite (NaN or Infinity in the loss, a target loss or a score); policy nonFinite: '${this.policy}'`, 'InrunWarning');
  }

  /** Under 'stop', after a flush delivered every finite step: throws (and keeps) the error for the first bad step. */
  stopOn(bad: readonly number[]): void {
    if (bad.length === 0 || this.policy !== 'stop') return;
    this.halted ??= new InrunError(
      `step ${bad[0]} is not finite (its loss, a target loss or a score is NaN or Infinity): training stopped after every finite step ` +
        "reached the sinks; lower the learning rate or check the data (nonFinite: 'skip-step' trains on without such steps)",
      { field: 'nonFinite', code: 'invalid_input' },
    );
    throw this.halted;
  }

  /** Throws the halt error, once training stopped. */
  check(): void {
    if (this.halted !== null) throw this.halted;
  }
}
