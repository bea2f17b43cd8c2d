// Waiting for a job's end on a queue whose events can be lost (Redis restarted, a trimmed event stream): its events first, its state polled as a fallback, always a deadline.
import type { Queue, QueueEvents } from 'bullmq';
import { bullmq } from './bullmq.js';
import { InrunError } from '@inrun/store';

/** The flow's deadline (`timeoutMs`) passed: the caller's wait ends, whatever the jobs are doing. */
export class FlowTimeout extends Error {
  override readonly name = 'FlowTimeout';
}

/** What {@link waitForJob} watches. */
export interface JobWait {
  /** Reads the job's state (its own connection: the events' one blocks on the stream). */
  readonly queue: Queue;
  readonly events: QueueEvents;
  readonly jobId: string;
  /** `Date.now()` past which the wait fails. */
  readonly deadline: number;
  /** How often the job's state is read besides listening. @defaultValue 2000 */
  readonly pollMs?: number;
}

/**
 * The job's return value, or its failure. Events alone are not enough: BullMQ's own
 * `waitUntilFinished` listens only, so an event that never comes (a Redis restarted without
 * persistence has lost the job and will never send one; a stream trimmed while the caller was away)
 * would hold the caller until its timeout. So the job's state is also read every `pollMs`: a job that
 * ended is seen within that time, and a job that is gone fails the wait at once, saying so. A read that
 * fails (Redis down or loading) is retried at the next poll; the deadline ends every wait.
 */
export function waitForJob(wait: JobWait): Promise<unknown> {
  const { queue, events, jobId, deadline } = wait;
  return new Promise<unknown>((resolve, reject) => {
    let ended = false;
    let poll: ReturnType<typeof setTimeout> | undefined;
    const end = (settle: () => void) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      clearTimeout(poll);
      events.off('completed', onCompleted);
      events.off('failed', onFailed);
      settle();
    };
    // QueueEvents parses the return value from JSON before emitting it.
    const onCompleted = (a: { jobId: string; returnvalue: unknown }) => {
      if (a.jobId === jobId) end(() => resolve(a.returnvalue));
    };
    const onFailed = (a: { jobId: string; failedReason: string }) => {
      if (a.jobId === jobId) end(() => reject(new Error(a.failedReason)));
    };
    const timer = setTimeout(() => end(() => reject(new FlowTimeout(`no result from job ${jobId} before the flow's timeout (timeoutMs)`))), Math.max(0, deadline - Date.now()));
    events.on('completed', onCompleted);
    events.on('failed', onFailed);
    const read = async () => {
      try {
        const state = await queue.getJobState(jobId);
        if (state === 'completed' || state === 'failed') {
          const job = await bullmq().Job.fromId(queue, jobId);
          if (state === 'completed') end(() => resolve(job?.returnvalue));
          else end(() => reject(new Error(job?.failedReason ?? `job ${jobId} failed`)));
        } else if (state === 'unknown') {
          end(() => reject(new InrunError(`job ${jobId} is gone from Redis (restarted without persistence, or flushed): run the flow again`, { code: 'invalid_state', field: 'queue' })));
        }
      } catch {
        // Redis unreachable or still loading its data: read again at the next poll.
      }
      if (!ended) poll = setTimeout(() => void read(), wait.pollMs ?? 2000);
    };
    void read();
  });
}

/** `work`, or a rejection naming `what` once `deadline` passes (`work` is abandoned, its own rejection ignored). */
export async function beforeDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FlowTimeout(`${what} did not finish before the flow's timeout (timeoutMs)`)), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
