// A worker in its own process for scaleout.test.ts (to be SIGKILLed mid-job): `tsx test/scaleout-worker.ts <port> <queue>`.
import { startWorker } from '../src/jobs/index.js';

const worker = startWorker({ connection: { host: '127.0.0.1', port: Number(process.argv[2]) }, queueName: process.argv[3]!, lockDuration: 1000, stalledInterval: 500 });
worker.on('active', (job) => process.stdout.write(`active ${job.name}\n`));
await worker.waitUntilReady();
process.stdout.write('ready\n');
