// `inrun worker`'s life: say at once when Redis cannot be reached (and keep trying), stop on SIGINT/SIGTERM within a bounded time whatever Redis is doing.
import type { Worker } from 'bullmq';
import { InrunError } from '@inrun/store';
import { redisAddress } from './reach-redis.js';
import { startWorker, type WorkerOptions } from './queue.js';

/** Options of {@link serveWorker}: {@link WorkerOptions} plus where its lines go and how it stops. */
export interface ServeWorkerOptions extends WorkerOptions {
  /** Receives each status line (ends with a newline): reachable or not, stopping, failed jobs. */
  readonly log: (line: string) => void;
  /** Called once, the first time Redis answers. */
  readonly onReady?: () => void;
  /**
   * After a stop signal, how long a running job may take to finish, in milliseconds. A job still
   * running then is given back: its lock is left to expire and another worker takes it (`lockDuration`).
   * @defaultValue 10 000
   */
  readonly stopGraceMs?: number;
  /** How often a worker that cannot reach Redis says so again, in milliseconds (it retries all along). @defaultValue 30 000 */
  readonly repeatMs?: number;
  /** Signals that stop the worker. @defaultValue ['SIGINT', 'SIGTERM'] */
  readonly signals?: readonly NodeJS.Signals[];
}

/** How a stop went: `clean` when every job finished or was given back and every connection closed in time. */
export interface WorkerStop {
  readonly signal: NodeJS.Signals;
  readonly clean: boolean;
}

/** After the grace, how long the forced close may take before the worker is left as it is. */
const FORCE_MS = 5000;
/** How long a first connection may stay silent (an address that drops packets gives no error) before the worker says so. */
const SILENT_MS = 3000;

/**
 * Runs a worker (as {@link startWorker}) until one of `signals`, and closes it. While Redis cannot be
 * reached (never there, or gone) the worker says so within seconds (at its first connection error, or
 * after 3 s without an answer), again every `repeatMs`, and keeps reconnecting; it says when Redis is
 * back. On a signal it stops taking jobs, lets a running one finish for up to `stopGraceMs`, then
 * gives it back (BullMQ's forced close; the job's lock expires and another worker runs it). Whatever
 * Redis does, the promise settles within `stopGraceMs` + 5 s of the signal; `clean: false` means
 * the graceful close did not end in time (a job still computing, a connection to a Redis that is gone),
 * and the caller should end the process.
 */
export async function serveWorker(options: ServeWorkerOptions): Promise<WorkerStop> {
  const { log, onReady, stopGraceMs = 10_000, repeatMs = 30_000, signals = ['SIGINT', 'SIGTERM'], ...workerOptions } = options;
  for (const [field, v] of [['stopGraceMs', stopGraceMs], ['repeatMs', repeatMs]] as const) {
    if (!(Number.isFinite(v) && v >= 0)) throw new InrunError(`${field} must be a number of milliseconds >= 0, got ${String(v)}`, { code: 'invalid_option', field });
  }
  const address = redisAddress(options.connection);
  // Listening before the worker exists: a signal while Redis is still out of reach stops it too.
  let stopSignal!: (s: NodeJS.Signals) => void;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (stopSignal = resolve));
  for (const s of signals) process.once(s, stopSignal);
  const worker = startWorker(workerOptions);
  const reach = watchReach(worker, address, log, repeatMs, onReady);
  worker.on('failed', (job, error) => log(`job ${job?.name ?? ''} ${job?.id ?? ''} failed: ${error.message}\n`));
  try {
    const signal = await stopped;
    return { signal, clean: await stop(worker, log, stopGraceMs, signals) };
  } finally {
    reach.dispose();
    for (const s of signals) process.off(s, stopSignal);
  }
}

/** Says when Redis is out of reach (at once, then every `repeatMs`) and when it answers again. */
function watchReach(worker: Worker, address: string, log: (line: string) => void, repeatMs: number, onReady: (() => void) | undefined): { dispose(): void } {
  let ready = false;
  let down = false;
  let lastSaid = -Infinity;
  const say = (why: string) => {
    down = true;
    if (Date.now() - lastSaid < repeatMs) return;
    lastSaid = Date.now();
    log(`inrun worker: cannot reach Redis at ${address} (${why}): retrying\n`);
  };
  const silent = setTimeout(() => {
    if (!ready && !down) say(`no answer after ${String(SILENT_MS / 1000)} s`);
  }, SILENT_MS);
  worker.on('error', (e) => say(e.message));
  worker.waitUntilReady().then(
    () => {
      ready = true;
      clearTimeout(silent);
      if (down) log(`inrun worker: Redis at ${address} answers\n`);
      down = false;
      lastSaid = -Infinity;
      onReady?.();
    },
    () => undefined,
  );
  // A connection that comes back after an outage: BullMQ's worker emits 'ready' on each (re)connect.
  worker.on('ready', () => {
    if (down && ready) log(`inrun worker: Redis at ${address} answers again\n`);
    down = false;
    lastSaid = -Infinity;
  });
  return { dispose: () => clearTimeout(silent) };
}

/** Closes `worker` within `graceMs` + {@link FORCE_MS}: gracefully, then forced; a second signal forces at once. */
async function stop(worker: Worker, log: (line: string) => void, graceMs: number, signals: readonly NodeJS.Signals[]): Promise<boolean> {
  log(`inrun worker: stopping: taking no new job; a running one has ${String(graceMs / 1000)} s to finish, then is given back\n`);
  let again!: () => void;
  const secondSignal = new Promise<void>((resolve) => (again = resolve));
  for (const s of signals) process.once(s, again);
  try {
    const graceful = worker.close().then(() => true, () => false);
    if (await within(Promise.race([graceful, secondSignal.then(() => false)]), graceMs)) return true;
    log('inrun worker: giving back the running job(s): another worker takes them once their lock expires\n');
    await within(worker.close(true).then(() => true, () => false), FORCE_MS);
    // A given-back job's computation is not cancelled by the close: only the process' end stops it.
    return false;
  } finally {
    for (const s of signals) process.off(s, again);
  }
}

/** `work`'s value, or false once `ms` have passed. */
async function within(work: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([work, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
