// BullMQ loaded on first use: importing 'inrun' for in-run attribution never pays for the job queue's client (about 0.2 s of module loading).
import { createRequire } from 'node:module';
import type * as BullMQModule from 'bullmq';

type BullMQ = typeof BullMQModule;

let loaded: BullMQ | undefined;

/** The `bullmq` module, required the first time a queue, flow or worker is made (it ships CommonJS, so a synchronous require keeps `startWorker` synchronous). */
export function bullmq(): BullMQ {
  return (loaded ??= createRequire(import.meta.url)('bullmq') as BullMQ);
}
