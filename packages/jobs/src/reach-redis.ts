// Reaching Redis before a deadline: a caller that finds no Redis says so within seconds, naming the address, instead of waiting on ioredis' endless reconnects in silence.
import type { ConnectionOptions } from 'bullmq';
import { InrunError } from '@inrun/store';
import { FlowTimeout } from './wait-job.js';

/** How long a caller waits for Redis to answer before failing, unless told otherwise. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/** A BullMQ client (Queue, QueueEvents, Worker): ready once its connection answers, 'error' while it cannot reach Redis. */
export interface RedisClient {
  waitUntilReady(): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** Where Redis is, for messages: `host:port`, never the password. */
export function redisAddress(connection: ConnectionOptions): string {
  const c = connection as { host?: string; port?: number; path?: string };
  return c.path ?? `${c.host ?? '127.0.0.1'}:${String(c.port ?? 6379)}`;
}

/**
 * Resolves once `client` has reached Redis. Fails with an `InrunError` (`invalid_option`, field
 * `queue.connection`) naming the address and the last connection error when Redis has not answered
 * within `connectTimeoutMs`, or with a {@link FlowTimeout} naming `what` when `deadline` (the flow's
 * `timeoutMs`) comes first. The client keeps its own reconnecting; the caller closes it.
 */
export async function reachRedis(client: RedisClient, connection: ConnectionOptions, deadline: number, connectTimeoutMs: number, what: string): Promise<void> {
  let lastError: string | undefined;
  const onError = (e: Error) => (lastError = e.message);
  client.on('error', onError);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flowFirst = deadline <= Date.now() + connectTimeoutMs;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          flowFirst
            ? new FlowTimeout(`${what} did not finish before the flow's timeout (timeoutMs)`)
            : new InrunError(`cannot reach Redis at ${redisAddress(connection)} within ${String(connectTimeoutMs / 1000)} s${lastError === undefined ? ' (no answer)' : ` (${lastError})`}: is redis-server running there, and is the address right?`, { code: 'invalid_option', field: 'queue.connection' }),
        ),
      Math.max(0, Math.min(deadline, Date.now() + connectTimeoutMs) - Date.now()),
    );
  });
  try {
    await Promise.race([client.waitUntilReady(), late]);
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
  }
}
