// Delivery: the bounded queue from training to sinks, back-pressure (block/drop) and sink failures.
import { InrunError } from '../errors.js';
import type { ResumeState, Sink, TotalsPoint } from '@inrun/store';
import type { ExampleInfo, RunInfo, Scores, StepRecord } from '../types.js';
import { yieldTurn } from '../event-loop.js';

/**
 * What happens when sinks fall behind: `block` makes the training step wait for room (never loses a
 * record); `drop` discards per-step records that do not fit and counts them. Examples and totals
 * are never dropped.
 */
export type DeliveryPolicy = 'block' | 'drop';

/** What to do when a sink throws: `stop` fails the next training step; `continue` drops the sink. */
export type SinkErrorPolicy = 'stop' | 'continue';

export interface DeliveryOptions {
  readonly policy: DeliveryPolicy;
  /** Step records that may wait for sinks. */
  readonly capacity: number;
  readonly onError: SinkErrorPolicy;
  /** Milliseconds a sink call may take before it counts as failed. */
  readonly timeoutMs: number;
}

/** A sink that threw, hung or refused, with the call and what went wrong. */
export interface SinkFailure {
  readonly sink: string;
  /** The sink call that failed: `open`, `writeSteps`, `writeExamples`, `writeScores`, `resume` or `close`. */
  readonly call: string;
  /** An InrunError (`sink_failed`) naming the sink; its `cause` is what the sink threw. */
  readonly error: InrunError;
}

/** What a sink threw, as text for a message that has its own `inrun:` prefix. */
export function reason(error: unknown): string {
  return error instanceof InrunError ? error.message.replace(/^inrun: /, '') : error instanceof Error ? error.message : String(error);
}

/** Counters of the delivery to sinks. */
export interface DeliveryStats {
  /** Step records waiting for sinks. */
  readonly queued: number;
  /** Step records handed to every working sink. */
  readonly delivered: number;
  /** Step records dropped (`drop` policy). */
  readonly dropped: number;
  /** Per sink: step records written. */
  readonly written: Readonly<Record<string, number>>;
  /** Per sink: milliseconds spent inside its `writeSteps` calls. */
  readonly busyMs: Readonly<Record<string, number>>;
  readonly failures: readonly SinkFailure[];
}

type Item =
  | { readonly kind: 'examples'; readonly examples: readonly ExampleInfo[] }
  | { readonly kind: 'steps'; readonly records: readonly StepRecord[] }
  | { readonly kind: 'scores'; readonly scores: Scores; readonly at: TotalsPoint };

/** The longest a `drop` flush point waits for room while a sink is mid-write. */
const MAX_WAIT_MS = 250;

/**
 * The bounded queue between the training hook and the sinks (RxJS has no back-pressure). One
 * consumer delivers items in order to every working sink, so several sinks share one stream; the
 * slowest sink sets the pace under `block`.
 */
export class Delivery {
  private readonly queue: Item[] = [];
  private queued = 0;
  private delivered = 0;
  private dropped = 0;
  private readonly written = new Map<Sink, number>();
  private readonly busy = new Map<Sink, number>();
  private readonly failed = new Set<Sink>();
  private readonly failures: SinkFailure[] = [];
  private unsurfaced: SinkFailure | null = null;
  private consumer: Promise<void> | null = null;
  private waiters: (() => void)[] = [];
  private opening: Promise<ResumeState | null> | null = null;
  private closed = false;
  private lastFlushAt = performance.now();

  constructor(
    private readonly sinks: readonly Sink[],
    private readonly info: () => RunInfo,
    private readonly options: DeliveryOptions,
  ) {
    for (const sink of sinks) this.written.set(sink, 0);
  }

  /** The name of the first sink that already stores run `runId` (a reused id), or null. */
  storedIn(runId: string): string | null {
    for (const sink of this.sinks) {
      try {
        if (sink.stores?.(runId) === true) return sink.name;
      } catch {
        // A sink that cannot tell (a file it cannot read yet) reports at open, as before.
      }
    }
    return null;
  }

  /** Whether any sink takes per-step records. */
  get wantsSteps(): boolean {
    return this.sinks.some((s) => typeof s.writeSteps === 'function');
  }

  get stats(): DeliveryStats {
    return {
      queued: this.queued,
      delivered: this.delivered,
      dropped: this.dropped,
      written: Object.fromEntries(this.sinks.map((s) => [s.name, this.written.get(s) ?? 0])),
      busyMs: Object.fromEntries(this.sinks.map((s) => [s.name, this.busy.get(s) ?? 0])),
      failures: [...this.failures],
    };
  }

  /**
   * Opens every sink for a resumed run: sinks that can resume forget the steps after `afterStep`
   * and report their totals; the others are opened afresh. Returns the first sink's state.
   */
  resume(afterStep: number): Promise<ResumeState | null> {
    if (this.opening !== null) throw new InrunError('sinks are already open', { code: 'invalid_state' });
    this.opening = (async () => {
      let state: ResumeState | null = null;
      for (const sink of this.sinks) {
        if (typeof sink.resume === 'function') {
          const s = await this.call(sink, 'resume', () => sink.resume!(this.info(), afterStep));
          state ??= s;
        } else {
          await this.call(sink, 'open', () => sink.open(this.info()));
        }
      }
      return state;
    })();
    return this.opening;
  }

  async push(item: Item): Promise<void> {
    if (this.sinks.length === 0 || this.closed) return;
    if (item.kind === 'steps') {
      if (!this.wantsSteps || item.records.length === 0) return;
      let records = item.records;
      if (this.options.policy === 'drop') {
        // A flush point: let sinks awaiting I/O run (cpu training never yields to the event loop
        // otherwise). While the queue is full and a write is in flight, keep yielding for up to a
        // quarter of the time training took to produce these records: a sink faster than training
        // finishes in that time; only one really slower than training loses records, and training
        // slows by at most that quarter.
        const now = performance.now();
        const budget = Math.min(MAX_WAIT_MS, (now - this.lastFlushAt) / 4);
        await yieldTurn();
        while (this.consumer !== null && this.options.capacity - this.queued < records.length && performance.now() - now < budget) await yieldTurn();
        this.lastFlushAt = performance.now();
        const room = Math.max(0, this.options.capacity - this.queued);
        if (room < records.length) {
          this.dropped += records.length - room;
          records = records.slice(0, room);
          if (records.length === 0) return;
        }
      } else {
        // Wait for room; a batch larger than the whole queue enters once the queue is empty.
        while (this.queued > 0 && this.queued + records.length > this.options.capacity) {
          await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
      }
      this.queued += records.length;
      this.queue.push({ kind: 'steps', records });
    } else {
      this.queue.push(item);
    }
    this.consumer ??= this.consume();
  }

  /** Resolves once every queued item reached the sinks. */
  async drain(): Promise<void> {
    while (this.consumer !== null) await this.consumer;
  }

  /** The first failure under `onError: 'stop'` not yet reported (then cleared). */
  takeFailure(): SinkFailure | null {
    const f = this.unsurfaced;
    this.unsurfaced = null;
    return f;
  }

  /**
   * Drains, then closes every sink that was opened (each within the timeout). A sink that fails to
   * close is a sink failure like any other: under `stop` the run reports it, under `continue` it
   * is only counted.
   */
  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
    if (this.opening === null) return;
    await this.opening.catch(() => null);
    for (const sink of this.sinks) {
      try {
        await this.call(sink, 'close', () => sink.close());
      } catch (error) {
        this.fail(sink, 'close', error);
      }
    }
  }

  /**
   * Calls a sink, turning a promise that does not settle within the timeout into a failure (the
   * late promise is then ignored). Synchronous sinks are called as they are.
   */
  private async call<T>(sink: Sink, name: string, fn: () => T | Promise<T>): Promise<T> {
    const result = fn();
    if (!(result instanceof Promise)) return result;
    const ms = this.options.timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not answer within ${ms} ms (delivery.timeoutMs)`)), ms);
    });
    try {
      return await Promise.race([result, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async consume(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const item = this.queue[0]!;
        await this.deliver(item);
        this.queue.shift();
        if (item.kind === 'steps') {
          this.queued -= item.records.length;
          this.delivered += item.records.length;
          const waiting = this.waiters;
          this.waiters = [];
          for (const wake of waiting) wake();
        }
      }
    } finally {
      this.consumer = null;
    }
  }

  private async deliver(item: Item): Promise<void> {
    // Sinks open at the first delivery, when the run's metadata (ghost paths) is known.
    this.opening ??= (async () => {
      for (const sink of this.sinks) {
        try {
          await this.call(sink, 'open', () => sink.open(this.info()));
        } catch (error) {
          this.fail(sink, 'open', error);
        }
      }
      return null;
    })();
    await this.opening;
    const call = item.kind === 'steps' ? 'writeSteps' : item.kind === 'examples' ? 'writeExamples' : 'writeScores';
    for (const sink of this.sinks) {
      if (this.failed.has(sink)) continue;
      try {
        if (item.kind === 'steps') {
          if (sink.writeSteps) {
            const started = performance.now();
            await this.call(sink, call, () => sink.writeSteps!(item.records));
            this.busy.set(sink, (this.busy.get(sink) ?? 0) + performance.now() - started);
            this.written.set(sink, (this.written.get(sink) ?? 0) + item.records.length);
          }
        } else if (item.kind === 'examples') {
          if (sink.writeExamples) await this.call(sink, call, () => sink.writeExamples!(item.examples));
        } else if (sink.writeScores) {
          await this.call(sink, call, () => sink.writeScores!(item.scores, this.info(), item.at));
        }
      } catch (error) {
        this.fail(sink, call, error);
      }
    }
  }

  private fail(sink: Sink, call: string, cause: unknown): void {
    if (this.failed.has(sink)) return;
    this.failed.add(sink);
    const error = new InrunError(`sink ${sink.name} failed in ${call}: ${reason(cause)}`, { field: 'sinks', code: 'sink_failed', cause });
    const failure = { sink: sink.name, call, error };
    this.failures.push(failure);
    if (this.options.onError === 'stop') this.unsurfaced ??= failure;
  }
}
