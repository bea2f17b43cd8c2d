// A BullMQ flow of inrun jobs: a parent that runs after its children, enqueued and awaited with the children's own failure messages.
import { FlowProducer, Job, Queue, QueueEvents, type ConnectionOptions, type JobNode } from 'bullmq';
import { InrunError } from '../errors.js';
import type { FlowJobEvent, JobMetrics } from './metrics.js';
import { DEFAULT_QUEUE } from './queue.js';

/** Where the jobs go: a BullMQ queue on Redis, served by `inrun worker` processes. */
export interface JobQueue {
  readonly connection: ConnectionOptions;
  /** @defaultValue {@link DEFAULT_QUEUE} */
  readonly queueName?: string;
  /** Tries per job before the flow fails (a killed worker's job counts one). @defaultValue 3 */
  readonly attempts?: number;
  /** Longest wait for the whole flow, in milliseconds. @defaultValue 3 600 000 (one hour) */
  readonly timeoutMs?: number;
}

/** Jobs of a run so far (the merge not counted): finished, failed for good (after every attempt), all. */
export interface JobProgress {
  readonly done: number;
  readonly failed: number;
  readonly total: number;
}

/** One job: its name (what a worker runs) and its data (paths and numbers only). */
export interface FlowJob {
  readonly name: string;
  readonly data: object;
}

/**
 * Enqueues `parent` with `children` (a child failing on every attempt fails the parent) and waits for
 * the parent's result. With `metrics`, counts the flow's jobs as the queue's events show them
 * (`inrun.flow.jobs`, `inrun.flow.retries`); the workers measure the attempts they run.
 */
export async function runFlow(queue: JobQueue, parent: FlowJob, children: readonly FlowJob[], onProgress?: (p: JobProgress) => void, metrics: JobMetrics | null = null): Promise<unknown> {
  const queueName = queue.queueName ?? DEFAULT_QUEUE;
  const opts = { attempts: queue.attempts ?? 3, backoff: { type: 'fixed', delay: 1000 } };
  // Listening starts before the flow exists, so a fast flow's completion is not missed.
  const events = new QueueEvents(queueName, { connection: queue.connection });
  const producer = new FlowProducer({ connection: queue.connection });
  // Events may come before the flow's ids are known: kept by id, counted against the children.
  const completed = new Set<string>();
  const failures: string[] = [];
  let childIds: Set<string> | null = null;
  // Job names by id, for the metrics: known once the flow is added; events that came first wait for them.
  let names: Map<string, string> | null = null;
  const early: [string, FlowJobEvent][] = [];
  const count = (jobId: string, event: FlowJobEvent) => {
    if (metrics === null) return;
    if (names === null) early.push([jobId, event]);
    else {
      const name = names.get(jobId);
      if (name !== undefined) metrics.flowJob(name, event);
    }
  };
  const report = () => {
    if (childIds === null || onProgress === undefined) return;
    const ids = childIds;
    onProgress({ done: [...completed].filter((id) => ids.has(id)).length, failed: new Set(failures.filter((id) => ids.has(id))).size, total: ids.size });
  };
  events.on('completed', ({ jobId }) => {
    completed.add(jobId);
    count(jobId, 'completed');
    report();
  });
  events.on('failed', ({ jobId }) => {
    failures.push(jobId);
    count(jobId, 'failed');
    report();
  });
  // A failed attempt with attempts left goes to `delayed` (the backoff); a dead worker's job is `stalled` and goes back to wait.
  events.on('delayed', ({ jobId }) => count(jobId, 'retried'));
  events.on('stalled', ({ jobId }) => count(jobId, 'retried'));
  try {
    await events.waitUntilReady();
    const flow = await producer.add({
      ...parent,
      queueName,
      opts,
      children: children.map((c) => ({ ...c, queueName, opts: { ...opts, failParentOnFailure: true } })),
    });
    childIds = new Set((flow.children ?? []).flatMap((c) => (c.job.id === undefined ? [] : [c.job.id])));
    names = new Map([flow, ...(flow.children ?? [])].flatMap((n) => (n.job.id === undefined ? [] : [[n.job.id, n.job.name] as const])));
    for (const [id, event] of early.splice(0)) count(id, event);
    report();
    try {
      return await flow.job.waitUntilFinished(events, queue.timeoutMs ?? 3_600_000);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const reasons = await childFailures(queueName, queue.connection, flow.children ?? []);
      throw new InrunError(`the ${parent.name} flow ${flow.job.id ?? ''} on queue ${queueName} failed, nothing merged: ${[message, ...reasons].join('; ')}`, { code: 'internal', field: 'queue' });
    }
  } finally {
    await producer.close();
    await events.close();
  }
}

/** The failed children's own messages (the parent's failure only says that a child failed). */
async function childFailures(queueName: string, connection: ConnectionOptions, children: readonly JobNode[]): Promise<string[]> {
  const queue = new Queue(queueName, { connection });
  try {
    const reasons: string[] = [];
    for (const c of children) {
      const job = c.job.id === undefined ? undefined : await Job.fromId(queue, c.job.id);
      if (job?.failedReason) reasons.push(job.failedReason);
    }
    return reasons;
  } finally {
    await queue.close();
  }
}
