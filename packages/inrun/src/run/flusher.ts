// Flusher: reads buffered steps back and hands records, new examples and due totals to records$ and the sinks.
import type { Subject } from 'rxjs';
import type { Delivery } from '../stream/delivery.js';
import type { RecordBuffer } from '../stream/records.js';
import type { ExampleInfo, Scores, StepRecord } from '../types.js';
import type { NonFiniteSteps } from './non-finite.js';
import type { TotalsSnapshots } from './totals-snapshots.js';

export class Flusher {
  private flushing: Promise<void> = Promise.resolve();
  private unsentExamples: ExampleInfo[] = [];

  constructor(
    private readonly buffer: RecordBuffer,
    private readonly nonFinite: NonFiniteSteps,
    private readonly subject: Subject<StepRecord>,
    private readonly delivery: Delivery,
    private readonly snapshots: TotalsSnapshots,
    private readonly readTotals: () => Promise<Scores>,
    /** Buffered steps that trigger a flush. */
    private readonly flushEvery: number,
  ) {}

  /** Example metadata for the sinks, sent with the next flush. */
  addExample(example: ExampleInfo): void {
    this.unsentExamples.push(example);
  }

  /** Flushes once `flushEvery` steps are buffered (the back-pressure point between steps). */
  async ifDue(): Promise<void> {
    if (this.buffer.size >= this.flushEvery) await this.flush();
  }

  flush(): Promise<void> {
    const next = this.flushing.then(async () => {
      const drained = await this.buffer.drain();
      const bad = drained.filter((d) => !d.finite).map((d) => d.step);
      this.nonFinite.note(bad);
      const records = drained.flatMap((d) => (d.record !== null && this.nonFinite.keeps(d.finite) ? [d.record] : []));
      const examples = this.unsentExamples;
      this.unsentExamples = [];
      for (const record of records) this.subject.next(record);
      const delivery = this.delivery;
      if (examples.length > 0) await delivery.push({ kind: 'examples', examples });
      await delivery.push({ kind: 'steps', records });
      if (this.snapshots.due) await this.snapshots.push(await this.readTotals(), false);
      this.nonFinite.stopOn(bad);
    });
    // A failed flush fails its caller; later flushes still run.
    this.flushing = next.catch(() => undefined);
    return next;
  }
}
