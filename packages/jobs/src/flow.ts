// A BullMQ flow of inrun jobs: a parent that runs after its children, enqueued and awaited with the children's own failure messages.
import type { ConnectionOptions, JobNode, Queue } from 'bullmq';
import { bullmq } from './bullmq.js';
import { readReason } from './job-error.js';
import { InrunError } from '@inrun/store';
import type { FlowJobEvent, JobMetrics } from './metrics.js';
import { DEFAULT_QUEUE } from './queue.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, reachRedis, redisAddress } from './reach-redis.js';
import { beforeDeadline, FlowTimeout, waitForJob } from './wait-job.js';

/** Where the jobs go: a BullMQ queue on Redis, served by `inrun worker` processes. */
export interface JobQueue {
  readonly connection: ConnectionOptions;
  /** @defaultValue {@link DEFAULT_QUEUE} */
  readonly queueName?: string;
  /** Tries per job before the flow fails (a killed worker's job counts one). @defaultValue 3 */
  readonly attempts?: number;
  /**
   * Longest wait for the whole flow (reaching Redis, enqueueing, running), in milliseconds; past it the
   * flow fails (`InrunError` `invalid_option`, field `queue.timeoutMs`; the CLI's `--timeout`, exit 2).
   * @defaultValue 3 600 000 (one hour)
   */
  readonly timeoutMs?: number;
  /**
   * How long to wait for Redis to answer at the start, in milliseconds: with no Redis there the flow
   * fails after this long (`InrunError` `invalid_option`, field `queue.connection`, naming the
   * address), not at `timeoutMs`. An outage after Redis was reached is waited out (up to `timeoutMs`).
   * @defaultValue 5000
   */
  readonly connectTimeoutMs?: number;
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

/** The longest delay setTimeout keeps. */
const MAX_MS = 2_147_483_647;

/**
 * Enqueues `parent` with `children` (a child failing on every attempt fails the parent) and waits for
 * the parent's result. With `metrics`, counts the flow's jobs as the queue's events show them
 * (`inrun.flow.jobs`, `inrun.flow.retries`); the workers measure the attempts they run.
 */
export async function runFlow(queue: JobQueue, parent: FlowJob, children: readonly FlowJob[], onProgress?: (p: JobProgress) => void, metrics: JobMetrics | null = null): Promise<unknown> {
  const queueName = queue.queueName ?? DEFAULT_QUEUE;
  const timeoutMs = queue.timeoutMs ?? 3_600_000;
  // setTimeout reads a delay past 2^31 - 1 ms (about 24.8 days) as 1 ms.
  if (!(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= MAX_MS)) throw new InrunError(`timeoutMs must be milliseconds in (0, ${String(MAX_MS)}], got ${String(timeoutMs)}`, { code: 'invalid_option', field: 'queue.timeoutMs' });
  const connectTimeoutMs = queue.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!(typeof connectTimeoutMs === 'number' && connectTimeoutMs > 0 && connectTimeoutMs <= MAX_MS)) throw new InrunError(`connectTimeoutMs must be milliseconds in (0, ${String(MAX_MS)}], got ${String(connectTimeoutMs)}`, { code: 'invalid_option', field: 'queue.connectTimeoutMs' });
  const deadline = Date.now() + timeoutMs;
  // Reads job states: the parent's as a fallback to its events, the failed children's messages.
  const jobs = new (bullmq().Queue)(queueName, { connection: queue.connection });
  jobs.on('error', quiet);
  try {
    // Redis is reached first, by this client alone: a QueueEvents that never reached Redis cannot be
    // closed (BullMQ's close waits for its connection), so it is made only once Redis answers.
    await reachRedis(jobs, queue.connection, deadline, connectTimeoutMs, `reaching Redis at ${where(queue)}`);
    return await enqueueAndWait(queue, jobs, deadline, parent, children, onProgress, metrics);
  } catch (e) {
    if (e instanceof InrunError) throw e;
    // Not a bug: the caller's own bound, which the caller can raise.
    if (e instanceof FlowTimeout) throw new InrunError(`the ${parent.name} flow on queue ${queueName} failed, nothing merged: ${e.message}`, { code: 'invalid_option', field: 'queue.timeoutMs' });
    throw new InrunError(`the ${parent.name} flow on queue ${queueName} failed, nothing merged: ${e instanceof Error ? e.message : String(e)}`, { code: 'internal', field: 'queue' });
  } finally {
    await jobs.close();
  }
}

/**
 * While Redis is away (restarted, a failover) BullMQ's clients reconnect on their own (ioredis' retries,
 * BullMQ's backoff) and say so through 'error'. The caller's wait carries on through it and its
 * deadline bounds it, so these errors are expected, not news (without a listener BullMQ prints them).
 */
const quiet = () => undefined;

async function enqueueAndWait(queue: JobQueue, jobs: Queue, deadline: number, parent: FlowJob, children: readonly FlowJob[], onProgress: ((p: JobProgress) => void) | undefined, metrics: JobMetrics | null): Promise<unknown> {
  const queueName = jobs.name;
  const opts = { attempts: queue.attempts ?? 3, backoff: { type: 'fixed', delay: 1000 } };
  // Listening starts before the flow exists, so a fast flow's completion is not missed.
  const events = new (bullmq().QueueEvents)(queueName, { connection: queue.connection });
  const producer = new (bullmq().FlowProducer)({ connection: queue.connection });
  events.on('error', quiet);
  producer.on('error', quiet);
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
    await beforeDeadline(events.waitUntilReady(), deadline, `reaching Redis at ${where(queue)}`);
    const flow = await beforeDeadline(
      producer.add({
        ...parent,
        queueName,
        opts,
        children: children.map((c) => ({ ...c, queueName, opts: { ...opts, failParentOnFailure: true } })),
      }),
      deadline,
      `enqueueing the ${parent.name} flow on ${where(queue)}`,
    );
    childIds = new Set((flow.children ?? []).flatMap((c) => (c.job.id === undefined ? [] : [c.job.id])));
    names = new Map([flow, ...(flow.children ?? [])].flatMap((n) => (n.job.id === undefined ? [] : [[n.job.id, n.job.name] as const])));
    for (const [id, event] of early.splice(0)) count(id, event);
    report();
    try {
      return await waitForJob({ queue: jobs, events, jobId: flow.job.id!, deadline });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      // Bounded too: after a timeout Redis may be the reason, and the messages are a courtesy.
      const reasons = (await beforeDeadline(childFailures(jobs, flow.children ?? []), Date.now() + 5000, 'reading the failures').catch(() => [])).map(readReason);
      // Every failed child saying the same code (a bad row file, a missing checkpoint): the flow fails with that code and the first one's field.
      const codes = new Set(reasons.map((r) => r.code));
      const first = reasons[0];
      const timedOut = e instanceof FlowTimeout && reasons.length === 0;
      const code = timedOut ? 'invalid_option' : codes.size === 1 && first?.code !== undefined ? first.code : 'internal';
      const field = timedOut ? 'queue.timeoutMs' : code === 'internal' ? 'queue' : (first?.field ?? 'queue');
      throw new InrunError(`the ${parent.name} flow ${flow.job.id ?? ''} on queue ${queueName} failed, nothing merged: ${[readReason(message).message, ...reasons.map((r) => r.message)].join('; ')}`, { code, field });
    }
  } finally {
    // Bounded: should Redis go for good after it was reached, the caller still gets its answer.
    await beforeDeadline(Promise.all([producer.close(), events.close()]), Date.now() + 5000, 'closing').catch(quiet);
  }
}

/** Where the queue is, for messages (never the password). */
function where(queue: JobQueue): string {
  return redisAddress(queue.connection);
}

/** The failed children's own messages (the parent's failure only says that a child failed). */
async function childFailures(queue: Queue, children: readonly JobNode[]): Promise<string[]> {
  const reasons: string[] = [];
  for (const c of children) {
    const job = c.job.id === undefined ? undefined : await bullmq().Job.fromId(queue, c.job.id);
    if (job?.failedReason) reasons.push(job.failedReason);
  }
  return reasons;
}
