// Nothing hangs on Redis: `inrun tracin|untrac --redis` with no Redis there fail within seconds naming the address, `--timeout` bounds the wait, and `inrun worker` says it cannot reach Redis, keeps retrying, and stops on SIGTERM/SIGINT whatever Redis does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, hasRedis, startRedis, tracinCase, type RedisServer, type TracinCase } from './jobs-helpers.js';

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
    const cases: [string, NodeJS.Signals, 'up' | 'gone' | 'never'][] = [
      ['Redis up, SIGTERM', 'SIGTERM', 'up'],
      ['Redis up, SIGINT', 'SIGINT', 'up'],
      ['Redis gone after the worker reached it, SIGTERM', 'SIGTERM', 'gone'],
      ['Redis gone after the worker reached it, SIGINT', 'SIGINT', 'gone'],
      ['Redis never there, SIGTERM', 'SIGTERM', 'never'],
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

if (!hasRedis) console.warn('hostile-redis.test.ts: no redis-server binary (apt-get install -y redis-server): the test is skipped.');
