// browserParquetSink in Node (memory, and OPFS through an in-memory directory handle): the same files as parquetSink byte for byte, OPFS written before each call resolves, a failed write handled by the run's sink-failure policy.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attach, InrunError, parquetSink, type AttachOptions } from 'inrun';
import { browserParquetSink, type BrowserParquetSink, type OpfsDirectory, type OpfsFile } from '@inrun/store/browser';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInfo, syntheticRun } from './store-fixtures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'inrun-parquet-browser-'));

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** An OPFS directory in memory; writes to files whose name matches `failing.test` throw QuotaExceededError. */
class MemoryDirectory implements OpfsDirectory {
  readonly dirs = new Map<string, MemoryDirectory>();
  readonly files = new Map<string, Uint8Array>();
  constructor(private readonly failing: { test: (name: string) => boolean }) {}

  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<OpfsDirectory> {
    let d = this.dirs.get(name);
    if (d === undefined) {
      if (options?.create !== true) return Promise.reject(Object.assign(new Error(`NotFoundError: ${name}`), { name: 'NotFoundError' }));
      this.dirs.set(name, (d = new MemoryDirectory(this.failing)));
    }
    return Promise.resolve(d);
  }

  getFileHandle(name: string, options?: { create?: boolean }): Promise<OpfsFile> {
    if (!this.files.has(name) && options?.create !== true) return Promise.reject(Object.assign(new Error(`NotFoundError: ${name}`), { name: 'NotFoundError' }));
    const handle: OpfsFile = {
      createWritable: () => {
        let content = new Uint8Array();
        return Promise.resolve({
          write: (data: Uint8Array | string) => {
            if (this.failing.test(name)) return Promise.reject(Object.assign(new Error(`QuotaExceededError: no room for ${name}`), { name: 'QuotaExceededError' }));
            content = typeof data === 'string' ? new TextEncoder().encode(data) : Uint8Array.from(data);
            return Promise.resolve();
          },
          // Whole or not at all, as Chromium's swap file.
          close: () => {
            this.files.set(name, content);
            return Promise.resolve();
          },
          abort: () => Promise.resolve(),
        });
      },
      getFile: () => Promise.resolve(new Blob([this.files.get(name)!])),
    };
    return Promise.resolve(handle);
  }

  removeEntry(name: string): Promise<void> {
    this.files.delete(name);
    this.dirs.delete(name);
    return Promise.resolve();
  }

  /** Every file below, by path. */
  all(prefix = ''): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const [name, bytes] of this.files) out.set(`${prefix}${name}`, bytes);
    for (const [name, d] of this.dirs) for (const [p, b] of d.all(`${prefix}${name}/`)) out.set(p, b);
    return out;
  }
}

/** Every file of a Node Parquet store, by path under its folder. */
function nodeFiles(folder: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const f of readdirSync(folder, { recursive: true }).map(String).sort()) {
    if (statSync(join(folder, f)).isFile()) out.set(f.replaceAll('\\', '/'), new Uint8Array(readFileSync(join(folder, f))));
  }
  return out;
}

async function handedOut(sink: BrowserParquetSink): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const f of await sink.files()) out.set(f.path, new Uint8Array(await f.blob.arrayBuffer()));
  return out;
}

const SEGMENTS = { segmentSteps: 4, keepSnapshots: 1 } as const;

describe('browserParquetSink', () => {
  it('in memory: the files parquetSink writes, byte for byte (segments, examples, totals, tokens, run.json)', async () => {
    const folder = tmp();
    const sink = browserParquetSink({ storage: 'memory', ...SEGMENTS });
    await syntheticRun([parquetSink(folder, SEGMENTS), sink], { runId: 'run-mem', n: 50, steps: 10, batch: 10 });
    expect(sink.storage).toBe('memory');
    const want = nodeFiles(folder);
    expect([...want.keys()]).toContain('run-mem/steps/part-000002.parquet');
    expect([...want.keys()]).toContain('run-mem/tokens/final.parquet');
    expect(await handedOut(sink)).toEqual(want);
  });

  it("OPFS: each call's files are on OPFS when its promise resolves; the run id is refused the second time", async () => {
    const root = new MemoryDirectory({ test: () => false });
    const sink = browserParquetSink({ storage: 'opfs', root: () => Promise.resolve(root), ...SEGMENTS });
    const info = runInfo('run-opfs');
    await sink.open(info);
    expect([...root.all().keys()]).toEqual(['inrun/run-opfs/run.json']);
    expect(sink.storage).toBe('opfs');
    const folder = tmp();
    await syntheticRun([parquetSink(folder, SEGMENTS)], { runId: 'run-opfs2', n: 30, steps: 8, batch: 10 });
    // The same run through a fresh OPFS sink: its files are there as each call resolves, and equal the Node sink's.
    const sink2 = browserParquetSink({ storage: 'opfs', root: () => Promise.resolve(root), ...SEGMENTS });
    await syntheticRun([sink2], { runId: 'run-opfs2', n: 30, steps: 8, batch: 10 });
    const onOpfs = new Map([...root.all()].filter(([p]) => p.startsWith('inrun/run-opfs2/')).map(([p, b]) => [p.slice('inrun/'.length), b]));
    expect(onOpfs).toEqual(nodeFiles(folder));
    expect(await handedOut(sink2)).toEqual(onOpfs);
    const again = browserParquetSink({ storage: 'opfs', root: () => Promise.resolve(root) });
    await expect(again.open(runInfo('run-opfs2'))).rejects.toThrow(/already stored/);
  });

  it('bad options are InrunErrors naming the field', () => {
    expect(() => browserParquetSink({ segmentSteps: 0 })).toThrow(expect.objectContaining({ field: 'browserParquetSink.segmentSteps' }));
    expect(() => browserParquetSink({ storage: 'disk' as 'opfs' })).toThrow(expect.objectContaining({ field: 'browserParquetSink.storage' }));
    expect(() => browserParquetSink({ folder: 'a/b' })).toThrow(expect.objectContaining({ field: 'browserParquetSink.folder' }));
  });
});

describe('browserParquetSink under a run (cpu), as parquetSink', () => {
  function tiny() {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [3], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) })] });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
    return model;
  }
  async function train(options: AttachOptions, steps: number, nanAt = -1) {
    const model = tiny();
    const run = attach(model, { targets: { val: { xs: tf.randomNormal([2, 3], 0, 1, 'float32', 3), ys: tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2) } }, ...options });
    for (let s = 0; s < steps; s++) {
      const x = s === nanAt ? tf.tensor2d([[NaN, 0, 0]]) : tf.randomNormal([1, 3], 0, 1, 'float32', 10 + s);
      await run.step([s], () => model.trainOnBatch(x, tf.oneHot(tf.tensor1d([s % 2], 'int32'), 2)));
    }
    return run;
  }

  it("nonFinite: 'record': the non-finite step reaches both sinks alike (same files)", async () => {
    const folder = tmp();
    const sink = browserParquetSink({ storage: 'memory' });
    const run = await train({ sinks: [parquetSink(folder), sink], runId: 'nan', nonFinite: 'record', delivery: { flushEvery: 2 } }, 6, 3);
    await run.close();
    // The NaN reaches the weights, so every later step is non-finite too.
    expect(run.stats().firstNonFiniteStep).toBe(3);
    const files = await handedOut(sink);
    // run.json carries the run's end; the Parquet files are the same bytes.
    const want = nodeFiles(folder);
    expect([...files.keys()]).toEqual([...want.keys()]);
    for (const [path, bytes] of want) if (!path.endsWith('run.json')) expect([path, files.get(path)]).toEqual([path, bytes]);
  });

  it("a failed OPFS write: under onError 'continue' close() resolves and run.stats() names the sink; under 'stop' close() rejects", async () => {
    const failing = { on: false, test: (name: string) => failing.on && name.startsWith('part-') };
    const root = new MemoryDirectory(failing);
    const go = async (onError: 'continue' | 'stop', runId: string) => {
      const run = await train({ sinks: [browserParquetSink({ storage: 'opfs', root: () => Promise.resolve(root) })], runId, delivery: { onError, flushEvery: 2 } }, 4);
      failing.on = true;
      const closed = await run.close().then(() => null, (e: unknown) => e);
      failing.on = false;
      return { run, closed };
    };
    const soft = await go('continue', 'full-continue');
    expect(soft.closed).toBeNull();
    const failures = soft.run.stats().delivery.failures;
    expect(failures.map((f) => f.sink)).toEqual(['parquet-browser:inrun']);
    expect((failures[0]!.error as InrunError).code).toBe('sink_failed');
    expect((failures[0]!.error as Error).message).toMatch(/QuotaExceededError/);
    const hard = await go('stop', 'full-stop');
    expect(hard.closed).toBeInstanceOf(InrunError);
    expect((hard.closed as InrunError).code).toBe('sink_failed');
    expect((hard.closed as Error).message).toContain('parquet-browser:inrun');
  });
});
