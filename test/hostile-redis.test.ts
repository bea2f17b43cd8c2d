// Nothing hangs on Redis: `inrun tracin|untrac --redis` with no Redis there fail within seconds naming the address, `--timeout` bounds the wait, and `inrun worker` says it cannot reach Redis, keeps retrying, and stops on SIGTERM/SIGINT whatever Redis does, mid-job included (the job finished or given back).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, QueueEvents } from 'bullmq';
import { distributedTracin, startWorker } from '@inrun/jobs';
import { oneHot, randn } from './cases.js';
import { expectSame, freePort, hasRedis, jsonl, startRedis, tracinCase, type RedisServer, type TracinCase } from './jobs-helpers.js';

const CLI = join(import.meta.dirname, '..', 'packages', 'cli', 'src', 'cli', 'inrun.ts');
// Generous: a tsx start on a loaded 2-core machine takes seconds. The promises are 5 s to say Redis is not there and 15 s to stop.
const BOUND_MS = 60_000;
let dir: string;
let c: TracinCase;

interface Child {
  readonly process: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code and signal, or rejects once `BOUND_MS` have passed (the child is then SIGKILLed). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function inrun(args: readonly string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`inrun ${args[0] ?? ''} still running after ${BOUND_MS} ms; stderr: ${err}`));
    }, BOUND_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  return { process: child, stdout: () => out, stderr: () => err, exited };
}

/** Waits until `text` appears in what `read` returns (bounded). */
async function until(read: () => string, text: string | RegExp): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  while (!(typeof text === 'string' ? read().includes(text) : text.test(read()))) {
    if (Date.now() > deadline) throw new Error(`no ${String(text)} within ${BOUND_MS} ms; got: ${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const runFolders = (out: string) => (existsSync(out) ? readdirSync(out).filter((f) => f.startsWith('run=')) : []);

describe.skipIf(!hasRedis)('Redis out of reach', () => {
  let redis: RedisServer | undefined;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'inrun-hostile-redis-'));
    c = await tracinCase(dir, 20, 2);
  });

  afterAll(async () => {
    await redis?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('inrun tracin and untrac --redis with no Redis listening: exit 2 within seconds, naming the address, and no run folder left', async () => {
    const port = await freePort();
    const out = join(dir, 'no-redis');
    const runs = [
      ['tracin', '--checkpoints', c.checkpoints, '--train', c.trainFile, '--queries', c.queriesFile, '--out', out, '--redis', `redis://127.0.0.1:${port}`],
      ['untrac', '--model', c.checkpoints, '--sources', `a=${c.trainFile}`, '--targets', `val=${c.queriesFile}`, '--out', out, '--redis', `redis://127.0.0.1:${port}`],
    ];
    for (const args of runs) {
      const child = inrun(args);
      const { code } = await child.exited;
      expect(child.stderr()).toContain(`cannot reach Redis at 127.0.0.1:${port}`);
      expect(child.stderr()).not.toContain('unexpected failure');
      expect(code).toBe(2);
    }
    expect(runFolders(out)).toEqual([]);
  });

  it('--timeout bounds the wait: Redis there but no worker, exit 2 naming the timeout', async () => {
    redis = await startRedis(await freePort());
    const out = join(dir, 'no-worker');
    const child = inrun(['tracin', '--checkpoints', c.checkpoints, '--train', c.trainFile, '--queries', c.queriesFile, '--out', out, '--redis', `redis://127.0.0.1:${redis.port}`, '--queue', 'idle', '--timeout', '1.5']);
    const { code } = await child.exited;
    expect(child.stderr()).toMatch(/queue\.timeoutMs: .*before the flow's timeout/);
    expect(code).toBe(2);
    expect(runFolders(out)).toEqual([]);
    // A bad --timeout is a usage error before any work.
    const bad = inrun(['tracin', '--checkpoints', c.checkpoints, '--train', c.trainFile, '--queries', c.queriesFile, '--out', out, '--redis', `redis://127.0.0.1:${redis.port}`, '--timeout', '0']);
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr()).toContain('--timeout must be');
  });

  it('inrun worker with no Redis there says so within seconds, keeps retrying, and serves once Redis comes', async () => {
    const port = await freePort();
    const worker = inrun(['worker', '--redis', `redis://127.0.0.1:${port}`]);
    try {
      await until(worker.stderr, `cannot reach Redis at 127.0.0.1:${port}`);
      expect(worker.stdout()).not.toContain('inrun worker on');
      const late = await startRedis(port);
      try {
        await until(worker.stdout, `inrun worker on redis://127.0.0.1:${port}`);
        worker.process.kill('SIGTERM');
        expect(await worker.exited).toEqual({ code: 0, signal: null });
      } finally {
        await late.stop('SIGKILL');
      }
    } finally {
      worker.process.kill('SIGKILL');
    }
  });

  describe('inrun worker stops on a signal, whatever Redis does', () => {
    // Each state once, each signal more than once (Redis up with SIGTERM: the test above and the mid-job one below): fewer processes to start.
    const cases: [string, NodeJS.Signals, 'up' | 'gone' | 'never'][] = [
      ['Redis up, SIGINT', 'SIGINT', 'up'],
      ['Redis gone after the worker reached it, SIGTERM', 'SIGTERM', 'gone'],
      ['Redis never there, SIGINT', 'SIGINT', 'never'],
    ];
    it.each(cases)('%s', async (_, signal, state) => {
      const port = await freePort();
      const server = state === 'never' ? undefined : await startRedis(port);
      const worker = inrun(['worker', '--redis', `redis://127.0.0.1:${port}`, '--queue', `stop-${state}`]);
      try {
        if (server === undefined) await until(worker.stderr, 'cannot reach Redis');
        else await until(worker.stdout, 'inrun worker on');
        if (state === 'gone') {
          await server!.stop('SIGKILL');
          await until(worker.stderr, `cannot reach Redis at 127.0.0.1:${port}`);
        }
        worker.process.kill(signal);
        // Stopped by its own hand (exit 0), not killed by the signal, within the bound.
        expect(await worker.exited).toEqual({ code: 0, signal: null });
        expect(worker.stderr()).toContain('inrun worker: stopping');
      } finally {
        worker.process.kill('SIGKILL');
        await server?.stop('SIGKILL');
      }
    });
  });
});

describe.skipIf(!hasRedis)('inrun worker stopped mid-job', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('SIGTERM while a shard runs: the worker exits 0 within 10 s + 5 s, the shard is finished or given back, a second worker completes the flow, equal to the in-process result', async () => {
    const root = mkdtempSync(join(tmpdir(), 'inrun-hostile-stop-'));
    const base = await tracinCase(root, 20, 2);
    // Rows enough that the one shard is still running when the signal comes (it outlives the job's start event by seconds).
    const m = 20_000;
    const [x, y] = [randn([m, 5], 31), oneHot(m, 3, 32)];
    const train = join(root, 'big.jsonl');
    jsonl(train, Array.from({ length: m }, (_, i) => i), x, y);
    tf.dispose([x, y]);
    const local = await distributedTracin({ checkpoints: base.checkpoints, train, queries: base.queriesFile, out: join(root, 'local'), k: 2 });
    const server = await startRedis(await freePort());
    const connection = { host: '127.0.0.1', port: server.port };
    const queueName = 'stop-mid-job';
    // A 1 s lock: a shard given back is free for the next worker a second after the first stops renewing it.
    const first = inrun(['worker', '--redis', `redis://127.0.0.1:${server.port}`, '--queue', queueName, '--lock-ms', '1000']);
    const events = new QueueEvents(queueName, { connection });
    let second: ReturnType<typeof startWorker> | undefined;
    try {
      await until(first.stdout, 'inrun worker on');
      await events.waitUntilReady();
      const active = new Promise<string>((resolve) => events.once('active', ({ jobId }) => resolve(jobId)));
      const flow = distributedTracin({ checkpoints: base.checkpoints, train, queries: base.queriesFile, out: join(root, 'queue'), k: 2, queue: { connection, queueName, timeoutMs: 120_000 } });
      const running = await active;
      const signalled = Date.now();
      first.process.kill('SIGTERM');
      const stopped = await first.exited;
      const seconds = (Date.now() - signalled) / 1000;
      expect(stopped).toEqual({ code: 0, signal: null });
      expect(seconds).toBeLessThan(15 + 5); // the documented 10 s grace + 5 s, and a little for the process' own end
      expect(first.stderr()).toContain('inrun worker: stopping');
      // The shard the signal met: done by the first worker within its grace, or given back (still waiting or active for the next).
      const queue = new Queue(queueName, { connection });
      const state = await (await queue.getJob(running))!.getState();
      await queue.close();
      expect(['completed', 'active', 'waiting', 'waiting-children']).toContain(state);
      if (state !== 'completed') expect(first.stderr()).toContain('giving back the running job');
      second = startWorker({ connection, queueName, lockDuration: 10_000, stalledInterval: 500 });
      expectSame((await flow).result, local.result);
    } finally {
      first.process.kill('SIGKILL');
      await Promise.all([second?.close(), events.close()]);
      await server.stop('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    }
  });
});

if (!hasRedis) console.warn('hostile-redis.test.ts: no redis-server binary (apt-get install -y redis-server): the test is skipped.');
