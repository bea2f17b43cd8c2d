import type { ExampleInfo, RunInfo, Scores, StepRecord } from '../types.js';
import type { Sink } from './sink.js';

/**
 * Drives a run's sinks in the documented order, opening them lazily with the run's metadata as it
 * stands at the first write (layers' ghost paths are known after the first step).
 */
export class SinkHub {
  private opened = false;
  private closed = false;

  constructor(
    private readonly sinks: readonly Sink[],
    private readonly info: () => RunInfo,
  ) {}

  get active(): boolean {
    return this.sinks.length > 0;
  }

  /** Whether any sink takes per-step records. */
  get wantsSteps(): boolean {
    return this.sinks.some((s) => typeof s.writeSteps === 'function');
  }

  private async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    for (const sink of this.sinks) await sink.open(this.info());
  }

  async examples(examples: readonly ExampleInfo[]): Promise<void> {
    if (examples.length === 0 || !this.active) return;
    await this.open();
    for (const sink of this.sinks) await sink.writeExamples?.(examples);
  }

  async steps(records: readonly StepRecord[]): Promise<void> {
    if (records.length === 0 || !this.active) return;
    await this.open();
    for (const sink of this.sinks) await sink.writeSteps?.(records);
  }

  async scores(scores: Scores): Promise<void> {
    if (!this.active) return;
    await this.open();
    for (const sink of this.sinks) await sink.writeScores?.(scores, this.info());
  }

  async close(): Promise<void> {
    if (this.closed || !this.opened) return;
    this.closed = true;
    const errors: unknown[] = [];
    for (const sink of this.sinks) {
      try {
        await sink.close();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}
